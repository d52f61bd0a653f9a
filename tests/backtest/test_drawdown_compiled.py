"""A long curve's drawdown comes from one compiled pass (numpy's running maximum took 3 ms a
year of minutes); it is the very float of the textbook formula, ruin, gaps and all."""

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


def textbook(start: float, curve: np.ndarray) -> float:
    full = np.concatenate(([start], curve))
    peak = np.maximum.accumulate(full)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.where(peak > 0.0, 1.0 - full / peak, 0.0).max())


@pytest.mark.parametrize(("name", "curve"), curves(), ids=[c[0] for c in curves()])
@pytest.mark.parametrize("start", [1000.0, 5000.0, 0.5])  # at, above and below the curve
def test_the_drawdown_is_the_textbook_float(name: str, curve: np.ndarray, start: float) -> None:
    ts = np.arange(N, dtype=np.int64) * 60_000
    with np.errstate(divide="ignore", invalid="ignore"):
        got = compute_metrics(ts, curve, np.zeros(0), 0.0, 0.0, initial_equity=start)
    want = textbook(start, curve)
    assert got.max_drawdown == want or (math.isnan(want) and math.isnan(got.max_drawdown))


def test_the_loop_runs_the_same_in_python() -> None:
    from jiritsu.backtest.metrics import _compiled

    named = dict(curves())
    assert _compiled()(1000.0, named["walk"]) == least_to_peak(1000.0, named["walk"])
    assert math.isnan(least_to_peak(1000.0, named["nan"]))  # a NaN is not passed over
