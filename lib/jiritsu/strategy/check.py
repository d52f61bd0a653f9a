"""``jiritsu strategies check``: does a strategy decide bar ``i`` from bars ``<= i`` only, and the
same way whatever history was loaded?

A backtest computes signals over the whole stored range at once; a live bot sees only the window
its market data loaded, at least ``history`` closed bars of its timeframe
(:data:`jiritsu.market.data.LOOKBACK_BARS`). A strategy is safe when both give every decision the
same answer. Three experiments, each at several cut points ``c`` spread over the data, compared
with the signals over all the data:

- **deleted future**: the bars up to ``c`` only. A decision ``i <= c`` that changes depended on
  bars after ``c`` (lookahead: the classic "peeks at tomorrow's close");
- **altered future**: the bars after ``c`` replaced by a different random path. A change at
  ``i <= c`` is lookahead that survives a same-length series (normalising by a whole-series
  mean, a centred window...);
- **shorter history**: the bars from ``c - history + 1`` on, as a live bot loads them. A decision
  ``i >= c`` that changes depends on more history than the live bot has (warm-up instability:
  an indicator that never forgets its seed, a cumulative sum, a recursion on its own output).

Actions must match exactly and confidences to ``tolerance``. Every offending bar is reported with
the experiment that caught it; the first one (by bar) is what the CLI names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jiritsu.strategy.contract import Bars, Strategy, checked_signals

TOLERANCE = 1e-9
CUTS = 12


@dataclass(frozen=True)
class Finding:
    """A bar whose decision moved: ``index`` in the checked bars, its open ``ts`` (ms)."""

    index: int
    ts: int
    experiment: str  # "deleted future", "altered future" or "shorter history"
    cut: int  # the cut point of the experiment that caught it
    full: tuple[int, float]  # (action, confidence) over all the data
    changed: tuple[int, float]  # ... in the experiment


@dataclass
class CheckReport:
    strategy: str
    bars: int
    history: int
    cuts: list[int]
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        """The earliest offending bar (ties: the first experiment that caught it)."""
        return min(self.findings, key=lambda f: f.index) if self.findings else None

    def offending_bars(self) -> list[int]:
        return sorted({f.index for f in self.findings})


def _fresh(bars: Bars) -> Bars:
    return Bars(bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)


def _altered(bars: Bars, cut: int, rng: np.random.Generator) -> Bars:
    """The bars with everything after ``cut`` moved onto another random path (OHLC scaled by
    one factor per bar, so every bar stays a valid bar)."""
    n = len(bars)
    factor = np.ones(n)
    volume = bars.volume.copy()
    if cut + 1 < n:
        factor[cut + 1 :] = np.exp(np.cumsum(rng.normal(0.0, 0.02, n - cut - 1)))
        volume[cut + 1 :] = rng.permutation(volume[cut + 1 :])
    return Bars(
        bars.ts, bars.open * factor, bars.high * factor, bars.low * factor, bars.close * factor,
        volume,
    )  # fmt: skip


def _moved(
    full: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray], lo: int, offset: int
) -> np.ndarray:
    """Indices ``i >= lo`` (in full's numbering) where ``got[i - offset]`` differs from full."""
    fa, fc = full
    ga, gc = got
    hi = offset + ga.shape[0]
    a, c = fa[lo:hi], fc[lo:hi]
    b, d = ga[lo - offset :], gc[lo - offset :]
    differ = (a != b) | (np.abs(c - d) > TOLERANCE)
    return np.flatnonzero(differ) + lo


def cut_points(n: int, history: int, count: int = CUTS) -> list[int]:
    """``count`` cut points spread from ``history`` (or a tenth of the data) to the last bar."""
    if n < 3:
        return []
    lo = min(max(history, n // 10), n - 1)
    return sorted({int(c) for c in np.linspace(lo, n - 2, count)})


def check_strategy(
    strategy: Strategy,
    params: Any,
    bars: Bars,
    *,
    history: int,
    cuts: int = CUTS,
    seed: int = 0,
) -> CheckReport:
    """Run the three experiments (module docstring) on ``bars``."""
    n = len(bars)
    points = cut_points(n, history, cuts)
    report = CheckReport(strategy.name, n, history, points)
    full = checked_signals(strategy, _fresh(bars), params)
    rng = np.random.default_rng(seed)

    def record(indices: np.ndarray, experiment: str, cut: int, got: Any, offset: int) -> None:
        for i in indices.tolist():
            report.findings.append(
                Finding(
                    i, int(bars.ts[i]), experiment, cut,
                    (int(full[0][i]), float(full[1][i])),
                    (int(got[0][i - offset]), float(got[1][i - offset])),
                )
            )  # fmt: skip

    for cut in points:
        prefix = checked_signals(strategy, bars.head(cut + 1), params)
        record(_moved(full, prefix, 0, 0), "deleted future", cut, prefix, 0)
        altered = checked_signals(strategy, _altered(bars, cut, rng), params)
        head = (altered[0][: cut + 1], altered[1][: cut + 1])
        record(_moved(full, head, 0, 0), "altered future", cut, head, 0)
        start = max(0, cut - history + 1)
        if start > 0:
            tail = checked_signals(strategy, bars.tail_from(start), params)
            record(_moved(full, tail, cut, start), "shorter history", cut, tail, start)
    return report
