"""The compiled kernel: every numba-compiled function of the step, the book and the driver.

The strategy package stays plain Python (importing it never imports numba); :func:`compiled`
builds the numba versions once per process, cached on disk under a fingerprint of the sources
(:mod:`jiritsu.strategy.jitcache`).
"""

from __future__ import annotations

import functools
import types
from typing import Any

# Every numba-compiled function, callees before callers (module, names).
JIT_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("jiritsu.strategy.sizing", ("floor_steps", "steps_value", "floor_to_step", "vol_bucket",
                                 "bucket_multiplier", "capital_cap", "risk_notional",
                                 "entry_size")),
    ("jiritsu.strategy.split", ("plan_legs", "leg_due_ms", "round_to_tick", "leg_limit_price",
                                "deadline_passed", "full_mask", "has_leg", "with_leg")),
    ("jiritsu.strategy.tpsl", ("tpsl_levels", "levels_breached", "spot_tpsl_trigger",
                               "same_level")),
    ("jiritsu.strategy.exits", ("max_hold_reached", "loss_streak_tripped",
                                "next_streak")),
    ("jiritsu.strategy.step", (
        "position_qty", "effective_side", "can_open", "allowed_mask", "action_allowed",
        "clear_out", "end_plan", "issue_exit", "decision_stale_ms", "manage", "enter", "decide",
    )),
    ("jiritsu.strategy.book", (
        "sim_available", "sim_place", "sim_remove", "sim_move", "sim_close_trade", "sim_fill",
        "sim_settle", "sim_work_bar", "sim_cancel_legs",
    )),
    ("jiritsu.strategy.driver", (
        "log_act", "loss_streak_pause", "sim_execute", "sim_step", "quiet", "first_after",
        "skip_quiet",
        "run_steps", "simulate", "slippage_vol",
    )),
)  # fmt: skip

# The compiled functions that create arrays (the others run without numba's reference counts).
_ALLOCATING = frozenset({"simulate", "slippage_vol"})


@functools.cache
def compiled(cache: bool = False) -> types.SimpleNamespace:
    """numba-compiled versions of the sizing, split, TP/SL, exit, step, book and driver functions.

    The same trick as :func:`jiritsu.sim.fills.compiled`: each function is cloned with globals
    in which its callees are already compiled (fills' functions come from ``fills.compiled()``),
    so this package stays plain Python and importing it never imports numba. Compiling
    everything takes a few seconds on first use.
    """
    import importlib

    import numba

    from jiritsu.sim import fills
    from jiritsu.strategy.jitcache import fingerprinted_cache

    njit: Any = numba.njit  # numba's stubs do not list its _nrt option
    jitted: dict[str, Any] = dict(vars(fills.compiled()))
    with fingerprinted_cache(cache):
        for module_name, names in JIT_ORDER:
            module = importlib.import_module(module_name)
            for name in names:
                fn = getattr(module, name)
                scope = {**vars(module), **jitted}
                clone = types.FunctionType(
                    fn.__code__, scope, name, fn.__defaults__, fn.__closure__
                )
                clone.__doc__ = fn.__doc__
                # numba's reference counting of array arguments (an atomic add and subtract
                # per array per call) cost three quarters of a backtest: only the functions that
                # allocate arrays keep it; the others borrow their arrays from their caller
                nrt = name in _ALLOCATING
                jitted[name] = njit(cache=cache, _nrt=nrt)(clone)
    return types.SimpleNamespace(**jitted)
