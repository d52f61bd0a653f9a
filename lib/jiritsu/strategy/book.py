"""The paper exchange's order book and account as arrays: the backtest's compiled twin.

:func:`sim_place` accepts an order as :class:`jiritsu.exchange.paper.PaperExchange` does (checks,
funds reserved), :func:`sim_work_bar` runs the bar protocol of :mod:`jiritsu.sim.fills` for one
1-minute bar (market orders at the open, then the position's TP/SL, then limits) and
:func:`sim_fill` books a fill into the position (``state``, :mod:`jiritsu.strategy.step`'s
record), the wallet and the fill log, with the ledger's rounding. The parity tests hold these
equal to the paper exchange on real data.
"""

from __future__ import annotations

import numpy as np

from jiritsu.sim.fills import (
    EXIT_NONE,
    EXIT_TP,
    limit_fill,
    market_fill_price,
    round8,
    tp_sl_fill,
)
from jiritsu.strategy.exits import next_streak
from jiritsu.strategy.params import (
    P_LEVERAGE,
    P_MAKER_FEE,
    P_MIN_NOTIONAL,
    P_MIN_QTY,
    P_QTY_STEP,
    P_SLIPPAGE_BPS,
    P_SPOT,
    P_TAKER_FEE,
    P_VOL_FACTOR,
)
from jiritsu.strategy.split import with_leg
from jiritsu.strategy.step import (
    QTY_EPS,
    S_AVG,
    S_ENTRY_FEES,
    S_EXIT_PENDING,
    S_LOSS_STREAK,
    S_OPENED,
    S_PAUSED_UNTIL,
    S_PLAN,
    S_PLAN_DONE,
    S_PLAN_FILLED,
    S_QTY,
    S_SIDE,
    S_SL,
    S_TP,
    S_TPSL_FROM,
    position_qty,
)

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
            if qty > state[S_QTY] - pending + QTY_EPS:
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
            if state[S_SIDE] <= 0.0 or qty > state[S_QTY] + QTY_EPS:
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
