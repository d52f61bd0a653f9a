"""The strategy kernel: what a bot does at a step, as numba-compatible functions over arrays.

Two step functions hold ALL of a bot's trading logic; the live tick (:mod:`jiritsu.engine.bot`,
with the state rebuilt from the exchange and the database) and the backtester
(:func:`simulate`, with the state carried in an array) call the same ones:

- :func:`manage` runs at every step ``t``: protective exits (bot-managed spot TP/SL, maximum
  holding time), the split-entry plan (time legs due, deadline, completion, a halt cancelling the
  rest) and the exchange-side TP/SL of the current average entry.
- :func:`decide` runs after :func:`manage` at the close of each bar of the bot's timeframe, with
  the action the advisor chose (the strategy's own signal in a backtest): the risk gate
  (:func:`allowed_mask`, ``min_confidence``, halts), exits on an opposite signal, flips, sizing
  and the new plan.

Both write their orders into ``out`` (a float64 array, ``O_*`` fields) and update ``state``
(``S_*`` fields) with what they decided; fills are NOT their business: the exchange (live) or
:func:`simulate` (backtest, with :mod:`jiritsu.sim.fills` -- the paper exchange's fill model)
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

import functools
import math
import types
from typing import Any

import numpy as np

from jiritsu.sim.fills import (
    EXIT_NONE,
    EXIT_SL,
    EXIT_TP,
    limit_fill,
    market_fill_price,
    round8,
    tp_sl_fill,
)
from jiritsu.strategy.exits import (
    EXIT_REASON_MAX_HOLD,
    EXIT_REASON_SIGNAL,
    EXIT_REASON_SL,
    EXIT_REASON_TP,
    loss_streak_tripped,
    max_hold_reached,
    next_streak,
)
from jiritsu.strategy.params import (
    BAR_MS,
    P_ALLOW_SHORT,
    P_COOLDOWN_MS,
    P_LEVERAGE,
    P_MAKER_FEE,
    P_MAX_HOLD_MS,
    P_MAX_LOSSES,
    P_MIN_CONF,
    P_MIN_NOTIONAL,
    P_MIN_QTY,
    P_QTY_STEP,
    P_SL_RATIO,
    P_SLIPPAGE_BPS,
    P_SPLIT,
    P_SPLIT_COUNT,
    P_SPLIT_INTERVAL_MS,
    P_SPLIT_METHOD,
    P_SPLIT_STEP,
    P_SPLIT_TIMEOUT_MS,
    P_SPOT,
    P_TAKER_FEE,
    P_TF_MS,
    P_TICK,
    P_TP_RATIO,
    P_TPSL,
    P_VOL_FACTOR,
    SPLIT_PRICE,
    SPLIT_TIME,
)
from jiritsu.strategy.sizing import entry_size, floor_to_step
from jiritsu.strategy.split import (
    deadline_passed,
    full_mask,
    has_leg,
    leg_due_ms,
    leg_limit_price,
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

_QTY_EPS = 1e-12


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


# --- the backtest driver ---------------------------------------------------------------------

# Simulated order book (rows in acceptance order).
B_KIND = 0  # 0 leg, 1 exit
B_LEG = 1
B_SIDE = 2
B_LIMIT = 3  # 0 market, 1 limit
B_QTY = 4
B_PRICE = 5
B_ACC = 6
B_RES = 7  # quote funds reserved
B_TP = 8
B_SL = 9
B_REDUCE = 10
NBOOK = 11
MAX_ORDERS = 32

# Account record.
A_WALLET = 0
A_NBOOK = 1  # open orders in the book
A_TRADES = 2
A_FEES = 3
NACCT = 4

# Action log (one row per thing the kernel did): ACT_* codes in column 1.
ACT_ENTER = 1  # side, total qty, ref price, leg = n legs, extra = bucket
ACT_ORDER = 2  # an order sent: side, qty, price (limit; 0 market), leg (-1: exit), extra = reason
ACT_REJECT = 3  # an order refused at placement (same columns)
ACT_SET_TPSL = 4  # price = tp, extra = sl
ACT_CANCEL = 5  # the plan's open legs cancelled
ACT_IGNORED = 6  # a BUY/SELL not acted upon: side, extra = IGN_* code
ACT_PAUSE = 7  # the loss-streak breaker paused the bot: extra = paused until (ms; inf: for good)
NACT = 8  # t, code, side, qty, price, leg, extra, confidence

# Fill log.
F_TS = 0
F_SIDE = 1
F_QTY = 2
F_PRICE = 3
F_FEE = 4  # quote value
F_KIND = 5  # 0 leg, 1 exit order, 2 exchange TP, 3 exchange SL
F_LEG = 6
F_PNL = 7  # closing trades: realised PnL minus exit fee and the entry fees' share; else 0
NFILL = 8


def log_act(
    acts: np.ndarray,
    na: int,
    t: float,
    code: int,
    side: float,
    qty: float,
    price: float,
    leg: float,
    extra: float,
    conf: float,
) -> int:
    if na < acts.shape[0]:
        acts[na, 0] = t
        acts[na, 1] = code
        acts[na, 2] = side
        acts[na, 3] = qty
        acts[na, 4] = price
        acts[na, 5] = leg
        acts[na, 6] = extra
        acts[na, 7] = conf
    return na + 1


def sim_available(
    book: np.ndarray, acct: np.ndarray, params: np.ndarray, state: np.ndarray
) -> float:
    """Wallet - margin in use (linear) - funds held by open orders: the paper exchange's
    ``available``."""
    avail = acct[A_WALLET]
    if params[P_SPOT] == 0.0 and state[S_SIDE] != 0.0:
        avail -= state[S_QTY] * state[S_AVG] / params[P_LEVERAGE]
    for r in range(int(acct[A_NBOOK])):
        avail -= book[r, B_RES]
    return avail


def sim_place(
    book: np.ndarray,
    acct: np.ndarray,
    params: np.ndarray,
    state: np.ndarray,
    t: float,
    kind: int,
    leg: int,
    side: float,
    limit: float,
    qty: float,
    price: float,
    tp: float,
    sl: float,
    reduce: bool,
    last: float,
) -> bool:
    """Accept an order as the paper exchange does (checks, reservation); False: refused."""
    nb = int(acct[A_NBOOK])
    if nb >= MAX_ORDERS:
        return False
    base = price if limit > 0.0 else last
    if qty < params[P_MIN_QTY] or qty <= 0.0 or not base > 0.0:
        return False
    if qty * base < params[P_MIN_NOTIONAL]:
        return False
    if tp > 0.0 and (tp - base) * side <= 0.0:
        return False
    if sl > 0.0 and (base - sl) * side <= 0.0:
        return False
    spot = params[P_SPOT] > 0.0
    rate = params[P_MAKER_FEE] if limit > 0.0 else params[P_TAKER_FEE]
    reduce_only = reduce and not spot
    if spot:
        if side > 0.0:
            reserve = qty * base
        else:
            pending = 0.0
            for r in range(nb):
                if book[r, B_SIDE] < 0.0:
                    pending += book[r, B_QTY]
            if qty > state[S_QTY] - pending + _QTY_EPS:
                return False
            reserve = 0.0
    else:
        closing = 0.0
        if state[S_SIDE] != 0.0 and state[S_SIDE] != side:
            closing = qty if qty < state[S_QTY] else state[S_QTY]
        if reduce_only:
            if closing <= 0.0:
                return False
            reserve = 0.0
        else:
            reserve = (qty - closing) * base / params[P_LEVERAGE] + qty * base * rate
    if reserve > sim_available(book, acct, params, state):
        return False
    book[nb, B_KIND] = kind
    book[nb, B_LEG] = leg
    book[nb, B_SIDE] = side
    book[nb, B_LIMIT] = limit
    book[nb, B_QTY] = qty
    book[nb, B_PRICE] = price
    book[nb, B_ACC] = t
    book[nb, B_RES] = reserve
    book[nb, B_TP] = tp
    book[nb, B_SL] = sl
    book[nb, B_REDUCE] = 1.0 if reduce_only else 0.0
    acct[A_NBOOK] = nb + 1
    return True


def sim_remove(book: np.ndarray, acct: np.ndarray, r: int) -> None:
    nb = int(acct[A_NBOOK])
    for i in range(r, nb - 1):
        for f in range(NBOOK):
            book[i, f] = book[i + 1, f]
    acct[A_NBOOK] = nb - 1


def sim_move(
    state: np.ndarray,
    params: np.ndarray,
    sign: float,
    qty: float,
    price: float,
    ts: float,
    order_side: float,
    tp: float,
    sl: float,
    tpsl_from: float,
) -> None:
    """Apply a fill of ``sign * qty`` at ``price`` to the position (the paper exchange's
    one-way netting: opening or flipping resets the levels; adding averages the price)."""
    was_open = position_qty(state, params) > 0.0
    held = state[S_QTY] * state[S_SIDE]
    new = held + sign * qty
    eps = params[P_QTY_STEP] * 1e-6
    if abs(new) <= eps:
        state[S_SIDE] = 0.0
        state[S_QTY] = 0.0
        state[S_AVG] = 0.0
        state[S_TP] = 0.0
        state[S_SL] = 0.0
        state[S_OPENED] = 0.0
        state[S_ENTRY_FEES] = 0.0
        return
    if abs(held) <= eps or (held > 0.0) != (new > 0.0):
        if abs(held) > eps:
            was_open = False  # flipped through zero: a new position
        state[S_SIDE] = 1.0 if new > 0.0 else -1.0
        state[S_QTY] = abs(new)
        state[S_AVG] = price
        state[S_TP] = 0.0
        state[S_SL] = 0.0
    elif abs(new) > abs(held):
        state[S_AVG] = (state[S_AVG] * abs(held) + price * qty) / abs(new)
        state[S_QTY] = abs(new)
    else:
        state[S_QTY] = abs(new)
    if state[S_SIDE] == order_side and (tp > 0.0 or sl > 0.0):
        if tp > 0.0:
            state[S_TP] = tp
        if sl > 0.0:
            state[S_SL] = sl
        state[S_TPSL_FROM] = tpsl_from
    if position_qty(state, params) > 0.0:
        if not was_open:
            state[S_OPENED] = ts
    else:
        state[S_OPENED] = 0.0


def sim_close_trade(
    state: np.ndarray, params: np.ndarray, acct: np.ndarray, pnl: float, ts: float
) -> None:
    """Book a closing trade's PnL into the loss streak (see :func:`loss_streak_pause`). A trade
    closed while the bot is paused (a TP/SL of the position it held) does not count: the trade
    loop counts the trades since the pause was lifted."""
    acct[A_TRADES] += 1.0
    if ts >= state[S_PAUSED_UNTIL]:
        state[S_LOSS_STREAK] = next_streak(state[S_LOSS_STREAK], pnl)


def loss_streak_pause(state: np.ndarray, params: np.ndarray, t: float) -> bool:
    """The loss-streak breaker, evaluated at a decision step (as the trade loop does, right
    before deciding): a tripped streak pauses the bot from ``t`` for the cool-down (for good
    when there is none); counting starts afresh when the pause ends. True when it tripped
    now."""
    if loss_streak_tripped(state[S_LOSS_STREAK], params[P_MAX_LOSSES]):
        cool = params[P_COOLDOWN_MS]
        state[S_PAUSED_UNTIL] = t + cool if cool > 0.0 else math.inf
        state[S_LOSS_STREAK] = 0.0
        return True
    return False


def sim_fill(
    book: np.ndarray,
    acct: np.ndarray,
    params: np.ndarray,
    state: np.ndarray,
    r: int,
    price: float,
    ts: float,
    is_maker: bool,
    tpsl_from: float,
    kind: int,
    fills: np.ndarray,
    nf: int,
) -> int:
    """Execute book row ``r`` at ``price`` in the bar ``ts`` (or refuse it as the paper exchange
    would); the row leaves the book either way. Returns the new fill count."""
    spot = params[P_SPOT] > 0.0
    rate = params[P_MAKER_FEE] if is_maker else params[P_TAKER_FEE]
    side = book[r, B_SIDE]
    qty = book[r, B_QTY]
    leg = int(book[r, B_LEG])
    okind = int(book[r, B_KIND])
    tp = book[r, B_TP]
    sl = book[r, B_SL]
    free = sim_available(book, acct, params, state) + book[r, B_RES]
    pnl = 0.0
    closing_trade = False
    fee_quote = 0.0
    if spot:
        notional = qty * price
        if side > 0.0:
            if notional > free:
                book[r, B_QTY] = -1.0  # refused
                book[r, B_RES] = 0.0
                return nf
            fee_coin = round8(qty * rate)  # the exchange's ledger rounds it to 1e-8
            fee_quote = round8(fee_coin * price)
            acct[A_WALLET] -= notional
            sim_move(state, params, 1.0, qty - fee_coin, price, ts, side, tp, sl, tpsl_from)
            state[S_ENTRY_FEES] += fee_quote
        else:
            if state[S_SIDE] <= 0.0 or qty > state[S_QTY] + _QTY_EPS:
                book[r, B_QTY] = -1.0
                book[r, B_RES] = 0.0
                return nf
            fee_quote = round8(notional * rate)
            realised = qty * (price - state[S_AVG])
            share = state[S_ENTRY_FEES] * qty / state[S_QTY] if state[S_QTY] > 0.0 else 0.0
            pnl = realised - fee_quote - share
            closing_trade = True
            acct[A_WALLET] += notional - fee_quote
            state[S_ENTRY_FEES] -= share
            sim_move(state, params, -1.0, qty, price, ts, side, tp, sl, tpsl_from)
    else:
        held = state[S_QTY] * state[S_SIDE]
        reduces = held != 0.0 and (held > 0.0) != (side > 0.0)
        if book[r, B_REDUCE] > 0.0:
            if not reduces:
                book[r, B_QTY] = -1.0
                book[r, B_RES] = 0.0
                return nf
            if qty > abs(held):
                qty = abs(held)
        closing = 0.0
        if reduces:
            closing = qty if qty < abs(held) else abs(held)
        opening = qty - closing
        fee_quote = round8(qty * price * rate)  # booked to 1e-8, as the ledger books it
        realised = 0.0
        if closing > 0.0:
            realised = closing * (price - state[S_AVG]) * state[S_SIDE]
        if opening > 0.0:
            released = closing * state[S_AVG] / params[P_LEVERAGE] if closing > 0.0 else 0.0
            if opening * price / params[P_LEVERAGE] + fee_quote > free + released + realised:
                book[r, B_QTY] = -1.0
                book[r, B_RES] = 0.0
                return nf
        acct[A_WALLET] += realised - fee_quote
        if closing > 0.0:
            share = state[S_ENTRY_FEES] * closing / abs(held)
            pnl = realised - fee_quote * closing / qty - share
            closing_trade = True
            state[S_ENTRY_FEES] -= share
        sim_move(state, params, side, qty, price, ts, side, tp, sl, tpsl_from)
        if opening > 0.0:
            state[S_ENTRY_FEES] += fee_quote * opening / qty
    acct[A_FEES] += fee_quote
    if nf < fills.shape[0]:
        fills[nf, F_TS] = ts
        fills[nf, F_SIDE] = side
        fills[nf, F_QTY] = qty
        fills[nf, F_PRICE] = price
        fills[nf, F_FEE] = fee_quote
        fills[nf, F_KIND] = kind
        fills[nf, F_LEG] = leg if okind == 0 else -1
        fills[nf, F_PNL] = pnl
    nf += 1
    if okind == 0 and state[S_PLAN] > 0.0 and leg >= 0:
        state[S_PLAN_FILLED] = with_leg(state[S_PLAN_FILLED], leg)
        state[S_PLAN_DONE] = with_leg(state[S_PLAN_DONE], leg)
    if closing_trade:
        sim_close_trade(state, params, acct, pnl, ts)
    book[r, B_QTY] = -1.0  # filled: leaves the book
    book[r, B_RES] = 0.0
    return nf


def sim_settle(book: np.ndarray, acct: np.ndarray, state: np.ndarray) -> None:
    """Drop rows marked done (qty < 0): legs count as final in the plan, an exit is no longer
    pending."""
    r = 0
    while r < int(acct[A_NBOOK]):
        if book[r, B_QTY] < 0.0:
            if book[r, B_KIND] == 0.0:
                if state[S_PLAN] > 0.0:
                    state[S_PLAN_DONE] = with_leg(state[S_PLAN_DONE], int(book[r, B_LEG]))
            else:
                state[S_EXIT_PENDING] = 0.0
            sim_remove(book, acct, r)
        else:
            r += 1


def sim_work_bar(
    book: np.ndarray,
    acct: np.ndarray,
    params: np.ndarray,
    state: np.ndarray,
    ts: float,
    o: float,
    h: float,
    low: float,
    vol: float,
    fills: np.ndarray,
    nf: int,
) -> int:
    """The bar protocol of :mod:`jiritsu.sim.fills` for one 1-minute bar, as the paper
    exchange runs it: market orders at the open, then the position's TP/SL, then limits."""
    slip = params[P_SLIPPAGE_BPS]
    vf = params[P_VOL_FACTOR]
    nb = int(acct[A_NBOOK])
    for r in range(nb):
        if book[r, B_QTY] > 0.0 and book[r, B_LIMIT] == 0.0 and book[r, B_ACC] <= ts:
            side = int(book[r, B_SIDE])
            price = market_fill_price(o, side, slip, vol, vf)
            nf = sim_fill(book, acct, params, state, r, price, ts, False, ts, 0, fills, nf)
    sim_settle(book, acct, state)
    if state[S_SIDE] != 0.0 and (state[S_TP] > 0.0 or state[S_SL] > 0.0):
        if state[S_TPSL_FROM] <= ts and state[S_QTY] > 0.0:
            side = int(state[S_SIDE])
            code, price = tp_sl_fill(side, state[S_TP], state[S_SL], o, h, low, slip, vol, vf)
            if code != EXIT_NONE:
                nb = int(acct[A_NBOOK])
                if nb < MAX_ORDERS:
                    book[nb, B_KIND] = 1.0
                    book[nb, B_LEG] = -1.0
                    book[nb, B_SIDE] = -side
                    book[nb, B_LIMIT] = 0.0
                    book[nb, B_QTY] = state[S_QTY]
                    book[nb, B_PRICE] = 0.0
                    book[nb, B_ACC] = ts
                    book[nb, B_RES] = 0.0
                    book[nb, B_TP] = 0.0
                    book[nb, B_SL] = 0.0
                    book[nb, B_REDUCE] = 1.0
                    acct[A_NBOOK] = nb + 1
                    kind = 2 if code == EXIT_TP else 3
                    pending = state[S_EXIT_PENDING]
                    nf = sim_fill(
                        book, acct, params, state, nb, price, ts, False, ts, kind, fills, nf
                    )
                    sim_remove(book, acct, nb)
                    state[S_EXIT_PENDING] = pending  # our own closing order (if any) stays out
    nb = int(acct[A_NBOOK])
    for r in range(nb):
        if book[r, B_QTY] > 0.0 and book[r, B_LIMIT] > 0.0 and book[r, B_ACC] <= ts:
            filled, price = limit_fill(int(book[r, B_SIDE]), book[r, B_PRICE], o, h, low)
            if filled:
                nf = sim_fill(book, acct, params, state, r, price, ts, True, ts + 1.0, 0, fills, nf)
    sim_settle(book, acct, state)
    return nf


def sim_cancel_legs(book: np.ndarray, acct: np.ndarray) -> None:
    r = 0
    while r < int(acct[A_NBOOK]):
        if book[r, B_KIND] == 0.0:
            sim_remove(book, acct, r)
        else:
            r += 1


def sim_execute(
    out: np.ndarray,
    book: np.ndarray,
    acct: np.ndarray,
    params: np.ndarray,
    state: np.ndarray,
    t: float,
    last: float,
    conf: float,
    acts: np.ndarray,
    na: int,
) -> int:
    """Carry out ``out`` as the live executor does, in the same order: cancel, exit, due
    legs, levels, entry."""
    if out[O_CANCEL] > 0.0:
        sim_cancel_legs(book, acct)
        na = log_act(acts, na, t, ACT_CANCEL, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0)
    if out[O_EXIT_QTY] > 0.0:
        side = out[O_EXIT_SIDE]
        ok = sim_place(
            book, acct, params, state, t, 1, -1, side, 0.0, out[O_EXIT_QTY], 0.0, 0.0, 0.0,
            True, last,
        )  # fmt: skip
        code = ACT_ORDER if ok else ACT_REJECT
        na = log_act(acts, na, t, code, side, out[O_EXIT_QTY], 0.0, -1.0, out[O_EXIT_REASON], conf)
        if not ok:
            state[S_EXIT_PENDING] = 0.0
    first = int(out[O_SEND_FIRST])
    last_leg = int(out[O_SEND_LAST])
    for i in range(first, last_leg):
        side = state[S_PLAN_SIDE]
        qty = state[S_PLAN_LEG_QTY]
        ok = sim_place(
            book, acct, params, state, t, 0, i, side, 0.0, qty, 0.0, 0.0, 0.0, False, last
        )
        na = log_act(acts, na, t, ACT_ORDER if ok else ACT_REJECT, side, qty, 0.0, i, 0.0, 0.0)
        if not ok:
            state[S_PLAN_DONE] = with_leg(state[S_PLAN_DONE], i)
    if out[O_SET_TPSL] > 0.0:
        state[S_TPSL_FROM] = t
        na = log_act(acts, na, t, ACT_SET_TPSL, state[S_SIDE], 0.0, out[O_TP], -1.0, out[O_SL], 0.0)
    if out[O_ENTER] != 0.0:
        side = out[O_ENTER]
        n = int(out[O_ENTER_N])
        leg_qty = out[O_ENTER_LEG_QTY]
        ref = out[O_ENTER_REF]
        na = log_act(acts, na, t, ACT_ENTER, side, leg_qty * n, ref, n, out[O_ENTER_BUCKET], conf)
        ok = sim_place(
            book, acct, params, state, t, 0, 0, side, 0.0, leg_qty, 0.0, out[O_ENTER_TP],
            out[O_ENTER_SL], False, last,
        )  # fmt: skip
        na = log_act(
            acts, na, t, ACT_ORDER if ok else ACT_REJECT, side, leg_qty, 0.0, 0.0, 0.0, 0.0
        )
        if not ok:
            state[S_PLAN_DONE] = with_leg(state[S_PLAN_DONE], 0)
        if out[O_ENTER_METHOD] == SPLIT_PRICE:
            for i in range(1, n):
                price = leg_limit_price(ref, int(side), i, params[P_SPLIT_STEP], params[P_TICK])
                ok = sim_place(
                    book, acct, params, state, t, 0, i, side, 1.0, leg_qty, price, 0.0, 0.0,
                    False, last,
                )  # fmt: skip
                code = ACT_ORDER if ok else ACT_REJECT
                na = log_act(acts, na, t, code, side, leg_qty, price, i, 0.0, 0.0)
                if not ok:
                    state[S_PLAN_DONE] = with_leg(state[S_PLAN_DONE], i)
    return na


def sim_step(
    t: float,
    last: float,
    bar_ts: float,
    bo: float,
    bh: float,
    bl: float,
    tf_close_ms: np.ndarray,
    tf_close: np.ndarray,
    tf_atr: np.ndarray,
    sig: np.ndarray,
    conf: np.ndarray,
    k: int,
    params: np.ndarray,
    state: np.ndarray,
    out: np.ndarray,
    book: np.ndarray,
    acct: np.ndarray,
    acts: np.ndarray,
    na: int,
    halted_global: bool,
) -> tuple[int, int]:
    """One step of the trade loop at ``t``: :func:`manage`, then :func:`decide` for the newest
    bar of the timeframe closed by ``t`` (once; ``k`` = the first bar not yet seen), with the
    orders carried out. ``bar_*``: the 1-minute bar that closed at ``t`` (``bar_ts < 0``: none).
    ``halted_global``: the portfolio is halted at ``t`` (a global breaker). Returns (actions
    logged, new ``k``)."""
    halted = halted_global or state[S_PAUSED_UNTIL] > t
    # manage() has nothing to do without a plan, a pending exit or a position it guards
    # (TP/SL, maximum holding time): skip the call
    guards = params[P_TPSL] > 0.0 or params[P_MAX_HOLD_MS] > 0.0
    busy = (state[S_SIDE] != 0.0 and guards) or state[S_PLAN] > 0.0
    if busy or state[S_EXIT_PENDING] > 0.0:
        if bar_ts < 0.0:
            bo = 0.0
            bh = 0.0
            bl = 0.0
        if manage(t, bar_ts, bo, bh, bl, last, halted, params, state, out) > 0:
            na = sim_execute(out, book, acct, params, state, t, last, 0.0, acts, na)
    newest = -1
    ntf = tf_close_ms.shape[0]
    while k < ntf and tf_close_ms[k] <= t:
        newest = k
        k += 1
    if newest >= 0 and tf_close_ms[newest] > state[S_LAST_DECIDED]:
        if t - tf_close_ms[newest] <= decision_stale_ms(params[P_TF_MS]):
            a = int(sig[newest])
            cf = conf[newest]
            if not halted and loss_streak_pause(state, params, t):
                halted = True
                until = state[S_PAUSED_UNTIL]
                na = log_act(acts, na, t, ACT_PAUSE, 0.0, 0.0, 0.0, -1.0, until, 0.0)
            if a == 0:  # HOLD: all decide() would do is mark the bar decided
                state[S_LAST_DECIDED] = tf_close_ms[newest]
            else:
                clear_out(out)
                avail = sim_available(book, acct, params, state)
                decide(
                    t, tf_close_ms[newest], a, cf, tf_close[newest], tf_atr[newest], avail,
                    halted, params, state, out,
                )  # fmt: skip
                if out[O_IGNORED] > 0.0:
                    ign = out[O_IGNORED]
                    na = log_act(acts, na, t, ACT_IGNORED, a, 0.0, 0.0, -1.0, ign, cf)
                na = sim_execute(out, book, acct, params, state, t, last, cf, acts, na)
        else:
            state[S_LAST_DECIDED] = tf_close_ms[newest]
    return na, k


def simulate(
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    low: np.ndarray,
    c: np.ndarray,
    vol: np.ndarray,
    tf_close_ms: np.ndarray,
    tf_close: np.ndarray,
    tf_atr: np.ndarray,
    sig: np.ndarray,
    conf: np.ndarray,
    params: np.ndarray,
    equity0: float,
    start_ms: float,
    end_ms: float,
    acts: np.ndarray,
    fills: np.ndarray,
    equity: np.ndarray,
    halts: np.ndarray,
) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Run one bot over 1-minute bars exactly as the trade loop runs it on the paper exchange.

    Inputs: the 1-minute bars (``ts`` bar opens in ms, OHLC) with ``vol`` the slippage
    volatility per bar (zeros unless ``exchange.slippage_volatility_factor`` > 0, see
    :func:`slippage_vol`); per bar of the bot's timeframe its close TIME ``tf_close_ms``
    (open + timeframe), close price, ATR and the chosen action/confidence (the strategy's:
    :func:`jiritsu.strategy.inputs.strategy_signals`); ``params`` from
    :func:`jiritsu.strategy.params.build_params`; the account's starting wallet ``equity0``.
    Steps run in ``[start_ms, end_ms)`` where the trade loop's clock steps: at the opens of the
    1-minute bars, and inside a gap at the close of the last bar before it and at the closes of
    the bot's bars. So a decision is made at its bar's close whether or not the next minute
    exists (no availability lookahead), and its order fills at the next bar that exists.

    Outputs: ``acts`` (rows ``NACT`` wide: t, ACT_* code, side, qty, price, leg, extra,
    confidence) and ``fills`` (``F_*`` columns) are filled up to their capacity (the counts
    returned may exceed it: then enlarge and rerun); ``equity`` (length ``len(ts)``, or 0 to
    skip) gets the account equity at each bar's close. ``halts`` (rows: from, until in ms,
    sorted, not overlapping; ``until`` may be inf) are the portfolio's global halts: a step at
    ``from <= t < until`` runs halted, as the trade loop steps a bot while a global breaker
    holds (no entries, split entries cancelled, no loss-streak check; exits and TP/SL go on).
    Returns (actions, fills, final state, final account).
    """
    state = np.zeros(NSTATE, dtype=np.float64)
    acct = np.zeros(NACCT, dtype=np.float64)
    acct[A_WALLET] = equity0
    book = np.zeros((MAX_ORDERS, NBOOK), dtype=np.float64)
    out = np.zeros(NOUT, dtype=np.float64)
    na, nf = run_steps(
        ts, o, h, low, c, vol, tf_close_ms, tf_close, tf_atr, sig, conf, params, start_ms,
        end_ms, acts, fills, equity, halts, state, acct, book, out,
    )  # fmt: skip
    return na, nf, state, acct


def run_steps(
    ts: np.ndarray,
    o: np.ndarray,
    h: np.ndarray,
    low: np.ndarray,
    c: np.ndarray,
    vol: np.ndarray,
    tf_close_ms: np.ndarray,
    tf_close: np.ndarray,
    tf_atr: np.ndarray,
    sig: np.ndarray,
    conf: np.ndarray,
    params: np.ndarray,
    start_ms: float,
    end_ms: float,
    acts: np.ndarray,
    fills: np.ndarray,
    equity: np.ndarray,
    halts: np.ndarray,
    state: np.ndarray,
    acct: np.ndarray,
    book: np.ndarray,
    out: np.ndarray,
) -> tuple[int, int]:
    """The loop of :func:`simulate` over records it allocated; returns (actions, fills)."""
    n = ts.shape[0]
    na = 0
    nf = 0
    k = 0  # the next bar of the timeframe not yet seen by a step
    kv = 0  # the next bar of the timeframe whose close may be a step inside a gap
    ntf = tf_close_ms.shape[0]
    spot = params[P_SPOT] > 0.0
    keep_equity = equity.shape[0] == n
    prev_t = -math.inf  # the latest step time considered
    done = False
    nh = halts.shape[0]
    hp = 0  # the first halt that has not ended by the latest step
    j = -1
    while j < n:
        j += 1
        t = ts[j] if j < n else math.inf
        # Steps inside a gap before bar j (or after the last bar), where the trade loop's clock
        # steps too: the close of the last bar that exists (a spot holding's TP/SL check) and
        # the closes of the bot's bars (decisions). Orders sent there wait for bar j.
        while True:
            tv = t
            if j > 0 and ts[j - 1] + BAR_MS < tv and ts[j - 1] + BAR_MS > prev_t:
                tv = ts[j - 1] + BAR_MS
            while kv < ntf and tf_close_ms[kv] <= prev_t:
                kv += 1
            if kv < ntf and tf_close_ms[kv] < tv:
                tv = tf_close_ms[kv]
            if tv >= t:
                break
            prev_t = tv
            if tv >= end_ms:
                done = True
                break
            if tv >= start_ms:
                closed = tv == ts[j - 1] + BAR_MS
                while hp < nh and halts[hp, 1] <= tv:
                    hp += 1
                na, k = sim_step(
                    tv, c[j - 1], ts[j - 1] if closed else -1.0, o[j - 1], h[j - 1],
                    low[j - 1], tf_close_ms, tf_close, tf_atr, sig, conf, k, params, state,
                    out, book, acct, acts, na, hp < nh and halts[hp, 0] <= tv,
                )  # fmt: skip
        prev_t = t
        if done or j == n or t >= end_ms:
            break
        if t < start_ms:
            continue
        last = c[j - 1] if j > 0 else o[j]
        bar_ts = -1.0
        if j > 0 and ts[j - 1] == t - BAR_MS:
            bar_ts = ts[j - 1]
        jp = j - 1 if j > 0 else 0
        while hp < nh and halts[hp, 1] <= t:
            hp += 1
        na, k = sim_step(
            t, last, bar_ts, o[jp], h[jp], low[jp], tf_close_ms, tf_close, tf_atr, sig, conf, k,
            params, state, out, book, acct, acts, na, hp < nh and halts[hp, 0] <= t,
        )  # fmt: skip
        guarded = state[S_SIDE] != 0.0 and (state[S_TP] > 0.0 or state[S_SL] > 0.0)
        if int(acct[A_NBOOK]) > 0 or guarded:
            nf = sim_work_bar(book, acct, params, state, t, o[j], h[j], low[j], vol[j], fills, nf)
        if keep_equity:
            eq = acct[A_WALLET]
            if state[S_SIDE] != 0.0:
                if spot:
                    eq += state[S_QTY] * c[j]
                else:
                    eq += state[S_QTY] * (c[j] - state[S_AVG]) * state[S_SIDE]
            equity[j] = eq
        if quiet(state, acct, params):
            j, k = skip_quiet(
                j, k, ts, c, tf_close_ms, sig, end_ms, spot, keep_equity, state, acct, equity
            )
            prev_t = ts[j]
    return na, nf


def quiet(state: np.ndarray, acct: np.ndarray, params: np.ndarray) -> bool:
    """True when the steps until the next BUY/SELL bar have nothing to do: no order out, no plan,
    no position that :func:`manage` or the exchange's TP/SL watches, no loss streak waiting to
    pause the bot at its next decision. Then those steps only mark HOLD bars decided."""
    if int(acct[A_NBOOK]) > 0 or state[S_EXIT_PENDING] > 0.0 or state[S_PLAN] > 0.0:
        return False
    if state[S_SIDE] != 0.0:
        if params[P_TPSL] > 0.0 or params[P_MAX_HOLD_MS] > 0.0:
            return False
        if state[S_TP] > 0.0 or state[S_SL] > 0.0:
            return False
    return not loss_streak_tripped(state[S_LOSS_STREAK], params[P_MAX_LOSSES])


def skip_quiet(
    j: int,
    k: int,
    ts: np.ndarray,
    c: np.ndarray,
    tf_close_ms: np.ndarray,
    sig: np.ndarray,
    end_ms: float,
    spot: bool,
    keep_equity: bool,
    state: np.ndarray,
    acct: np.ndarray,
    equity: np.ndarray,
) -> tuple[int, int]:
    """From a :func:`quiet` state after the step at ``ts[j]``, pass over the 1-minute bars whose
    steps (and the gap steps between them) come before the close of the next bar with a BUY or
    SELL (each bar's close is a step, so that one is never skipped) and before ``end_ms``: their
    equity is the wallet plus the unchanged position, and the bars of the timeframe they close
    are marked decided as HOLDs are. Returns (the last bar passed over, the new ``k``)."""
    n = ts.shape[0]
    ntf = tf_close_ms.shape[0]
    kk = k
    while kk < ntf and sig[kk] == 0.0 and tf_close_ms[kk] < end_ms:
        kk += 1
    until = tf_close_ms[kk] if kk < ntf else math.inf
    if end_ms < until:
        until = end_ms
    last = j
    while last + 1 < n and ts[last + 1] < until:
        last += 1
    if last == j:
        return j, k
    if keep_equity:
        wallet = acct[A_WALLET]
        qty = state[S_QTY]
        if state[S_SIDE] == 0.0:
            for i in range(j + 1, last + 1):
                equity[i] = wallet
        elif spot:
            for i in range(j + 1, last + 1):
                equity[i] = wallet + qty * c[i]
        else:
            side = state[S_SIDE]
            avg = state[S_AVG]
            for i in range(j + 1, last + 1):
                equity[i] = wallet + qty * (c[i] - avg) * side
    t = ts[last]
    seen = k
    while k < ntf and tf_close_ms[k] <= t:
        k += 1
    if k > seen and tf_close_ms[k - 1] > state[S_LAST_DECIDED]:
        state[S_LAST_DECIDED] = tf_close_ms[k - 1]
    return last, k


def no_halts() -> np.ndarray:
    """:func:`simulate`'s ``halts`` when the portfolio is never halted."""
    return np.zeros((0, 2), dtype=np.float64)


def slippage_vol(
    ts: np.ndarray,
    tf_ts: np.ndarray,
    tf_high: np.ndarray,
    tf_low: np.ndarray,
    tf_close: np.ndarray,
    tf_ms: float,
    window: int,
) -> np.ndarray:
    """Per 1-minute bar, the ATR fraction the paper exchange scales slippage by: over the last
    ``window + 1`` bars of the bot's timeframe that CLOSED by the bar's open (the exchange's
    ``_vol``); 0.0 with fewer than 2 such bars."""
    n = ts.shape[0]
    out = np.zeros(n, dtype=np.float64)
    k = 0
    ntf = tf_ts.shape[0]
    for j in range(n):
        while k < ntf and tf_ts[k] + tf_ms <= ts[j]:
            k += 1
        lo = k - (window + 1)
        if lo < 0:
            lo = 0
        if k - lo < 2:
            continue
        total = 0.0
        for i in range(lo + 1, k):
            prev = tf_close[i - 1]
            tr = max(tf_high[i] - tf_low[i], max(abs(tf_high[i] - prev), abs(tf_low[i] - prev)))
            total += tr
        last = tf_close[k - 1]
        if last > 0.0:
            out[j] = total / (k - 1 - lo) / last
    return out


# --- compiled versions -----------------------------------------------------------------------

# Every numba-compiled function, callees before callers (module, names).
_JIT_ORDER: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("jiritsu.strategy.sizing", ("floor_steps", "steps_value", "floor_to_step", "vol_bucket",
                                 "bucket_multiplier", "capital_cap", "risk_notional",
                                 "entry_size")),
    ("jiritsu.strategy.split", ("plan_legs", "leg_due_ms", "round_to_tick", "leg_limit_price",
                                "deadline_passed", "full_mask", "has_leg", "with_leg")),
    ("jiritsu.strategy.tpsl", ("tpsl_levels", "levels_breached", "spot_tpsl_trigger",
                               "same_level")),
    ("jiritsu.strategy.exits", ("max_hold_reached", "loss_streak_tripped",
                                "next_streak")),
    ("jiritsu.strategy.kernel", (
        "position_qty", "effective_side", "can_open", "allowed_mask", "action_allowed",
        "clear_out", "end_plan", "issue_exit", "decision_stale_ms", "manage", "enter", "decide",
        "log_act", "sim_available", "sim_place", "sim_remove", "sim_move", "sim_close_trade",
        "loss_streak_pause",
        "sim_fill", "sim_settle", "sim_work_bar", "sim_cancel_legs", "sim_execute", "sim_step",
        "quiet", "skip_quiet", "run_steps", "simulate",
        "slippage_vol",
    )),
)  # fmt: skip
# The compiled functions that create arrays (the others run without numba's reference counts).
_ALLOCATING = frozenset({"simulate", "slippage_vol"})


@functools.cache
def compiled(cache: bool = False) -> types.SimpleNamespace:
    """numba-compiled versions of the sizing, split, TP/SL, exit and kernel functions.

    The same trick as :func:`jiritsu.sim.fills.compiled`: each function is cloned with globals
    in which its callees are already compiled (fills' functions come from ``fills.compiled()``),
    so this package stays plain Python and importing it never imports numba. Compiling
    everything takes a few seconds on first use.
    """
    import importlib

    import numba

    from jiritsu.sim import fills
    from jiritsu.strategy.jitcache import fingerprinted_cache

    jitted: dict[str, Any] = dict(vars(fills.compiled()))
    with fingerprinted_cache(cache):
        for module_name, names in _JIT_ORDER:
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
                jitted[name] = numba.njit(cache=cache, _nrt=nrt)(clone)
    return types.SimpleNamespace(**jitted)
