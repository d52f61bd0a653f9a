"""Scripted price paths: 1-minute OHLCV rows, kline aggregation, a synthetic generator."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

MINUTE_MS = 60_000
DAY_MS = 1_440 * MINUTE_MS
WEEK_MS = 7 * DAY_MS
# 1970-01-01 was a Thursday; Bybit's weekly bars start on Monday 00:00 UTC.
_MONDAY_OFFSET_MS = 4 * DAY_MS

INTERVAL_MINUTES = {
    "1": 1,
    "3": 3,
    "5": 5,
    "15": 15,
    "30": 30,
    "60": 60,
    "120": 120,
    "240": 240,
    "360": 360,
    "720": 720,
    "D": 1_440,
    "W": 10_080,
}
INTERVALS = (*INTERVAL_MINUTES, "M")


def to_decimal(value: object) -> Decimal:
    """Decimal from str/int/Decimal, and from float via its repr (never binary noise)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


@dataclass(frozen=True)
class Candle:
    """One 1-minute row of a price path."""

    ts: int  # start of the minute, ms
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    turnover: Decimal


def bar_start(ts: int, interval: str) -> int:
    """Start (ms) of the bar of ``interval`` that contains ``ts``."""
    if interval == "M":
        d = dt.datetime.fromtimestamp(ts / 1000, tz=dt.timezone.utc)
        first = dt.datetime(d.year, d.month, 1, tzinfo=dt.timezone.utc)
        return int(first.timestamp() * 1000)
    if interval == "W":
        return (ts - _MONDAY_OFFSET_MS) // WEEK_MS * WEEK_MS + _MONDAY_OFFSET_MS
    size = INTERVAL_MINUTES[interval] * MINUTE_MS
    return ts // size * size


def next_bar_start(start: int, interval: str) -> int:
    """Start of the bar after the one starting at ``start``."""
    if interval == "M":
        d = dt.datetime.fromtimestamp(start / 1000, tz=dt.timezone.utc)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return int(dt.datetime(year, month, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    if interval == "W":
        return start + WEEK_MS
    return start + INTERVAL_MINUTES[interval] * MINUTE_MS


class PricePath:
    """A symbol's scripted 1-minute candles, sorted by time; gaps are allowed."""

    def __init__(self, symbol: str, rows: Iterable[Sequence[object]]) -> None:
        self.symbol = symbol
        candles: list[Candle] = []
        for row in rows:
            if len(row) not in (6, 7):
                raise ValueError(
                    f"{symbol}: a row is (ts, open, high, low, close, volume[, turnover])"
                )
            ts = int(row[0])  # type: ignore[call-overload]
            o, h, lo, c, v = (to_decimal(x) for x in row[1:6])
            turnover = to_decimal(row[6]) if len(row) == 7 else v * c
            if ts % MINUTE_MS:
                raise ValueError(f"{symbol}: row ts {ts} is not on a minute boundary")
            if h < max(o, c, lo) or lo > min(o, c) or lo <= 0:
                raise ValueError(f"{symbol}: inconsistent OHLC at {ts}: {o} {h} {lo} {c}")
            candles.append(Candle(ts, o, h, lo, c, v, turnover))
        candles.sort(key=lambda k: k.ts)
        for a, b in itertools.pairwise(candles):
            if a.ts == b.ts:
                raise ValueError(f"{symbol}: duplicate row at {a.ts}")
        if not candles:
            raise ValueError(f"{symbol}: empty price path")
        self.rows = candles
        self.ts = [k.ts for k in candles]

    def index_at(self, now: int) -> int:
        """Index of the current row (last row with ts <= now), -1 if none."""
        return bisect.bisect_right(self.ts, now) - 1

    def current(self, now: int) -> Candle | None:
        i = self.index_at(now)
        return self.rows[i] if i >= 0 else None

    def klines(
        self, interval: str, now: int, start: int | None, end: int | None, limit: int
    ) -> list[list[str]]:
        """Bybit kline rows, NEWEST FIRST: bars whose startTime is in [start, end], built only
        from rows already visible at ``now`` (the current bar is partial), at most ``limit``."""
        if start is not None and end is not None and start > end:
            return []
        # rows after the bar that contains `end` (or after `now`) are not included
        hi_ts = now
        if end is not None:
            hi_ts = min(hi_ts, next_bar_start(bar_start(end, interval), interval) - 1)
        hi = bisect.bisect_right(self.ts, hi_ts)
        lo_ts = None
        if start is not None:
            first = bar_start(start, interval)
            lo_ts = first if first == start else next_bar_start(first, interval)
        lo = bisect.bisect_left(self.ts, lo_ts) if lo_ts is not None else 0
        bars: list[list[str]] = []
        i = hi - 1
        while i >= lo and len(bars) < limit:
            key = bar_start(self.rows[i].ts, interval)
            j = i
            while j - 1 >= lo and self.rows[j - 1].ts >= key:
                j -= 1
            group = self.rows[j : i + 1]
            bars.append(
                [
                    str(key),
                    fmt(group[0].open),
                    fmt(max(k.high for k in group)),
                    fmt(min(k.low for k in group)),
                    fmt(group[-1].close),
                    fmt(sum((k.volume for k in group), Decimal(0))),
                    fmt(sum((k.turnover for k in group), Decimal(0))),
                ]
            )
            i = j - 1
        return bars


def fmt(value: Decimal | int | None) -> str:
    """Bybit-style number string: plain notation, no exponent, no trailing zeros."""
    if value is None:
        return ""
    d = Decimal(value)
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def synthetic_path(
    start_ms: int,
    minutes: int,
    *,
    price: Decimal | str = "60000",
    tick: Decimal | str = "0.1",
    volatility: float = 0.0008,
    seed: int = 1,
) -> list[tuple[int, Decimal, Decimal, Decimal, Decimal, Decimal]]:
    """A seeded random walk of 1-minute rows starting at ``start_ms`` (rounded down to a minute)."""
    rng = random.Random(seed)
    tick = Decimal(tick)
    last = Decimal(price)
    t0 = start_ms // MINUTE_MS * MINUTE_MS
    rows = []
    for n in range(minutes):
        o = last
        c = _round(o * Decimal(repr(1 + rng.gauss(0, volatility))), tick)
        h = _round(max(o, c) * Decimal(repr(1 + abs(rng.gauss(0, volatility / 3)))), tick)
        lo = _round(min(o, c) * Decimal(repr(1 - abs(rng.gauss(0, volatility / 3)))), tick)
        c = max(c, tick)
        lo = max(min(lo, o, c), tick)
        h = max(h, o, c)
        vol = Decimal(repr(round(rng.uniform(1, 50), 3)))
        rows.append((t0 + n * MINUTE_MS, o, h, lo, c, vol))
        last = c
    return rows


def _round(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).quantize(Decimal(1), rounding=ROUND_HALF_UP) * tick
