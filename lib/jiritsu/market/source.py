"""Where the paper exchange gets its prices: a :class:`MarketSource`.

:class:`ReplaySource` holds 1-minute candles in memory and reveals them by a clock; the
market-data service (:class:`jiritsu.market.data.MarketData`) keeps one, filled from the candle
store and, for live prices, topped up from Bybit's public klines first.

The rule every source keeps: a bar is visible only once it has CLOSED (``ts + bar_ms <= now``).
The paper exchange fills orders on closed bars only, so it can never act on a price that, at the
simulated time, had not happened yet. A missing bar (a gap in the data) is simply absent: nothing
fills in that minute, and pending orders wait for the next bar that exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

import numpy as np
import polars as pl

from jiritsu.clock import Clock
from jiritsu.errors import UsageError
from jiritsu.market.frames import (
    bucket_offset_ms,
    empty_frame,
    interval_ms,
    normalize_interval,
    resample,
    validate_frame,
)
from jiritsu.market.symbols import normalize_symbol

if TYPE_CHECKING:
    pass

__all__ = ["Bar", "MarketSource", "ReplaySource"]


class Bar(NamedTuple):
    """One candle: ``ts`` is the bar's OPEN in epoch ms; prices are float market data."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


@runtime_checkable
class MarketSource(Protocol):
    """Closed bars and last prices as of a time; ``now_ms`` defaults to the source's clock."""

    bar_ms: int  # length of the bars the exchange fills on (1-minute: 60_000)

    def bars_between(
        self, symbol: str, start_ms: int, end_ms: int, *, now_ms: int | None = None
    ) -> pl.DataFrame:
        """Base bars with ``start_ms <= ts < end_ms`` that have closed by ``now_ms``."""
        ...

    def last_closed_bar(self, symbol: str, now_ms: int | None = None) -> Bar | None:
        """The newest bar closed by ``now_ms``, or None when there is none."""
        ...

    def price(self, symbol: str, now_ms: int | None = None) -> float | None:
        """The last price: close of :meth:`last_closed_bar`."""
        ...

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
        *,
        now_ms: int | None = None,
    ) -> pl.DataFrame:
        """The newest ``limit`` CLOSED bars of ``interval`` with ``start_ms <= ts < end_ms``."""
        ...


class _Series:
    """One symbol's candles with the ``ts`` column as numpy for binary search."""

    __slots__ = ("frame", "ts")

    def __init__(self, frame: pl.DataFrame) -> None:
        self.frame = frame.rechunk()
        self.ts: np.ndarray = self.frame["ts"].to_numpy()


class ReplaySource:
    """Stored candles replayed by a :class:`~jiritsu.clock.Clock` (normally a SimClock).

    Build it from frames (:class:`~jiritsu.market.data.MarketData` adds the stored ones).
    ``interval is the length of the stored bars ("1" = 1-minute, the
    normal case); coarser bars make quicker demos with coarser fills.
    """

    def __init__(
        self,
        clock: Clock,
        frames: Mapping[str, pl.DataFrame] | None = None,
        *,
        interval: str = "1",
    ) -> None:
        self.clock = clock
        self.interval = normalize_interval(interval)
        self.bar_ms = interval_ms(self.interval)
        self._series: dict[str, _Series] = {}
        for symbol, frame in (frames or {}).items():
            self.add(symbol, frame)

    def add(self, symbol: str, frame: pl.DataFrame) -> None:
        """Add (or replace) the candles of one symbol; the frame must be canonical."""
        validate_frame(frame)
        self._series[normalize_symbol(symbol)] = _Series(frame)

    @property
    def symbols(self) -> list[str]:
        return sorted(self._series)

    # --- the protocol ---------------------------------------------------------------------

    def _now(self, now_ms: int | None) -> int:
        return self.clock.now_ms() if now_ms is None else int(now_ms)

    def _closed_end(self, now_ms: int | None) -> int:
        """Exclusive upper bound on ``ts`` of the bars closed at ``now``."""
        return self._now(now_ms) - self.bar_ms + 1

    def bars_between(
        self, symbol: str, start_ms: int, end_ms: int, *, now_ms: int | None = None
    ) -> pl.DataFrame:
        series = self._series.get(normalize_symbol(symbol))
        if series is None:
            return empty_frame()
        end = min(int(end_ms), self._closed_end(now_ms))
        if end <= start_ms:
            return series.frame.clear()
        lo = int(np.searchsorted(series.ts, start_ms, side="left"))
        hi = int(np.searchsorted(series.ts, end, side="left"))
        return series.frame.slice(lo, max(hi - lo, 0))

    def last_closed_bar(self, symbol: str, now_ms: int | None = None) -> Bar | None:
        series = self._series.get(normalize_symbol(symbol))
        if series is None:
            return None
        hi = int(np.searchsorted(series.ts, self._closed_end(now_ms), side="left"))
        if hi == 0:
            return None
        ts, o, h, low, c, v = series.frame.row(hi - 1)
        return Bar(int(ts), float(o), float(h), float(low), float(c), float(v))

    def price(self, symbol: str, now_ms: int | None = None) -> float | None:
        bar = self.last_closed_bar(symbol, now_ms)
        return None if bar is None else bar.close

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
        *,
        now_ms: int | None = None,
    ) -> pl.DataFrame:
        """Resampled from the stored bars; a bar of ``interval`` appears only when its whole
        interval has passed (``ts + interval <= now``), even if its last minutes are missing."""
        iv = interval_ms(interval)
        if iv < self.bar_ms or iv % self.bar_ms:
            raise UsageError(
                f"cannot make {interval!r} bars from {self.interval!r} bars: "
                "the target must be a multiple of the stored interval"
            )
        if limit <= 0:
            return empty_frame()
        now = self._now(now_ms)
        offset = bucket_offset_ms(interval)
        upper = now - iv + 1  # bucket ts must be < upper to have closed
        if end_ms is not None:
            upper = min(upper, int(end_ms))
        # the newest `limit` buckets below `upper`
        last_bucket = (upper - 1) - ((upper - 1 - offset) % iv)
        lower = last_bucket - (limit - 1) * iv
        if start_ms is not None:
            lower = max(lower, int(start_ms))
        if upper <= lower:
            return empty_frame()
        first_bucket = lower - ((lower - offset) % iv)
        base = self.bars_between(symbol, first_bucket, last_bucket + iv, now_ms=now)
        if base.height == 0:
            return empty_frame()
        bars = base if iv == self.bar_ms else resample(base, interval)
        bars = bars.filter((pl.col("ts") >= lower) & (pl.col("ts") < upper))
        return bars.tail(limit)
