"""The tuner never measures candidates against a current score that is 0 only because the
loss-streak breaker paused the current parameters."""

from __future__ import annotations

import pytest

from jiritsu.backtest.metrics import Metrics
from jiritsu.tune import _current_score
from jiritsu.tune import walkforward as wf
from jiritsu.tune.grid import Candidate

STOPPED = ["SubBot-B: loss-streak breaker at 2019-01-02 10:00: stopped trading for good"]


def seg(sharpe: float, trades: int) -> Metrics:
    return Metrics(100, 100, 0.0, 0, sharpe, 0, 0.0, 0, 0, trades, 0, 0, 1000)


def current(*oos: tuple[float, int]) -> tuple[Candidate, wf.Evaluation]:
    segments = (seg(1.0, 20), *(seg(s, n) for s, n in oos))
    cand = Candidate(-1, {}, seg(0.0, 0), segments)
    return cand, wf.evaluate(cand, "sharpe_ratio", 10)


def test_a_current_run_that_traded_everywhere_is_scored_as_always() -> None:
    cand, ev = current((0.5, 4), (1.5, 6))
    assert _current_score(cand, ev, STOPPED) == (pytest.approx(1.0), "")
    cand, ev = current((0.5, 4), (0.0, 0))
    assert _current_score(cand, ev, []) == (pytest.approx(0.25), "")  # idle, never paused


def test_folds_idle_because_paused_do_not_count() -> None:
    cand, ev = current((0.8, 4), (0.0, 0), (0.0, 0))
    assert ev.out_of_sample == pytest.approx(0.8 / 3)  # what the tuner compared with before
    score, note = _current_score(cand, ev, STOPPED)
    assert score == pytest.approx(0.8)
    assert "stopped by a breaker" in note
    assert "did not trade in 2 of 3 out-of-sample folds" in note


def test_paused_through_every_fold_leaves_no_score_to_beat() -> None:
    cand, ev = current((0.0, 0), (0.0, 0))
    assert ev.out_of_sample == 0.0
    score, note = _current_score(cand, ev, STOPPED)
    assert score is None
    assert "2 of 2" in note
