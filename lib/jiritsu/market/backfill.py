"""Backfill candles from the exchange, page by page, resumable after an interruption.

Bybit's kline endpoint answers at most 1000 bars, newest first. We page BACKWARDS from the newest
bar, storing each page before asking for the next, so what is stored is always a contiguous run
ending at the present. An interrupted backfill therefore resumes by fetching what is newer than
the newest stored bar, then continuing backwards from the oldest one. Bars missing on the exchange
stay missing (reported as gaps), never invented.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jiritsu.clock import to_ms, wall_now
from jiritsu.market.frames import interval_ms, normalize_interval
from jiritsu.market.gaps import GapReport
from jiritsu.market.symbols import normalize_symbol

if TYPE_CHECKING:
    from jiritsu.exchange.base import Exchange
    from jiritsu.exchange.types import Category
    from jiritsu.market.store import CandleStore

PAGE = 1000  # Bybit's maximum kline limit
MAX_PAGES = 100_000  # a hard bound on the loop whatever the exchange answers
BATCH = 20_000  # bars stored per write: each write also merges into a Parquet partition

Progress = Callable[[int, int], None]  # (bars covered so far, bars in the range)


@dataclass(frozen=True)
class BackfillResult:
    symbol: str
    interval: str
    start_ms: int
    end_ms: int
    pages: int
    inserted: int
    already_stored: int
    gaps: GapReport


def _stored_bounds(store: CandleStore, symbol: str, interval: str, lo: int, hi: int) -> tuple:
    import sqlalchemy as sa

    from jiritsu.db.models import Candle

    query = sa.select(sa.func.min(Candle.ts), sa.func.max(Candle.ts)).where(
        Candle.symbol == symbol, Candle.interval == interval, Candle.ts >= lo, Candle.ts < hi
    )
    with store.engine.connect() as conn:
        return tuple(conn.execute(query).one())


def backfill(
    exchange: Exchange,
    store: CandleStore,
    symbol: str,
    interval: str,
    *,
    days: float,
    category: Category = "linear",
    now: datetime | None = None,
    progress: Progress | None = None,
) -> BackfillResult:
    """Store the last ``days`` of closed bars; resumes where a previous run stopped."""
    symbol, interval = normalize_symbol(symbol), normalize_interval(interval)
    step = interval_ms(interval)
    now_ms = to_ms(now or wall_now())  # Bybit's newest bars: wall time
    end_ms = now_ms - now_ms % step  # open time of the current, unfinished bar: excluded
    start_ms = end_ms - int(days * 86_400_000) // step * step
    total_bars = (end_ms - start_ms) // step

    oldest, newest = _stored_bounds(store, symbol, interval, start_ms, end_ms)
    # Windows to fetch, each paged backwards: first what is newer than the stored run, then
    # what is older than it. With nothing stored, the whole range.
    windows = (
        [(start_ms, end_ms)] if oldest is None else [(newest + step, end_ms), (start_ms, oldest)]
    )
    import polars as pl

    pages = inserted = already = 0
    covered = 0 if oldest is None else (newest - oldest) // step + 1
    buffered: list[pl.DataFrame] = []

    def flush() -> None:
        # Pages are stored in batches (newest first), so what is stored is still one run
        # ending at the present; a resume repeats at most one batch of requests.
        nonlocal inserted, already
        if buffered:
            stats = store.write(symbol, interval, pl.concat(buffered[::-1]))
            inserted += stats.inserted
            already += stats.already_stored
            buffered.clear()

    for lo, hi in windows:
        cursor = hi  # exclusive upper bound of what is still to fetch in this window
        while cursor > lo and pages < MAX_PAGES:
            frame = exchange.klines(
                symbol, interval, category=category, start_ms=lo, end_ms=cursor - 1, limit=PAGE
            )
            pages += 1
            frame = frame.filter((frame["ts"] >= lo) & (frame["ts"] < cursor))
            if frame.height == 0:
                break  # the exchange has nothing older in this window
            buffered.append(frame)
            first = int(frame["ts"][0])
            covered += (cursor - first) // step
            cursor = first
            if sum(f.height for f in buffered) >= BATCH:
                flush()
            if progress:
                progress(min(covered, total_bars), total_bars)
        flush()
    stored = store.load(symbol, interval, start_ms, end_ms)
    gaps = GapReport.from_ts(stored["ts"].to_numpy(), step)
    return BackfillResult(symbol, interval, start_ms, end_ms, pages, inserted, already, gaps)
