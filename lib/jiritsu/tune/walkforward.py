"""Walk-forward validation: choose on the past, judge on what followed.

The tuning period is cut into ``folds + 1`` equal segments S0..Sk. Fold i (1..k) takes
S0..S(i-1) as its in-sample window (anchored, growing) and Si as its out-of-sample window.
Each candidate is backtested ONCE over the whole period (decisions never look ahead, so a
segment of one long run is what a run that started earlier and carried its state would see);
its metrics are then cut per segment.

Selection: the winner is the eligible candidate with the best score on the LAST fold's
in-sample window (everything but the newest segment); a candidate with fewer than
``min_trades`` closed trades in sample is ineligible. It is judged, like the current parameters,
on the out-of-sample folds: the mean of its scores on S1..Sk. The per-fold winners are kept in
the report as a stability check (a winner that changes every fold is a warning sign).

Scores are "higher is better": ``sharpe_ratio``, ``profit`` (total return) and
``max_drawdown`` (its negative).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jiritsu.backtest.metrics import Metrics
    from jiritsu.tune.grid import Candidate


def score(metrics: Metrics, target: str) -> float:
    """The target metric as a higher-is-better number."""
    if target == "sharpe_ratio":
        return float(metrics.sharpe_ratio)
    if target == "profit":
        return float(metrics.total_return)
    if target == "max_drawdown":
        return -float(metrics.max_drawdown)
    raise ValueError(f"unknown target metric {target!r}")


def boundaries(start_ms: int, end_ms: int, folds: int) -> tuple[int, ...]:
    """``folds + 1`` equal segments of ``[start, end)``, edges on whole minutes."""
    n = folds + 1
    step = (end_ms - start_ms) / n
    edges = [start_ms + round(step * i / 60_000.0) * 60_000 for i in range(n)]
    return (*edges, end_ms)


def combine(parts: Sequence[Metrics], target: str) -> tuple[float, int]:
    """Score of consecutive segments taken together: compounded return for ``profit``, worst
    drawdown for ``max_drawdown``, bar-weighted mean Sharpe; plus their total trades."""
    trades = sum(p.trade_count for p in parts)
    if not parts:
        return 0.0, 0
    if target == "profit":
        growth = math.prod(1.0 + p.total_return for p in parts)
        return growth - 1.0, trades
    if target == "max_drawdown":
        return -max(p.max_drawdown for p in parts), trades
    bars = sum(p.bars for p in parts)
    if bars == 0:
        return 0.0, trades
    return sum(p.sharpe_ratio * p.bars for p in parts) / bars, trades


@dataclass
class Evaluation:
    """One candidate under walk-forward: in-sample (last fold) and out-of-sample scores."""

    index: int
    params: dict[str, Any]
    in_sample: float | None
    in_sample_trades: int
    out_of_sample: float | None
    folds_oos: list[float] = field(default_factory=list)
    eligible: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "params": {k: float(v) for k, v in self.params.items()},
            "in_sample": self.in_sample,
            "in_sample_trades": self.in_sample_trades,
            "out_of_sample": self.out_of_sample,
            "folds_oos": self.folds_oos,
            "eligible": self.eligible,
            "error": self.error,
        }


def evaluate(candidate: Candidate, target: str, min_trades: int) -> Evaluation:
    """Scores of one candidate from its per-segment metrics (see the module docstring)."""
    segs = list(candidate.segments)
    if candidate.metrics is None or len(segs) < 2:
        return Evaluation(candidate.index, candidate.params, None, 0, None, [], False,
                          candidate.error or "no segments")  # fmt: skip
    k = len(segs) - 1
    is_score, is_trades = combine(segs[:k], target)
    oos = [score(s, target) for s in segs[1:]]
    return Evaluation(
        index=candidate.index,
        params=candidate.params,
        in_sample=is_score,
        in_sample_trades=is_trades,
        out_of_sample=sum(oos) / len(oos),
        folds_oos=oos,
        eligible=is_trades >= min_trades,
    )


def fold_winners(candidates: Sequence[Candidate], target: str, min_trades: int) -> list[int]:
    """Per fold i, the index of the best eligible candidate on S0..S(i-1) (-1: none)."""
    if not candidates or not candidates[0].segments:
        return []
    k = len(candidates[0].segments) - 1
    winners = []
    for i in range(1, k + 1):
        best, best_score = -1, -math.inf
        for c in candidates:
            if c.metrics is None:
                continue
            s, trades = combine(c.segments[:i], target)
            if trades >= min_trades and s > best_score:
                best, best_score = c.index, s
        winners.append(best)
    return winners


def pick(evals: Sequence[Evaluation]) -> Evaluation | None:
    """The eligible candidate with the best in-sample score (ties: the earlier one)."""
    best: Evaluation | None = None
    for e in evals:
        if not e.eligible or e.in_sample is None:
            continue
        if best is None or e.in_sample > (best.in_sample or -math.inf):
            best = e
    return best


def improvement(best: float, current: float) -> float:
    """Relative improvement of ``best`` over ``current`` (absolute when current is ~0)."""
    if abs(current) < 1e-12:
        return best - current
    return (best - current) / abs(current)
