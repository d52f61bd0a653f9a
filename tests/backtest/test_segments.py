"""Exposure and per-segment metrics (what walk-forward scores) by hand."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.backtest.metrics import compute_metrics
from jiritsu.backtest.runner import BacktestResult, _exposure, segment_metrics

M = 60_000


def fill(ts: int, side: int, qty: float, price: float, kind: int = 0, pnl: float = 0.0):
    return [ts, side, qty, price, 0.1, kind, 0 if kind == 0 else -1, pnl]


def test_exposure_counts_time_with_a_position() -> None:
    fills = np.array([fill(M, 1, 0.01, 10000), fill(2 * M, -1, 0.01, 10200, 2, 1.8)])
    assert _exposure(fills, 0, 4 * M, 5.0) == pytest.approx(0.25)
    # still open at the end: minutes 1, 2 and 3
    assert _exposure(fills[:1], 0, 4 * M, 5.0) == pytest.approx(0.75)
    # only the part inside the period counts
    assert _exposure(fills[:1], 2 * M, 4 * M, 5.0) == pytest.approx(1.0)


def test_spot_fee_dust_is_not_a_position() -> None:
    """A spot buy's fee is paid in the coin, so each round trip sells a little less than it
    bought (0.01 in, 0.00999 arrive and are sold). 40 round trips of one minute in every four:
    25 % of the time in position. Summing gross buys against sells piled the 0.00001 remainders
    up until they looked like an open position worth more than the 1 USDT minimum."""
    step, min_qty, min_notional = 0.00001, 0.00001, 1.0
    rows = []
    for i in range(40):
        t = 4 * i * M
        buy = [t, 1, 0.01, 10000.0, 0.1, 0, 0, 0.0]  # fee 0.00001 BTC = 0.1 USDT
        rows += [buy, [t + M, -1, 0.00999, 10000.0, 0.05, 0, -1, -0.15]]
    fills = np.array(rows)
    exposure = _exposure(fills, 0, 160 * M, min_notional, step, min_qty, True)
    assert exposure == pytest.approx(0.25)


def test_segment_starts_from_the_equity_before_it() -> None:
    ts = np.arange(6, dtype=np.int64) * M
    eq = np.array([100.0, 101, 102, 99, 104, 105])
    fills = np.array([fill(M, 1, 0.01, 10000), fill(3 * M, -1, 0.01, 9900, 3, -1.0)])
    full = compute_metrics(ts, eq, np.array([-1.0]), 0.2, 0.0, initial_equity=100.0)
    res = BacktestResult("b", "BTCUSDT", "1", "ema_cross", {}, 0, 6 * M, ts, eq,
                         fills, full, 2, (5.0, 0.0, 0.0, False))  # fmt: skip
    seg = segment_metrics(res, 3 * M, 6 * M)
    assert seg.initial_equity == 102.0
    assert seg.total_return == pytest.approx(105 / 102 - 1)
    assert seg.trade_count == 1
    assert seg.fees_paid == pytest.approx(0.1)
    assert seg.bars == 3
    assert seg.max_drawdown == pytest.approx(3 / 102)
