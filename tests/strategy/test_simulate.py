"""The backtest driver on hand-made 1-minute candles: every fill priced by hand."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.strategy import kernel as K
from jiritsu.strategy import params as P

MIN = 60_000
T0 = 1_704_067_200_000
SLIP = 0.0002  # the shipped 2 bps
TAKER = 0.00055

# (open, high, low, close) per minute
BARS = [
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 101.0, 99.0, 100.0),
    (100.0, 101.0, 99.0, 100.0),  # the BUY is decided at this bar's close
    (100.5, 101.0, 100.0, 100.5),  # entry at this open
    (100.5, 101.0, 100.0, 100.6),
    (100.6, 103.0, 100.5, 102.5),  # linear TP 102.5 touched
    (102.5, 104.0, 102.0, 103.8),  # spot TP 103.5 touched
    (103.8, 104.0, 103.0, 103.5),  # the spot exit fills at this open
    (103.5, 104.0, 103.0, 103.5),
    (103.5, 104.0, 103.0, 103.5),
]


def run(  # type: ignore[no-untyped-def]
    params: np.ndarray, equity0: float, compiled: bool = False, halts: np.ndarray | None = None
):
    n = len(BARS)
    ts = np.array([T0 + i * MIN for i in range(n)], dtype=np.float64)
    o, h, low, c = (np.array([b[i] for b in BARS], dtype=np.float64) for i in range(4))
    sig = np.zeros(n)
    sig[2] = 1.0
    conf = np.full(n, 1.0)
    atr = np.full(n, 1.0)
    params[P.P_TF_MS] = MIN  # the bot trades 1-minute bars: tf bars = the minutes
    acts = np.zeros((50, K.NACT))
    fills = np.zeros((50, K.NFILL))
    equity = np.zeros(n)
    fn = K.compiled().simulate if compiled else K.simulate
    na, nf, state, acct = fn(
        ts, o, h, low, c, np.zeros(n), ts + MIN, c, atr, sig, conf, params, equity0,
        ts[0], ts[-1] + 1, acts, fills, equity, K.no_halts() if halts is None else halts,
    )  # fmt: skip
    return acts[:na], fills[:nf], equity, state, acct


def test_linear_entry_tp_and_pnl(params_b: np.ndarray) -> None:
    params_b[P.P_SPLIT] = 0.0  # one market leg
    acts, fills, equity, state, _ = run(params_b, 4000.0)
    # ATR 1 at 100: 1 % -> medium -> 100 USDT -> 1.0 unit; provisional TP/SL 102 / 99
    entry = 100.5 * (1 + SLIP)
    entry_fee = entry * TAKER
    assert fills[0].tolist() == pytest.approx([T0 + 3 * MIN, 1, 1.0, entry, entry_fee, 0, 0, 0])
    # next step: levels of the real average 100.5201: 102.5201 -> 102.5, 99.5201 -> 99.5
    assert [(a[0], a[1]) for a in acts] == [
        (T0 + 3 * MIN, K.ACT_ENTER), (T0 + 3 * MIN, K.ACT_ORDER), (T0 + 4 * MIN, K.ACT_SET_TPSL),
    ]  # fmt: skip
    assert (acts[2][4], acts[2][6]) == (pytest.approx(102.5), pytest.approx(99.5))
    # bar 5 reaches 102.5: the exchange's TP sells at 102.5 less slippage
    exit_price = 102.5 * (1 - SLIP)
    exit_fee = exit_price * TAKER
    pnl = (exit_price - entry) - exit_fee - entry_fee
    assert fills[1].tolist() == pytest.approx(
        [T0 + 5 * MIN, -1, 1.0, exit_price, exit_fee, 2, -1, pnl]
    )
    assert equity[-1] == pytest.approx(4000.0 + pnl)
    assert state[K.S_SIDE] == 0
    assert state[K.S_PLAN] == 0


def test_spot_fee_in_coin_bot_managed_tp_and_exit_at_next_open(params_a: np.ndarray) -> None:
    acts, fills, _equity, state, acct = run(params_a, 3000.0)
    # A: 1 % -> medium 0.8 -> 40 USDT -> 0.4 BTC at 100; the fee is taken from the coins
    entry = 100.5 * (1 + SLIP)
    held = 0.4 - 0.4 * TAKER
    assert fills[0][:5].tolist() == pytest.approx(
        [T0 + 3 * MIN, 1, 0.4, entry, 0.4 * TAKER * entry]
    )
    # levels 100.5201 + 3 = 103.5, - 2 = 98.5: bar 6 touches 103.5, seen at its close,
    # sold at the next open (bar 7), the holding rounded down to the 0.000001 step
    sold = np.floor(held / 0.000001 + 1e-9) * 0.000001
    exit_price = 103.8 * (1 - SLIP)
    assert [a[1] for a in acts] == [K.ACT_ENTER, K.ACT_ORDER, K.ACT_ORDER]
    assert acts[2][0] == T0 + 7 * MIN
    assert fills[1][:4].tolist() == pytest.approx([T0 + 7 * MIN, -1, sold, exit_price])
    pnl = (
        sold * (exit_price - entry) - sold * exit_price * TAKER - 0.4 * TAKER * entry * sold / held
    )
    assert fills[1][7] == pytest.approx(pnl)
    assert acct[K.A_WALLET] == pytest.approx(3000.0 - 0.4 * entry + sold * exit_price * (1 - TAKER))
    assert state[K.S_QTY] == pytest.approx(held - sold)  # dust stays
    assert K.position_qty(state, params_a) == 0.0


def test_compiled_and_python_agree_to_the_bit(params_b: np.ndarray, params_c: np.ndarray) -> None:
    for params in (params_b, params_c):
        a = run(params.copy(), 4000.0)
        b = run(params.copy(), 4000.0, compiled=True)
        for x, y in zip(a, b, strict=True):
            assert np.array_equal(x, y)


def test_loss_streak_pauses_at_the_next_decision(params_b: np.ndarray) -> None:
    state = K.new_state()
    state[K.S_LOSS_STREAK] = 5.0
    assert K.loss_streak_pause(state, params_b, float(T0))
    assert state[K.S_PAUSED_UNTIL] == T0 + 1440 * MIN  # the default cool-down: a day
    params_b[P.P_COOLDOWN_MS] = 0.0
    state[K.S_LOSS_STREAK] = 5.0
    assert K.loss_streak_pause(state, params_b, float(T0))
    assert state[K.S_PAUSED_UNTIL] == float("inf")  # no cool-down: for good
    params_b[P.P_COOLDOWN_MS] = 240 * MIN
    state[K.S_LOSS_STREAK] = 5.0
    assert K.loss_streak_pause(state, params_b, float(T0))
    assert state[K.S_PAUSED_UNTIL] == T0 + 240 * MIN
    assert state[K.S_LOSS_STREAK] == 0


@pytest.mark.parametrize("compiled", [False, True])
def test_a_global_halt_ignores_the_decision_and_ends_at_its_lift(
    params_b: np.ndarray, compiled: bool
) -> None:
    params_b[P.P_SPLIT] = 0.0
    # halted over the decision at bar 2's close: the BUY is ignored, nothing trades
    halts = np.array([[T0 + 3 * MIN, T0 + 4 * MIN]])
    acts, fills, _eq, state, _ = run(params_b, 4000.0, compiled, halts)
    assert fills.shape[0] == 0
    assert [(a[0], a[1], a[6]) for a in acts] == [(T0 + 3 * MIN, K.ACT_IGNORED, K.IGN_HALTED)]
    # a halt that ended before the decision changes nothing; one "for good" (inf) blocks it too
    before = run(params_b, 4000.0, compiled, np.array([[T0, T0 + 3 * MIN]]))[1]
    assert np.array_equal(before, run(params_b, 4000.0, compiled)[1])
    assert run(params_b, 4000.0, compiled, np.array([[T0 + 2 * MIN, np.inf]]))[1].shape[0] == 0
    assert state[K.S_SIDE] == 0


def test_a_trade_closed_while_paused_does_not_count_after_the_pause(params_b: np.ndarray) -> None:
    # as the trade loop counts: the closing trades since the pause was lifted (a stop of the
    # position held through a pause is not the start of the next streak)
    state = K.new_state()
    acct = np.zeros(K.NACCT)
    state[K.S_LOSS_STREAK] = 5.0
    assert K.loss_streak_pause(state, params_b, float(T0))
    until = state[K.S_PAUSED_UNTIL]
    K.sim_close_trade(state, params_b, acct, -1.0, float(T0))  # the bar of the pause
    K.sim_close_trade(state, params_b, acct, -1.0, until - MIN)
    assert state[K.S_LOSS_STREAK] == 0
    K.sim_close_trade(state, params_b, acct, -1.0, until)  # the bar opening at the lift counts
    assert state[K.S_LOSS_STREAK] == 1
    assert acct[K.A_TRADES] == 3
