"""The bot step: what a bot does at a step, as numba-compatible functions over arrays.

Two step functions hold ALL of a bot's trading logic; the live tick (:mod:`jiritsu.engine.bot`,
with the state rebuilt from the exchange and the database) and the backtester
(:func:`jiritsu.strategy.driver.simulate`, with the state carried in an array) call the same ones:

- :func:`manage` runs at every step ``t``: protective exits (bot-managed spot TP/SL, maximum
  holding time), the split-entry plan (time legs due, deadline, completion, a halt cancelling the
  rest) and the exchange-side TP/SL of the current average entry.
- :func:`decide` runs after :func:`manage` at the close of each bar of the bot's timeframe, with
  the action the advisor chose (the strategy's own signal in a backtest): the risk gate
  (:func:`allowed_mask`, ``min_confidence``, halts), exits on an opposite signal, flips, sizing
  and the new plan.

Both write their orders into ``out`` (a float64 array, ``O_*`` fields) and update ``state``
(``S_*`` fields) with what they decided; fills are NOT their business: the exchange (live) or
:func:`jiritsu.strategy.driver.simulate` (backtest, on the order-book twin of
:mod:`jiritsu.strategy.book` with :mod:`jiritsu.sim.fills` -- the paper exchange's fill model)
applies them and reports the new position back into ``state``.

Time: everything runs on the 1-minute grid of the paper exchange (see
:mod:`jiritsu.sim.fills`). A step at ``t`` sees bars closed by ``t``; an order sent at ``t``
fills at the open of the first 1-minute bar starting at or after ``t`` (market) or on a later
bar that trades through it (limit). Decisions happen at the close of the bot's bars
(``bar_open + timeframe``), so a market entry decided at a 15-minute close fills at the open of
the first minute of the next 15-minute bar -- or, when minutes are missing, of the next minute
that exists: the step happens at the close all the same, as the trade loop's clock does. See
:mod:`jiritsu.strategy.split` for legs and :mod:`jiritsu.strategy.tpsl` for levels.
"""

from __future__ import annotations

import numpy as np

from jiritsu.sim.fills import (
    EXIT_NONE,
    EXIT_SL,
    EXIT_TP,
)
from jiritsu.strategy.exits import (
    EXIT_REASON_MAX_HOLD,
    EXIT_REASON_SIGNAL,
    EXIT_REASON_SL,
    EXIT_REASON_TP,
    max_hold_reached,
)
from jiritsu.strategy.params import (
    BAR_MS,
    P_ALLOW_SHORT,
    P_MAX_HOLD_MS,
    P_MIN_CONF,
    P_MIN_NOTIONAL,
    P_MIN_QTY,
    P_QTY_STEP,
    P_SL_RATIO,
    P_SPLIT,
    P_SPLIT_COUNT,
    P_SPLIT_INTERVAL_MS,
    P_SPLIT_METHOD,
    P_SPLIT_TIMEOUT_MS,
    P_SPOT,
    P_TICK,
    P_TP_RATIO,
    P_TPSL,
    SPLIT_PRICE,
    SPLIT_TIME,
)
from jiritsu.strategy.sizing import entry_size, floor_to_step
from jiritsu.strategy.split import (
    deadline_passed,
    full_mask,
    has_leg,
    leg_due_ms,
    plan_legs,
    with_leg,
)
from jiritsu.strategy.tpsl import levels_breached, same_level, spot_tpsl_trigger, tpsl_levels

# --- the state record ------------------------------------------------------------------------
S_SIDE = 0  # position side: +1 long, -1 short, 0 flat
S_QTY = 1  # position size (base coin; spot: net of fees paid in the coin)
S_AVG = 2  # average entry price
S_OPENED = 3  # open of the 1-minute bar of the first fill of the position (ms), 0 when flat
S_ENTRY_FEES = 4  # quote value of the fees paid to build the open position (for trade PnL)
S_TP = 5  # the position's exchange-side take profit (linear; 0 none)
S_SL = 6  # ... stop loss
S_TPSL_FROM = 7  # levels apply to bars opening at or after this (simulation of the exchange)
S_PLAN_ATR = 8  # ATR of the decision that opened the position (kept while it is open)
S_PLAN = 9  # 1 while a split-entry plan is active
S_PLAN_SIDE = 10
S_PLAN_T0 = 11  # decision time (ms)
S_PLAN_N = 12  # number of legs
S_PLAN_METHOD = 13  # SPLIT_TIME / SPLIT_PRICE
S_PLAN_INTERVAL = 14  # ms between time legs
S_PLAN_DEADLINE = 15  # ms (0: none)
S_PLAN_LEG_QTY = 16
S_PLAN_REF = 17  # reference (decision) price
S_PLAN_SENT = 18  # bit mask of legs sent
S_PLAN_DONE = 19  # bit mask of legs final (filled, cancelled, rejected)
S_PLAN_FILLED = 20  # bit mask of legs with a fill
S_EXIT_PENDING = 21  # 1 while a closing order is out
S_LAST_DECIDED = 22  # close time of the last bar decided (ms)
S_LOSS_STREAK = 23  # closing trades in a row with a loss (simulation)
S_PAUSED_UNTIL = 24  # paused by the loss streak until (ms; inf: for good) (simulation)
NSTATE = 25

# --- the output record of manage/decide --------------------------------------------------------
O_EXIT_QTY = 0  # > 0: send a closing market order of this size now
O_EXIT_SIDE = 1  # its side (+1 buy / -1 sell)
O_EXIT_REASON = 2  # jiritsu.strategy.exits.EXIT_REASON_*
O_CANCEL = 3  # 1: cancel every open leg of the plan
O_PLAN_END = 4  # 1: the plan ended at this step (completed, timed out or cancelled)
O_SEND_FIRST = 5  # time legs [first, last) are due: send them now (market)
O_SEND_LAST = 6
O_ENTER = 7  # +1 / -1: a new plan: send leg 0 (market) now, and for a price plan legs 1..n-1
O_ENTER_N = 8
O_ENTER_LEG_QTY = 9
O_ENTER_REF = 10
O_ENTER_ATR = 11
O_ENTER_METHOD = 12
O_ENTER_BUCKET = 13
O_ENTER_MULT = 14
O_ENTER_TP = 15  # provisional levels leg 0 carries (linear; 0 none)
O_ENTER_SL = 16
O_SET_TPSL = 17  # 1: set the position's exchange-side levels to O_TP / O_SL
O_TP = 18
O_SL = 19
O_ACTION = 20  # the action acted upon by decide (+1/-1; 0 none)
O_IGNORED = 21  # why decide did not act on a BUY/SELL (IGN_*)
O_DEADLINE = 22  # deadline of the new plan (ms; 0 none)
NOUT = 24

IGN_NONE = 0
IGN_LOW_CONFIDENCE = 1
IGN_NOT_ALLOWED = 2
IGN_NO_SIZE = 3
IGN_EXITING = 4
IGN_HALTED = 5
IGN_NAMES = (
    "",
    "confidence below min_confidence",
    "action not allowed",
    "no valid size (warm-up, capital or instrument minimums)",
    "a closing order is out",
    "halted",
)

ALLOW_BUY = 1
ALLOW_SELL = 2

QTY_EPS = 1e-12  # quantities this close count as equal (float noise)


def new_state() -> np.ndarray:
    """A flat, idle state."""
    return np.zeros(NSTATE, dtype=np.float64)


def new_out() -> np.ndarray:
    return np.zeros(NOUT, dtype=np.float64)


# --- helpers ---------------------------------------------------------------------------------


def position_qty(state: np.ndarray, params: np.ndarray) -> float:
    """The tradeable size of the position: rounded down to the step; dust below the
    instrument's minimum quantity or value counts as flat (it cannot be sold)."""
    if state[S_SIDE] == 0.0:
        return 0.0
    q = floor_to_step(state[S_QTY], params[P_QTY_STEP])
    if q < params[P_MIN_QTY] or q <= 0.0 or q * state[S_AVG] < params[P_MIN_NOTIONAL]:
        return 0.0
    return q


def effective_side(state: np.ndarray, params: np.ndarray) -> int:
    """The side the bot is on: its position's, else an active plan's, else 0."""
    if position_qty(state, params) > 0.0:
        return int(state[S_SIDE])
    if state[S_PLAN] > 0.0:
        return int(state[S_PLAN_SIDE])
    return 0


def can_open(action: int, params: np.ndarray) -> bool:
    if action > 0:
        return True
    return action < 0 and params[P_ALLOW_SHORT] > 0.0 and params[P_SPOT] == 0.0


def allowed_mask(state: np.ndarray, params: np.ndarray, halted: bool) -> int:
    """Which of BUY (1) / SELL (2) an advisor may answer now (HOLD always): nothing while
    halted or while a closing order is out; otherwise the actions that would change something
    (BUY: open a long, or close/flip a short; SELL: close/flip a long, or open a short where
    allowed)."""
    if halted or state[S_EXIT_PENDING] > 0.0:
        return 0
    side = effective_side(state, params)
    mask = 0
    if side <= 0:
        mask |= ALLOW_BUY
    if side > 0 or (side == 0 and can_open(-1, params)):
        mask |= ALLOW_SELL
    return mask


def action_allowed(mask: int, action: int) -> bool:
    if action > 0:
        return (mask & ALLOW_BUY) != 0
    if action < 0:
        return (mask & ALLOW_SELL) != 0
    return True


def clear_out(out: np.ndarray) -> None:
    for i in range(out.shape[0]):
        out[i] = 0.0


def end_plan(state: np.ndarray, out: np.ndarray, cancel: bool) -> None:
    if state[S_PLAN] > 0.0:
        out[O_PLAN_END] = 1.0
        if cancel and state[S_PLAN_SENT] != state[S_PLAN_DONE]:
            out[O_CANCEL] = 1.0
        state[S_PLAN] = 0.0


def issue_exit(state: np.ndarray, out: np.ndarray, qty: float, reason: int) -> None:
    out[O_EXIT_QTY] = qty
    out[O_EXIT_SIDE] = -state[S_SIDE]
    out[O_EXIT_REASON] = reason
    state[S_EXIT_PENDING] = 1.0
    end_plan(state, out, True)


def decision_stale_ms(tf_ms: float) -> float:
    """How late a bar may still be decided (a restart, a timer a little late): half a bar,
    at least one minute. Older bars are skipped."""
    half = 0.5 * tf_ms
    return half if half > BAR_MS else float(BAR_MS)


# --- the two step functions ------------------------------------------------------------------


def manage(
    t: float,
    bar_ts: float,
    bar_open: float,
    bar_high: float,
    bar_low: float,
    last: float,
    halted: bool,
    params: np.ndarray,
    state: np.ndarray,
    out: np.ndarray,
) -> int:
    """Everything a step does besides deciding; returns the number of order actions in ``out``.

    ``bar_*`` is the 1-minute bar that closed exactly at ``t`` (``bar_ts = t - 1 min``), or
    ``bar_ts < 0`` when ``t`` is not a minute boundary or the bar is missing; ``last`` is the
    last traded price (close of the newest closed 1-minute bar).
    """
    clear_out(out)
    if state[S_EXIT_PENDING] > 0.0:
        return 0
    side = int(state[S_SIDE])
    qty = position_qty(state, params)
    has_pos = qty > 0.0
    tpsl_on = params[P_TPSL] > 0.0 and state[S_PLAN_ATR] > 0.0
    actions = 0
    if has_pos:
        if (
            params[P_SPOT] > 0.0
            and tpsl_on
            and bar_ts >= 0.0
            and state[S_OPENED] > 0.0
            and state[S_OPENED] <= bar_ts
        ):
            tp, sl = tpsl_levels(
                state[S_AVG],
                side,
                state[S_PLAN_ATR],
                params[P_TP_RATIO],
                params[P_SL_RATIO],
                params[P_TICK],
            )
            code = spot_tpsl_trigger(tp, sl, bar_open, bar_high, bar_low)
            if code == EXIT_SL:
                issue_exit(state, out, qty, EXIT_REASON_SL)
                return 1
            if code == EXIT_TP:
                issue_exit(state, out, qty, EXIT_REASON_TP)
                return 1
        if max_hold_reached(state[S_OPENED], t, params[P_MAX_HOLD_MS]):
            issue_exit(state, out, qty, EXIT_REASON_MAX_HOLD)
            return 1
    if state[S_PLAN] > 0.0:
        n = int(state[S_PLAN_N])
        if halted:
            end_plan(state, out, True)
        elif state[S_PLAN_FILLED] > 0.0 and not has_pos:
            # the position this plan built is gone (exchange TP/SL, by hand): stop building
            end_plan(state, out, True)
        elif deadline_passed(t, state[S_PLAN_DEADLINE], BAR_MS):
            end_plan(state, out, True)
        else:
            if state[S_PLAN_METHOD] == SPLIT_TIME:
                first = -1
                last_leg = -1
                for i in range(1, n):
                    due = leg_due_ms(state[S_PLAN_T0], i, state[S_PLAN_INTERVAL])
                    if not has_leg(state[S_PLAN_SENT], i) and due <= t:
                        if first < 0:
                            first = i
                        last_leg = i
                        state[S_PLAN_SENT] = with_leg(state[S_PLAN_SENT], i)
                if first >= 0:
                    out[O_SEND_FIRST] = first
                    out[O_SEND_LAST] = last_leg + 1
                    actions += last_leg + 1 - first
            full = full_mask(n)
            if state[S_PLAN_SENT] == full and state[S_PLAN_DONE] == full:
                end_plan(state, out, False)
    if has_pos and tpsl_on and params[P_SPOT] == 0.0:
        tp, sl = tpsl_levels(
            state[S_AVG],
            side,
            state[S_PLAN_ATR],
            params[P_TP_RATIO],
            params[P_SL_RATIO],
            params[P_TICK],
        )
        tick = params[P_TICK]
        if not (same_level(tp, state[S_TP], tick) and same_level(sl, state[S_SL], tick)):
            code = levels_breached(side, tp, sl, last)
            if code != EXIT_NONE:
                reason = EXIT_REASON_SL if code == EXIT_SL else EXIT_REASON_TP
                issue_exit(state, out, qty, reason)
                return actions + 1
            out[O_SET_TPSL] = 1.0
            out[O_TP] = tp
            out[O_SL] = sl
            state[S_TP] = tp
            state[S_SL] = sl
            state[S_TPSL_FROM] = t
            actions += 1
    if out[O_CANCEL] > 0.0:
        actions += 1
    return actions


def enter(
    t: float,
    action: int,
    ref: float,
    atr: float,
    available: float,
    params: np.ndarray,
    state: np.ndarray,
    out: np.ndarray,
) -> bool:
    """Size a new entry and start its plan (part of :func:`decide`)."""
    if not (atr > 0.0 and ref > 0.0):
        out[O_IGNORED] = IGN_NO_SIZE
        return False
    qty, bucket, mult, _notional = entry_size(ref, atr, available, params)
    if qty <= 0.0:
        out[O_IGNORED] = IGN_NO_SIZE
        return False
    count = int(params[P_SPLIT_COUNT]) if params[P_SPLIT] > 0.0 else 1
    n, leg = plan_legs(
        qty, ref, count, params[P_QTY_STEP], params[P_MIN_QTY], params[P_MIN_NOTIONAL]
    )
    if n <= 0:
        out[O_IGNORED] = IGN_NO_SIZE
        return False
    method = params[P_SPLIT_METHOD] if n > 1 else SPLIT_TIME
    deadline = t + params[P_SPLIT_TIMEOUT_MS] if n > 1 else 0.0
    out[O_ENTER] = action
    out[O_ENTER_N] = n
    out[O_ENTER_LEG_QTY] = leg
    out[O_ENTER_REF] = ref
    out[O_ENTER_ATR] = atr
    out[O_ENTER_METHOD] = method
    out[O_ENTER_BUCKET] = bucket
    out[O_ENTER_MULT] = mult
    out[O_DEADLINE] = deadline
    if params[P_TPSL] > 0.0 and params[P_SPOT] == 0.0:
        tp, sl = tpsl_levels(
            ref, action, atr, params[P_TP_RATIO], params[P_SL_RATIO], params[P_TICK]
        )
        out[O_ENTER_TP] = tp
        out[O_ENTER_SL] = sl
    state[S_PLAN] = 1.0
    state[S_PLAN_SIDE] = action
    state[S_PLAN_T0] = t
    state[S_PLAN_N] = n
    state[S_PLAN_METHOD] = method
    state[S_PLAN_INTERVAL] = params[P_SPLIT_INTERVAL_MS]
    state[S_PLAN_DEADLINE] = deadline
    state[S_PLAN_LEG_QTY] = leg
    state[S_PLAN_REF] = ref
    state[S_PLAN_SENT] = full_mask(n) if method == SPLIT_PRICE else 1.0
    state[S_PLAN_DONE] = 0.0
    state[S_PLAN_FILLED] = 0.0
    state[S_PLAN_ATR] = atr
    out[O_ACTION] = action
    return True


def decide(
    t: float,
    bar_close_ms: float,
    action: int,
    confidence: float,
    ref: float,
    atr: float,
    available: float,
    halted: bool,
    params: np.ndarray,
    state: np.ndarray,
    out: np.ndarray,
) -> int:
    """Act on the chosen ``action`` for the bar that closed at ``bar_close_ms``.

    Call after :func:`manage` at the same ``t`` (``out`` keeps manage's orders). ``ref`` and
    ``atr`` are that bar's close and ATR; ``available`` the account's available balance (only
    read when entering). Returns the number of order actions added.
    """
    state[S_LAST_DECIDED] = bar_close_ms
    out[O_ACTION] = 0.0
    out[O_IGNORED] = IGN_NONE
    if action == 0:
        return 0
    if halted or state[S_PAUSED_UNTIL] > t:
        out[O_IGNORED] = IGN_HALTED
        return 0
    if state[S_EXIT_PENDING] > 0.0:
        out[O_IGNORED] = IGN_EXITING
        return 0
    if confidence < params[P_MIN_CONF]:
        out[O_IGNORED] = IGN_LOW_CONFIDENCE
        return 0
    if not action_allowed(allowed_mask(state, params, halted), action):
        out[O_IGNORED] = IGN_NOT_ALLOWED
        return 0
    side = effective_side(state, params)
    added = 0
    if side != 0:  # the action is opposite to where the bot stands
        qty = position_qty(state, params)
        if qty > 0.0:
            issue_exit(state, out, qty, EXIT_REASON_SIGNAL)
        else:
            end_plan(state, out, True)
        out[O_ACTION] = action
        added += 1
        if not can_open(action, params):
            return added
    if enter(t, action, ref, atr, available, params, state, out):
        added += 1
    return added
