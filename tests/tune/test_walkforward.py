"""Walk-forward arithmetic by hand."""

from __future__ import annotations

import math

import pytest

from jiritsu.backtest.metrics import Metrics
from jiritsu.tune import walkforward as wf
from jiritsu.tune.grid import Candidate, expand, parse_grid, parse_sets

BOTS = ["SubBot-A", "SubBot-B", "SubBot-C"]


def m(ret: float = 0.0, sharpe: float = 0.0, dd: float = 0.0, trades: int = 1, bars: int = 10):
    return Metrics(100, 100 * (1 + ret), ret, 0, sharpe, 0, dd, 0, 0, trades, 0, 0, bars)


def test_boundaries_cut_equal_segments_on_minutes() -> None:
    day = 86_400_000
    assert wf.boundaries(0, 3 * day, 2) == (0, day, 2 * day, 3 * day)


def test_scores_are_higher_is_better() -> None:
    x = m(ret=0.1, sharpe=2.0, dd=0.3)
    assert wf.score(x, "sharpe_ratio") == 2.0
    assert wf.score(x, "profit") == pytest.approx(0.1)
    assert wf.score(x, "max_drawdown") == pytest.approx(-0.3)


def test_combine_segments_by_hand() -> None:
    parts = [m(ret=0.1, sharpe=1.0, dd=0.1, bars=10), m(ret=-0.5, sharpe=4.0, dd=0.2, bars=30)]
    assert wf.combine(parts, "profit") == (pytest.approx(1.1 * 0.5 - 1), 2)
    assert wf.combine(parts, "max_drawdown") == (pytest.approx(-0.2), 2)
    assert wf.combine(parts, "sharpe_ratio")[0] == pytest.approx((10 + 120) / 40)


def test_pick_on_in_sample_judge_out_of_sample() -> None:
    # segments S0 S1 S2: in sample = S0+S1, out of sample = mean(S1, S2)
    a = Candidate(0, {"k": 1}, m(), (m(sharpe=3), m(sharpe=3), m(sharpe=-1)))
    b = Candidate(1, {"k": 2}, m(), (m(sharpe=1), m(sharpe=1), m(sharpe=5)))
    thin = Candidate(2, {"k": 3}, m(), (m(sharpe=9, trades=0), m(sharpe=9, trades=0), m()))
    evals = [wf.evaluate(c, "sharpe_ratio", 1) for c in (a, b, thin)]
    assert [e.in_sample for e in evals] == [3.0, 1.0, 9.0]
    assert [e.out_of_sample for e in evals] == [1.0, 3.0, 4.5]
    assert not evals[2].eligible  # no trades in sample
    best = wf.pick(evals)
    assert best is not None
    assert best.params == {"k": 1}
    assert wf.fold_winners([a, b, thin], "sharpe_ratio", 1) == [0, 0]


def test_improvement_is_relative() -> None:
    assert wf.improvement(1.1, 1.0) == pytest.approx(0.1)
    assert wf.improvement(-0.9, -1.0) == pytest.approx(0.1)
    assert wf.improvement(0.2, 0.0) == pytest.approx(0.2)
    assert not math.isnan(wf.improvement(0.0, 0.0))


def test_grid_specs_expand_in_a_fixed_order() -> None:
    grid = parse_grid(["sl_ratio=0.5:2.0:0.1", "atr_period=10:30:2"], "SubBot-B", BOTS)
    cands = expand(grid)
    assert len(cands) == 176  # the design's example grid
    assert cands[0] == {"SubBot-B.dynamic_sizing.atr_period": 10,
                        "SubBot-B.strategy_params.sl_ratio": pytest.approx(0.5)}  # fmt: skip
    assert str(cands[-1]["SubBot-B.strategy_params.sl_ratio"]) == "2.0"  # exact decimals
    assert parse_sets(["SubBot-A.base_lot=60"], None, BOTS) == {"SubBot-A.base_lot": 60}
