"""Metrics against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jiritsu.backtest.metrics import (
    bar_returns,
    cagr,
    compute_metrics,
    max_drawdown,
    periods_per_year,
    sharpe,
    sortino,
)


def test_periods_per_year_is_24_7() -> None:
    assert periods_per_year(1) == 525_600
    assert periods_per_year(15) == 35_040
    assert periods_per_year(1440) == 365


def test_sharpe_and_sortino_by_hand() -> None:
    r = np.array([0.01, -0.01, 0.02, 0.0])
    # mean 0.005; sample std: deviations .005 -.015 .015 -.005 -> squares sum 5e-4 / 3
    sd = math.sqrt(5e-4 / 3)
    assert sharpe(r, 365) == pytest.approx(0.005 / sd * math.sqrt(365))
    # downside: sqrt((0 + 1e-4 + 0 + 0) / 4) = 0.005 -> Sortino = 1 x sqrt(365)
    assert sortino(r, 365) == pytest.approx(math.sqrt(365))


def test_flat_returns_give_zero_ratios() -> None:
    r = np.zeros(10)
    assert sharpe(r, 365) == 0.0
    assert sortino(r, 365) == 0.0


def test_max_drawdown_by_hand() -> None:
    # peak 120, trough 90 -> 25 %; the later 130 -> 104 is only 20 %
    assert max_drawdown(np.array([100, 120, 90, 110, 130, 104.0])) == pytest.approx(0.25)


def test_cagr_by_hand() -> None:
    year = 525_600 * 60_000
    assert cagr(100, 121, 2 * year) == pytest.approx(0.1)
    assert cagr(100, 110, year / 2) == pytest.approx(0.21)


def test_returns_across_a_gap_count_as_one_period() -> None:
    assert bar_returns(np.array([100.0, 110.0, 99.0])) == pytest.approx([0.1, -0.1])


def test_compute_metrics_by_hand() -> None:
    day = 86_400_000
    ts = np.array([0, day, 2 * day], dtype=np.int64)
    eq = np.array([101.0, 99.0, 102.0])
    m = compute_metrics(
        ts, eq, np.array([3.0, -1.0, -1.0]), 0.5, 0.25, bar_minutes=1440, initial_equity=100.0
    )
    assert m.total_return == pytest.approx(0.02)
    assert m.win_rate == pytest.approx(1 / 3)
    assert m.profit_factor == pytest.approx(1.5)
    assert m.trade_count == 3
    assert m.max_drawdown == pytest.approx(2 / 101)
    assert m.fees_paid == 0.5
    assert m.exposure == 0.25
    assert m.bars == 3
    r = np.array([0.01, 99 / 101 - 1, 102 / 99 - 1])
    assert m.sharpe_ratio == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(365))
    # three days elapsed from the first open to the last close
    assert m.cagr == pytest.approx(1.02 ** (365 / 3) - 1)


def test_profit_factor_without_losses_is_undefined_in_json() -> None:
    m = compute_metrics(np.array([0]), np.array([101.0]), np.array([1.0]), 0, 0, initial_equity=100)
    assert m.profit_factor == math.inf
    assert m.as_dict()["profit_factor"] is None
