"""A long curve's Sharpe, Sortino and drawdown come from compiled passes (a dozen numpy passes
took 9 ms a year of minutes); each is the very float of its textbook numpy formula, ruin, gaps
and all (a grid's ranking must not move by a rounding)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jiritsu.backtest.metrics import COMPILED_FROM, compute_metrics, least_to_peak

N = COMPILED_FROM * 4 + 3


def curves() -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    walk = 1000 * np.exp(np.cumsum(rng.normal(0, 0.002, N)))
    out = [("walk", walk), ("flat", np.full(N, 1000.0))]
    for name, at, value in (("ruin", N // 2, -5.0), ("zero", N // 3, 0.0), ("nan", N // 4, np.nan),
                            ("inf", N // 5, np.inf), ("-inf", N // 6, -np.inf)):  # fmt: skip
        bent = walk.copy()
        if name == "ruin":
            bent[at:] = value  # the account is gone for good
        else:
            bent[at] = value
        out.append((name, bent))
    return out


def textbook(start: float, curve: np.ndarray) -> tuple[float, float, float]:
    """(Sharpe, Sortino, drawdown) of ``[start, *curve]`` per bar (periods of one)."""
    full = np.concatenate(([start], curve))
    prev = full[:-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.where(prev > 0.0, full[1:] / prev - 1.0, 0.0)
        sd = float(np.std(r, ddof=1))
        sharpe = float(np.mean(r)) / sd if sd > 1e-15 else 0.0
        dd = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
        sortino = float(np.mean(r)) / dd if dd > 1e-15 else 0.0
        peak = np.maximum.accumulate(full)
        drawdown = float(np.where(peak > 0.0, 1.0 - full / peak, 0.0).max())
    return sharpe, sortino, drawdown


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@pytest.mark.parametrize(("name", "curve"), curves(), ids=[c[0] for c in curves()])
@pytest.mark.parametrize("start", [1000.0, 5000.0, 0.5])  # at, above and below the curve
def test_the_ratios_and_drawdown_are_the_textbook_floats(
    name: str, curve: np.ndarray, start: float
) -> None:
    ts = np.arange(N, dtype=np.int64) * 60_000
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        got = compute_metrics(ts, curve, np.zeros(0), 0.0, 0.0, 1.0, initial_equity=start)
    scale = math.sqrt(525_600.0)
    sharpe, sortino, drawdown = textbook(start, curve)
    assert same(got.max_drawdown, drawdown)
    assert same(got.sharpe_ratio, sharpe * scale)
    assert same(got.sortino_ratio, sortino * scale)


def test_the_compiled_passes_are_the_python_ones() -> None:
    from jiritsu.backtest.metrics import _compiled, returns_after

    fast = _compiled()
    named = dict(curves())
    walk = named["walk"]
    assert fast.least_to_peak(1000.0, walk) == least_to_peak(1000.0, walk)
    assert math.isnan(fast.least_to_peak(1000.0, named["nan"]))  # a NaN is not passed over
    r1, r2 = np.empty(N), np.empty(N)
    assert fast.returns_after(1000.0, walk, r1)
    assert returns_after(1000.0, walk, r2)
    assert np.array_equal(r1, r2)
    assert not fast.returns_after(1000.0, named["zero"], r1)  # a point at 0 ends the fast path
    r = np.array([0.5, -0.25, np.nan, 0.0, -0.0, np.inf])
    want_dev = (r - 0.25) ** 2
    dev = np.empty(r.shape[0])
    fast.squares(r, 0.25, dev)
    assert np.array_equal(dev, want_dev, equal_nan=True)
    assert np.array_equal(r, [0.0, 0.0625, np.nan, 0.0, 0.0, 0.0], equal_nan=True)
