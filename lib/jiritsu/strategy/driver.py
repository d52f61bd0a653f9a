"""The backtest driver: one bot over 1-minute bars, stepped as the trade loop steps it.

:func:`simulate` runs :func:`jiritsu.strategy.step.manage` and
:func:`jiritsu.strategy.step.decide` at the trade loop's step times (the 1-minute opens, and in a
gap the last bar's close and the bot's bar closes), carries their orders out on the order-book
twin (:mod:`jiritsu.strategy.book`) and logs what it did. Stretches where nothing is out or
watched are passed over to the next BUY/SELL bar (:func:`skip_quiet`), with the same outcome.
"""

from __future__ import annotations

import math

import numpy as np

from jiritsu.strategy.book import (
    A_NBOOK,
    A_WALLET,
    MAX_ORDERS,
    NACCT,
    NBOOK,
    sim_available,
    sim_cancel_legs,
    sim_place,
    sim_work_bar,
)
from jiritsu.strategy.exits import loss_streak_tripped
from jiritsu.strategy.params import (
    BAR_MS,
    P_COOLDOWN_MS,
    P_MAX_HOLD_MS,
    P_MAX_LOSSES,
    P_SPLIT_STEP,
    P_SPOT,
    P_TF_MS,
    P_TICK,
    P_TPSL,
    SPLIT_PRICE,
)
from jiritsu.strategy.split import (
    leg_limit_price,
    with_leg,
)
from jiritsu.strategy.step import (
    NOUT,
    NSTATE,
    O_CANCEL,
    O_ENTER,
    O_ENTER_BUCKET,
    O_ENTER_LEG_QTY,
    O_ENTER_METHOD,
    O_ENTER_N,
    O_ENTER_REF,
    O_ENTER_SL,
    O_ENTER_TP,
    O_EXIT_QTY,
    O_EXIT_REASON,
    O_EXIT_SIDE,
    O_IGNORED,
    O_SEND_FIRST,
    O_SEND_LAST,
    O_SET_TPSL,
    O_SL,
    O_TP,
    S_AVG,
    S_EXIT_PENDING,
    S_LAST_DECIDED,
    S_LOSS_STREAK,
    S_PAUSED_UNTIL,
    S_PLAN,
    S_PLAN_DONE,
    S_PLAN_LEG_QTY,
    S_PLAN_SIDE,
    S_QTY,
    S_SIDE,
    S_SL,
    S_TP,
    S_TPSL_FROM,
    clear_out,
    decide,
    decision_stale_ms,
    manage,
)

# Action log (one row per thing the kernel did): ACT_* codes in column 1.
ACT_ENTER = 1  # side, total qty, ref price, leg = n legs, extra = bucket
ACT_ORDER = 2  # an order sent: side, qty, price (limit; 0 market), leg (-1: exit), extra = reason
ACT_REJECT = 3  # an order refused at placement (same columns)
ACT_SET_TPSL = 4  # price = tp, extra = sl
ACT_CANCEL = 5  # the plan's open legs cancelled
ACT_IGNORED = 6  # a BUY/SELL not acted upon: side, extra = IGN_* code
ACT_PAUSE = 7  # the loss-streak breaker paused the bot: extra = paused until (ms; inf: for good)
NACT = 8  # t, code, side, qty, price, leg, extra, confidence


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
            kv = first_after(tf_close_ms, kv, prev_t)
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
    while kk < ntf and sig[kk] == 0 and tf_close_ms[kk] < end_ms:
        kk += 1
    until = tf_close_ms[kk] if kk < ntf else math.inf
    if end_ms < until:
        until = end_ms
    # the bars passed over, each with its equity: the wallet plus the unchanged position
    last = j
    wallet = acct[A_WALLET]
    qty = state[S_QTY]
    side = state[S_SIDE]
    avg = state[S_AVG]
    if not keep_equity:
        while last + 1 < n and ts[last + 1] < until:
            last += 1
    elif side == 0.0:
        while last + 1 < n and ts[last + 1] < until:
            last += 1
            equity[last] = wallet
    elif spot:
        while last + 1 < n and ts[last + 1] < until:
            last += 1
            equity[last] = wallet + qty * c[last]
    else:
        while last + 1 < n and ts[last + 1] < until:
            last += 1
            equity[last] = wallet + qty * (c[last] - avg) * side
    if last == j:
        return j, k
    seen = k
    k = first_after(tf_close_ms, k, ts[last])
    if k > seen and tf_close_ms[k - 1] > state[S_LAST_DECIDED]:
        state[S_LAST_DECIDED] = tf_close_ms[k - 1]
    return last, k


def first_after(a: np.ndarray, lo: int, x: float) -> int:
    """The first index from ``lo`` on of the ascending ``a`` whose value is > ``x`` (``len(a)``
    if none), by galloping: a step or two when it is near, a binary search where a scan would
    walk a year of bars."""
    n = a.shape[0]
    if lo >= n or a[lo] > x:
        return lo
    step = 1
    hi = lo + 1
    while hi < n and a[hi] <= x:  # a[lo] <= x throughout
        lo = hi
        step *= 2
        hi = lo + step
    if hi > n:
        hi = n
    lo += 1
    while lo < hi:  # the answer is in [lo, hi]: a[hi] > x, or hi == n
        mid = (lo + hi) // 2
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


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
