"""Gaps in a candle series: bars that should exist between two present bars but do not.

Exchanges emit no candle for a minute without trades, and outages leave longer holes. A backtest
that silently treats two bars an hour apart as neighbours gets its indicators wrong, so importers
report the gaps and callers can decide. Everything here is vectorised numpy: a year of 1-minute
bars takes milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class Gap:
    """Missing bars between two present ones: ``start_ms`` is the open of the first missing
    bar, ``end_ms`` the open of the last (both inclusive)."""

    start_ms: int
    end_ms: int
    missing_bars: int


def _as_ts(ts: Any) -> np.ndarray:
    arr = np.asarray(ts)
    if arr.ndim != 1:
        raise ValueError(f"timestamps must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"timestamps must be integer epoch milliseconds, got {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _steps(ts: np.ndarray, interval_ms: int) -> np.ndarray:
    if interval_ms <= 0:
        raise ValueError(f"interval_ms must be positive, got {interval_ms}")
    steps = np.diff(ts)
    if steps.size and steps.min() <= 0:
        at = int(np.argmax(steps <= 0)) + 1
        raise ValueError(f"timestamps must be strictly increasing: index {at} is {ts[at]}")
    if steps.size and np.any(steps % interval_ms):
        at = int(np.argmax(steps % interval_ms != 0)) + 1
        raise ValueError(
            f"timestamps are not on a {interval_ms} ms grid: index {at} is {ts[at]}, "
            f"{int(steps[at - 1])} ms after the previous one"
        )
    return steps


def find_gaps(ts: Any, interval_ms: int) -> list[Gap]:
    """Every run of missing bars between the first and the last timestamp, in order.

    ``ts`` is any 1-D integer array-like (numpy array, polars Series, list) of bar opens in
    epoch ms, strictly increasing and on one grid of ``interval_ms``; anything else raises
    ValueError because a gap count over unsorted or misaligned data would be meaningless.
    """
    arr = _as_ts(ts)
    steps = _steps(arr, interval_ms)
    where = np.flatnonzero(steps > interval_ms)
    starts = arr[where] + interval_ms
    ends = arr[where + 1] - interval_ms
    missing = steps[where] // interval_ms - 1
    return [
        Gap(int(s), int(e), int(m))
        for s, e, m in zip(starts.tolist(), ends.tolist(), missing.tolist(), strict=True)
    ]


def _fmt_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True, slots=True)
class GapReport:
    """Gap figures of one series, as printed by ``data info`` and checked by importers.

    ``coverage`` is present bars / expected bars over the span from the first to the last bar
    (1.0 = no gaps; 0.0 for an empty series).
    """

    interval_ms: int
    present: int
    first_ts: int | None
    last_ts: int | None
    gaps: list[Gap] = field(default_factory=list)

    @classmethod
    def from_ts(cls, ts: Any, interval_ms: int) -> GapReport:
        """Build the report from bar opens (same rules as :func:`find_gaps`)."""
        arr = _as_ts(ts)
        gaps = find_gaps(arr, interval_ms)
        if arr.size == 0:
            return cls(interval_ms, 0, None, None, gaps)
        return cls(interval_ms, int(arr.size), int(arr[0]), int(arr[-1]), gaps)

    @property
    def count(self) -> int:
        """Number of gap events (runs of consecutive missing bars)."""
        return len(self.gaps)

    @property
    def missing_bars(self) -> int:
        return sum(g.missing_bars for g in self.gaps)

    @property
    def expected(self) -> int:
        """Bars a gap-free series over the same span would have."""
        if self.first_ts is None or self.last_ts is None:
            return 0
        return (self.last_ts - self.first_ts) // self.interval_ms + 1

    @property
    def longest(self) -> Gap | None:
        """The longest gap (the earliest one on a tie), or None without gaps."""
        if not self.gaps:
            return None
        return max(self.gaps, key=lambda g: g.missing_bars)

    @property
    def coverage(self) -> float:
        expected = self.expected
        return self.present / expected if expected else 0.0

    def summary(self) -> str:
        """One line for humans, e.g. for ``jiritsu data info``."""
        if self.first_ts is None or self.last_ts is None:
            return "no bars"
        span = f"{_fmt_ms(self.first_ts)} .. {_fmt_ms(self.last_ts)} UTC"
        head = f"{self.present:,} bars {span}"
        if not self.gaps:
            return f"{head}; no gaps"
        longest = self.longest
        assert longest is not None
        return (
            f"{head}; {self.count:,} gaps, {self.missing_bars:,} missing bars "
            f"(coverage {self.coverage:.2%}); longest {longest.missing_bars:,} bars from "
            f"{_fmt_ms(longest.start_ms)}"
        )
