"""Hand-computed scenarios through the backtester's path to the strategy kernel.

A one-minute "bot timeframe" on a handful of bars, signals injected, prices round: every fill
price, fee and PnL below is worked out by hand from the fill model's rules (market orders at
the next open, TP/SL on touch with stop first, limits when a bar trades through).
"""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.backtest.runner import simulate_arrays
from jiritsu.config.settings import Settings
from jiritsu.strategy import kernel as K
from jiritsu.strategy import params as P

M = 60_000


def base_params(**over: float) -> np.ndarray:
    settings = Settings()
    p = P.build_params(settings.bot("SubBot-B"), settings)
    p[P.P_TF_MS] = M
    p[P.P_SIZING] = 0.0  # notional = base_lot = 100
    p[P.P_SIZING_MODE] = P.SIZING_LOT
    p[P.P_BASE_LOT] = 100.0
    p[P.P_SPLIT] = 0.0
    p[P.P_SPLIT_COUNT] = 1
    p[P.P_TPSL] = 1.0
    p[P.P_TP_RATIO] = 2.0
    p[P.P_SL_RATIO] = 1.0
    p[P.P_MIN_CONF] = 0.0
    p[P.P_TAKER_FEE] = 0.001
    p[P.P_MAKER_FEE] = 0.0002
    p[P.P_SLIPPAGE_BPS] = 0.0
    p[P.P_VOL_FACTOR] = 0.0
    p[P.P_MAX_LOSSES] = 0
    for name, value in over.items():
        p[getattr(P, name)] = value
    return p


def run(bars: list[tuple[float, float, float, float]], buy_at: int = 0, p=None, ts=None):
    """Bars (o, h, l, c) one minute apart (or at ``ts``); a BUY on bar ``buy_at``; ATR 100."""
    arr = np.array(bars, dtype=np.float64)
    ts = np.arange(len(bars), dtype=np.float64) * M if ts is None else np.asarray(ts, float)
    sig = np.zeros(len(bars), dtype=np.int64)
    sig[buy_at] = 1
    conf = np.ones(len(bars))
    atr = np.full(len(bars), 100.0)
    p = base_params() if p is None else p
    fills, _na, acct, equity, _pauses = simulate_arrays(
        p, ts, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.zeros(len(bars)), ts + M,
        arr[:, 3], atr, sig, conf, 1000.0, 0.0, ts[-1] + M,
    )  # fmt: skip
    return fills, acct, equity


FLAT = (10000.0, 10010.0, 9990.0, 10000.0)


def test_take_profit_hit() -> None:
    # BUY decided at bar 0's close (t = 1 min) -> market fill at bar 1's open 10000.
    # qty = 100 / 10000 = 0.01; TP = 10000 + 2 x 100 = 10200, SL = 9900.
    fills, acct, equity = run([FLAT, FLAT, (10000, 10250, 9990, 10100), FLAT])
    assert fills.shape[0] == 2
    entry, exit_ = fills
    assert entry[K.F_TS] == 1 * M
    assert entry[K.F_PRICE] == 10000.0
    assert entry[K.F_QTY] == pytest.approx(0.01)
    assert entry[K.F_FEE] == pytest.approx(0.1)  # 100 x 0.1 %
    assert exit_[K.F_KIND] == 2
    assert exit_[K.F_TS] == 2 * M
    assert exit_[K.F_PRICE] == 10200.0
    assert exit_[K.F_FEE] == pytest.approx(0.102)
    # 0.01 x 200 - 0.102 - 0.1
    assert exit_[K.F_PNL] == pytest.approx(1.798)
    assert acct[K.A_WALLET] == pytest.approx(1001.798)
    assert equity[-1] == pytest.approx(1001.798)


def test_stop_loss_hit() -> None:
    fills, acct, _ = run([FLAT, FLAT, (10000, 10050, 9880, 9950), FLAT])
    exit_ = fills[1]
    assert exit_[K.F_KIND] == 3
    assert exit_[K.F_PRICE] == 9900.0
    # 0.01 x -100 - 0.099 - 0.1
    assert exit_[K.F_PNL] == pytest.approx(-1.199)
    assert acct[K.A_WALLET] == pytest.approx(998.801)


def test_both_in_one_bar_is_a_stop() -> None:
    fills, _, _ = run([FLAT, FLAT, (10000, 10250, 9850, 10000), FLAT])
    assert fills[1][K.F_KIND] == 3
    assert fills[1][K.F_PRICE] == 9900.0


def test_fee_and_slippage_amounts() -> None:
    # 5 bps: entry 10000 x 1.0005 = 10005; TP from the fill's average 10005 + 200 = 10205,
    # exit at 10205 x 0.9995 = 10199.8975.
    p = base_params(P_SLIPPAGE_BPS=5.0)
    fills, _, _ = run([FLAT, FLAT, (10000, 10300, 9990, 10100), FLAT], p=p)
    entry, exit_ = fills
    assert entry[K.F_PRICE] == pytest.approx(10005.0)
    assert entry[K.F_FEE] == pytest.approx(0.01 * 10005.0 * 0.001)
    assert exit_[K.F_PRICE] == pytest.approx(10205.0 * 0.9995)
    assert exit_[K.F_FEE] == pytest.approx(0.01 * 10205.0 * 0.9995 * 0.001)
    expected = 0.01 * (10205.0 * 0.9995 - 10005.0) - exit_[K.F_FEE] - entry[K.F_FEE]
    assert exit_[K.F_PNL] == pytest.approx(expected)


def test_split_legs_partly_filled() -> None:
    # 3 price legs: 100 / 10000 = 0.01 -> legs of 0.003; leg 0 market at 10000, limits at
    # 10000 x (1 - 0.002) = 9980 and 9960. A low of 9970 trades through 9980 only; the plan
    # times out after 600 s and cancels leg 2.
    p = base_params(
        P_SPLIT=1.0, P_SPLIT_COUNT=3, P_SPLIT_METHOD=P.SPLIT_PRICE, P_SPLIT_STEP=0.002,
        P_SPLIT_TIMEOUT_MS=600_000.0, P_TPSL=0.0,
    )  # fmt: skip
    bars = [FLAT, FLAT, (10000, 10010, 9970, 9990)] + [(9990, 10000, 9965, 9990)] * 15
    fills, _, _ = run(bars, p=p)
    assert fills.shape[0] == 2
    assert [f[K.F_LEG] for f in fills] == [0, 1]
    assert fills[0][K.F_PRICE] == 10000.0
    assert fills[1][K.F_PRICE] == 9980.0
    assert fills[0][K.F_QTY] == pytest.approx(0.003)
    assert fills[1][K.F_QTY] == pytest.approx(0.003)
    assert fills[1][K.F_FEE] == pytest.approx(0.003 * 9980 * 0.0002)  # maker


def test_gap_opens_beyond_the_stop() -> None:
    # Bars 3..9 are missing; the bar after the gap opens at 9800, below the 9900 stop: the
    # exit is at that open (worse than the stop), and no bar is invented in the equity curve.
    bars = [FLAT, FLAT, FLAT, (9800, 9850, 9750, 9820), FLAT]
    ts = [0, M, 2 * M, 10 * M, 11 * M]
    fills, _, equity = run(bars, ts=ts)
    assert fills[1][K.F_TS] == 10 * M
    assert fills[1][K.F_PRICE] == 9800.0
    assert equity.shape[0] == 5


def test_a_decision_before_a_gap_waits_for_the_next_bar() -> None:
    # The BUY bar closes at 1 min and the next stored bar opens at 10 min. As the trade loop
    # does, the decision is made at the close (whether the next minute exists is not known
    # then) and its market order fills at the open of the next bar that exists.
    bars = [FLAT, FLAT, FLAT]
    fills, _, _ = run(bars, ts=[0, 10 * M, 11 * M])
    assert fills.shape[0] >= 1
    assert fills[0][K.F_TS] == 10 * M
    assert fills[0][K.F_PRICE] == 10000.0


def test_repeated_runs_are_identical() -> None:
    bars = [FLAT, FLAT, (10000, 10250, 9990, 10100), FLAT]
    a = run(bars)
    b = run(bars)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x, y)


def test_a_spot_round_trip_counts_as_a_trade() -> None:
    from jiritsu.backtest.runner import CandleArrays, closing_mask, run_bot
    from jiritsu.market.synth import synth_candles

    settings = Settings()
    result = run_bot(settings, "SubBot-A", CandleArrays("BTCUSDT", synth_candles(days=20, seed=1)))
    sells = result.fills[result.fills[:, K.F_SIDE] < 0]
    assert sells.shape[0] > 0  # spot: every sell closes (part of) the position
    assert np.array_equal(result.fills[closing_mask(result.fills)], sells)
    assert result.metrics.trade_count == sells.shape[0]
    assert {t["kind"] for t in result.trades() if t["side"] == "Sell"} <= {"exit"}
