"""Split entries: an entry's quantity divided into legs, sent by time or spaced by price.

Numba-compatible float functions (see :mod:`jiritsu.strategy.step`). A *plan* starts at the
decision time ``t0`` (the close of the decision bar) with a reference price ``ref`` (that bar's
close). With ``split_entry.enabled = false`` (or ``count = 1``) the plan has one leg.

- Legs: ``n`` equal legs of ``floor_step(total / n)`` each, where ``n`` is ``count`` or, when
  legs that small would fall below the instrument's ``min_qty`` / ``min_notional``, the largest
  smaller count whose legs are valid (0: no entry). The plan's total is ``n x leg``.
- Leg 0 is a MARKET order sent at ``t0``: it fills at the open of the first 1-minute bar that
  starts at or after ``t0`` (the first minute of the next bar of the bot's timeframe).
- ``method = "time"``: leg ``i`` is a MARKET order due at ``t0 + i * interval_seconds``. It is
  sent when the trade loop reaches its due time and fills at the open of the first 1-minute bar
  starting at or after the time it was sent (so a leg due 30 s into a minute fills at the next
  minute's open, exactly as if it had been sent at that minute).
- ``method = "price"``: legs 1..n-1 are LIMIT orders sent at ``t0`` at
  ``ref * (1 - i * price_step_pct)`` for a buy (``1 + ...`` for a sell), rounded to the tick.
  A limit fills when a later 1-minute bar trades THROUGH it (:func:`jiritsu.sim.fills.limit_fill`).
- Timeout: the plan's deadline is ``t0 + timeout_seconds``. A resting leg may fill only in
  1-minute bars that close at or before the deadline: at the first step ``t`` with
  ``t + 1 minute > deadline`` every unfilled leg is cancelled and legs not yet sent never are.
- The plan completes when every leg has been sent and is final (filled, cancelled or rejected),
  or at the deadline. (A one-leg plan has no deadline: it completes when its leg is final.)
"""

from __future__ import annotations

from jiritsu.strategy.sizing import floor_to_step, steps_value

_MAX_LEGS = 10  # SplitEntry.count is at most 10: leg masks fit a float exactly


def plan_legs(
    total: float,
    price: float,
    count: int,
    qty_step: float,
    min_qty: float,
    min_notional: float,
) -> tuple[int, float]:
    """(number of legs, quantity per leg) for ``total`` at ``price`` (0 legs: nothing valid)."""
    n = count if count > 0 else 1
    if n > _MAX_LEGS:
        n = _MAX_LEGS
    while n > 0:
        leg = floor_to_step(total / n, qty_step)
        if leg >= min_qty and leg > 0.0 and leg * price >= min_notional:
            return n, leg
        n -= 1
    return 0, 0.0


def leg_due_ms(t0: float, i: int, interval_ms: float) -> float:
    """When leg ``i`` of a time plan is due (leg 0: ``t0``)."""
    return t0 + i * interval_ms


def round_to_tick(x: float, tick: float) -> float:
    """Nearest multiple of ``tick``, halves up (as :meth:`Instrument.round_price`; a decimal
    half such as 100.05 is 1000.4999999999999 ticks in binary, hence the tiny epsilon), as the
    float of the exact decimal level (:func:`~jiritsu.strategy.sizing.steps_value`): the level
    the paper exchange holds as a Decimal and this one compare equal with the same bar."""
    if not tick > 0.0:
        return x
    return steps_value(float(int(x / tick + 0.5 + 1e-9)), tick)


def leg_limit_price(ref: float, side: int, i: int, step_pct: float, tick: float) -> float:
    """Limit price of leg ``i`` of a price plan: ``i`` steps below (buy) / above (sell) ``ref``."""
    return round_to_tick(ref * (1.0 - side * i * step_pct), tick)


def deadline_passed(t: float, deadline: float, bar_ms: float) -> bool:
    """Whether a plan with this deadline must end at step ``t``: the bar starting at ``t``
    would close after the deadline (``deadline <= 0``: no deadline)."""
    return deadline > 0.0 and t + bar_ms > deadline


def full_mask(n: int) -> float:
    """Bit mask with legs 0..n-1 set, as a float (exact up to 2**53)."""
    return float((1 << n) - 1)


def has_leg(mask: float, i: int) -> bool:
    return (int(mask) >> i) & 1 == 1


def with_leg(mask: float, i: int) -> float:
    return float(int(mask) | (1 << i))
