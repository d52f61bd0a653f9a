"""Indicators against values computed by hand, no lookahead, and numba == Python."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu import indicators as ind


def test_ema_seeded_with_the_simple_mean() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    out = ind.ema(x, 3)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx(2.0)  # mean(1, 2, 3)
    assert out[3] == pytest.approx(2.0 + (4.0 - 2.0) * 0.5)  # alpha = 2 / (3 + 1)
    assert out[4] == pytest.approx(3.0 + (5.0 - 3.0) * 0.5)


def test_rsi_by_hand() -> None:
    close = np.array([10.0, 11.0, 10.0, 12.0, 12.0])
    out = ind.rsi(close, 2)
    # diffs +1, -1, +2, 0; seed over the first two: gain 0.5, loss 0.5 -> RSI 50
    assert out[2] == pytest.approx(50.0)
    # Wilder: gain (0.5 + 2) / 2 = 1.25, loss (0.5 + 0) / 2 = 0.25 -> 100 - 100 / 6
    assert out[3] == pytest.approx(100 - 100 / 6)
    assert out[4] == pytest.approx(100 - 100 / (1 + 0.625 / 0.125))
    assert ind.rsi(np.array([1.0, 2.0, 3.0, 4.0]), 2)[3] == 100.0  # no losses


def test_atr_by_hand() -> None:
    high = np.array([10.0, 12.0, 13.0, 12.0])
    low = np.array([9.0, 10.0, 11.0, 8.0])
    close = np.array([9.5, 11.0, 12.0, 9.0])
    # TR: 1, max(2, 2.5, 0.5) = 2.5, max(2, 2, 0) = 2, max(4, 0, 4) = 4
    assert ind.true_range(high, low, close).tolist() == [1.0, 2.5, 2.0, 4.0]
    out = ind.atr(high, low, close, 2)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx((2.5 + 2.0) / 2)
    assert out[3] == pytest.approx((2.25 * 1 + 4.0) / 2)


def test_adx_trending_up_has_plus_di_above_minus_di_and_a_rising_adx() -> None:
    i = np.arange(60, dtype=float)
    high, low = 100 + i * 2 + 1, 100 + i * 2 - 1
    close = 100 + i * 2
    adx, plus, minus = ind.adx(high, low, close, 14)
    assert np.isnan(adx[: 2 * 14 - 1]).all()
    assert not np.isnan(adx[2 * 14 - 1])
    assert (plus[14:] > minus[14:]).all()
    assert adx[-1] > 90  # a perfectly steady trend
    flat = ind.adx(np.full(60, 101.0), np.full(60, 99.0), np.full(60, 100.0), 14)[0]
    assert flat[-1] == 0.0


def test_no_lookahead_changing_the_future_changes_nothing_before() -> None:
    rng = np.random.default_rng(3)
    close = 100 + np.cumsum(rng.normal(0, 1, 400))
    high, low = close + rng.uniform(0, 1, 400), close - rng.uniform(0, 1, 400)
    t = 250
    altered = [a.copy() for a in (high, low, close)]
    for a in altered:
        a[t + 1 :] *= 1.5
    for before, after in (
        (ind.ema(close, 20), ind.ema(altered[2], 20)),
        (ind.rsi(close, 14), ind.rsi(altered[2], 14)),
        (ind.atr(high, low, close, 14), ind.atr(*altered, 14)),
        (ind.adx(high, low, close, 14)[0], ind.adx(*altered, 14)[0]),
    ):
        np.testing.assert_array_equal(before[: t + 1], after[: t + 1])


def test_compiled_versions_equal_python() -> None:
    rng = np.random.default_rng(5)
    close = 100 + np.cumsum(rng.normal(0, 1, 1000))
    high, low = close + 0.5, close - 0.5
    fast = ind.compiled(cache=False)
    np.testing.assert_array_equal(fast.ema(close, 12), ind.ema(close, 12))
    np.testing.assert_array_equal(fast.rsi(close, 14), ind.rsi(close, 14))
    np.testing.assert_array_equal(fast.atr(high, low, close, 14), ind.atr(high, low, close, 14))
    for a, b in zip(fast.adx(high, low, close, 14), ind.adx(high, low, close, 14), strict=True):
        np.testing.assert_array_equal(a, b)
