"""The metrics computed with fewer passes over the curve are the very floats of their textbook
numpy formulas (a grid's ranking must not move by a rounding)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jiritsu.backtest.metrics import bar_returns, max_drawdown, sharpe, sortino


def curves() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    out = []
    for n in (0, 1, 2, 3, 8, 129, 8193, 100_003):
        walk = 1000 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
        out.append(walk)
        if n > 3:
            ruined = walk.copy()
            ruined[n // 2 :] = -5.0
            gap = walk.copy()
            gap[n // 3] = np.nan
            first = walk.copy()
            first[0] = 0.0
            out += [ruined, gap, first, np.full(n, 1000.0)]
    return out


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize("curve", curves(), ids=lambda c: str(c.shape[0]))
def test_the_metrics_are_the_textbook_floats(curve: np.ndarray) -> None:
    prev = curve[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        want = np.where(prev > 0.0, curve[1:] / prev - 1.0, 0.0) if curve.size > 1 else []
        r = bar_returns(curve)
        assert np.array_equal(r, np.asarray(want, dtype=np.float64), equal_nan=True)
        if r.size >= 2:
            sd = float(np.std(r, ddof=1))
            want_sharpe = float(np.mean(r)) / sd * math.sqrt(365) if sd > 1e-15 else 0.0
            assert same(sharpe(r, 365), want_sharpe)
        if r.size >= 1:
            dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
            want_sortino = float(np.mean(r)) / dd * math.sqrt(365) if dd > 1e-15 else 0.0
            assert same(sortino(r, 365), want_sortino)
        if curve.size:
            peak = np.maximum.accumulate(curve)
            want_dd = float(np.where(peak > 0.0, 1.0 - curve / peak, 0.0).max())
            assert same(max_drawdown(curve), want_dd)
