"""Candle storage: the database is the source of truth, the Parquet cache makes reads fast.

Every write goes to the ``candles`` table first (shared by every process and by PostgreSQL
deployments), then the same new bars go to the cache next to the database, so a backtest loads a
year of 1-minute bars from Parquet in milliseconds instead of from SQL. Only bars whose timestamp
is not stored yet are written: re-importing a file is a no-op, and stored bars are never silently
rewritten. A missing or partial cache is rebuilt from the database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

import numpy as np

from jiritsu.errors import UsageError
from jiritsu.market.cache import CandleCache
from jiritsu.market.frames import (
    CANDLE_COLUMNS,
    empty_frame,
    interval_ms,
    normalize_interval,
    validate_frame,
)
from jiritsu.market.gaps import GapReport
from jiritsu.market.symbols import normalize_symbol

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy.engine import Engine

CHUNK = 20_000  # rows per INSERT batch: bounded memory and a progress tick per batch
Progress = Callable[[int, int], None]  # (done, total)


@dataclass(frozen=True)
class StoreStats:
    inserted: int
    already_stored: int


@dataclass(frozen=True)
class StoredSeries:
    symbol: str
    interval: str
    rows: int
    first_ts: int
    last_ts: int
    cached_rows: int
    gaps: GapReport | None
    problem: str | None = None  # why the gaps could not be computed (bad stored bars)


def cache_root(data_dir: Path) -> Path:
    return Path(data_dir) / "candles"


class CandleStore:
    def __init__(self, engine: Engine, cache_dir: Path) -> None:
        self.engine = engine
        self.cache = CandleCache(cache_dir)

    # --- writing ----------------------------------------------------------------------------

    def _stored_ts(self, symbol: str, interval: str, lo: int, hi: int) -> np.ndarray:
        import sqlalchemy as sa

        from jiritsu.db.models import Candle

        query = sa.select(Candle.ts).where(
            Candle.symbol == symbol, Candle.interval == interval, Candle.ts.between(lo, hi)
        )
        with self.engine.connect() as conn:
            return np.fromiter(conn.execute(query).scalars(), dtype=np.int64)

    def write(
        self, symbol: str, interval: str, frame: pl.DataFrame, *, progress: Progress | None = None
    ) -> StoreStats:
        """Store the bars of ``frame`` whose timestamps are new; return what was done."""
        import polars as pl

        from jiritsu.db.models import Candle

        symbol, interval = normalize_symbol(symbol), normalize_interval(interval)
        validate_frame(frame)
        if frame.height == 0:
            return StoreStats(0, 0)
        ts = frame["ts"].to_numpy()
        stored = self._stored_ts(symbol, interval, int(ts[0]), int(ts[-1]))
        new = frame.filter(pl.Series(~np.isin(ts, stored)))
        total = new.height
        rows = new.select(CANDLE_COLUMNS).rows()
        inserted = 0
        for start in range(0, total, CHUNK):
            batch = [(symbol, interval, *r) for r in rows[start : start + CHUNK]]
            with self.engine.begin() as conn:
                # Straight to the driver's executemany: SQLAlchemy's per-row parameter
                # processing costs more than the insert itself at a year of minutes.
                # Another process (the trade loop, phase, rebalance) may top up the same
                # minutes between the read above and this insert: its bars win, ours are
                # skipped, and nobody fails (same syntax on SQLite and PostgreSQL).
                mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
                cols = ("symbol", "interval", *CANDLE_COLUMNS)
                result = conn.exec_driver_sql(
                    f"INSERT INTO {Candle.__tablename__} ({', '.join(cols)}) "  # noqa: S608 - fixed names
                    f"VALUES ({', '.join([mark] * len(cols))}) "
                    "ON CONFLICT (symbol, interval, ts) DO NOTHING",
                    batch,
                )
                inserted += max(result.rowcount, 0)
            if progress:
                progress(min(start + CHUNK, total), total)
        if total:
            self.cache.write(symbol, interval, new)
        return StoreStats(inserted=inserted, already_stored=frame.height - inserted)

    # --- reading ----------------------------------------------------------------------------

    def _db_frame(
        self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> pl.DataFrame:
        import polars as pl
        import sqlalchemy as sa

        from jiritsu.db.models import Candle

        cols = [getattr(Candle, c) for c in CANDLE_COLUMNS]
        query = sa.select(*cols).where(Candle.symbol == symbol, Candle.interval == interval)
        if start_ms is not None:
            query = query.where(Candle.ts >= start_ms)
        if end_ms is not None:
            query = query.where(Candle.ts < end_ms)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(Candle.ts)).all()
        if not rows:
            return empty_frame()
        return pl.DataFrame(rows, schema=empty_frame().schema, orient="row")

    def count(self, symbol: str, interval: str) -> int:
        import sqlalchemy as sa

        from jiritsu.db.models import Candle

        query = sa.select(sa.func.count()).where(
            Candle.symbol == symbol, Candle.interval == interval
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def rebuild_cache(self, symbol: str, interval: str) -> int:
        """Rewrite the cache of one series from the database; returns the bars cached."""
        symbol, interval = normalize_symbol(symbol), normalize_interval(interval)
        return self.cache.replace_all(symbol, interval, self._db_frame(symbol, interval))

    def load(
        self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None
    ) -> pl.DataFrame:
        """Bars with ``start_ms <= ts < end_ms`` from the cache (rebuilt from the DB if stale)."""
        symbol, interval = normalize_symbol(symbol), normalize_interval(interval)
        cached = {(e.symbol, e.interval): e.rows for e in self.cache.info()}
        if cached.get((symbol, interval), 0) != self.count(symbol, interval):
            self.rebuild_cache(symbol, interval)
        return self.cache.load(symbol, interval, start_ms, end_ms)

    def newest_ts(self, symbol: str, intervals: Iterable[str], before_ms: int) -> int | None:
        """The open of the newest stored bar of any of ``intervals`` before ``before_ms``."""
        import sqlalchemy as sa

        from jiritsu.db.models import Candle

        kinds = tuple(normalize_interval(i) for i in intervals)
        query = sa.select(sa.func.max(Candle.ts)).where(
            Candle.symbol == normalize_symbol(symbol),
            Candle.interval.in_(kinds),
            Candle.ts < before_ms,
        )
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def info(self, *, with_gaps: bool = True) -> list[StoredSeries]:
        import sqlalchemy as sa

        from jiritsu.db.models import Candle

        query = (
            sa.select(
                Candle.symbol,
                Candle.interval,
                sa.func.count(),
                sa.func.min(Candle.ts),
                sa.func.max(Candle.ts),
            )
            .group_by(Candle.symbol, Candle.interval)
            .order_by(Candle.symbol, Candle.interval)
        )
        with self.engine.connect() as conn:
            groups = conn.execute(query).all()
        cached = {(e.symbol, e.interval): e.rows for e in self.cache.info()}
        out = []
        for symbol, interval, rows, first, last in groups:
            gaps = problem = None
            if with_gaps:
                frame = self.load(symbol, interval)
                cached[(symbol, interval)] = frame.height
                try:
                    gaps = GapReport.from_ts(frame["ts"].to_numpy(), interval_ms(interval))
                except ValueError as exc:  # bars stored before the importer checked the grid
                    problem = str(exc)
            out.append(
                StoredSeries(
                    symbol, interval, int(rows), int(first), int(last),
                    cached.get((symbol, interval), 0), gaps, problem,
                )
            )  # fmt: skip
        return out

    def export(
        self,
        symbol: str,
        interval: str,
        path: Path,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
    ) -> int:
        """Write stored bars to CSV (optionally .gz) or Parquet; returns the rows written."""
        import gzip

        frame = self.load(symbol, interval, start_ms, end_ms)
        name = path.name.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith((".parquet", ".pq")):
            frame.write_parquet(path)
        elif name.endswith(".csv.gz"):
            with gzip.open(path, "wb") as handle:
                frame.write_csv(cast("IO[bytes]", handle))
        elif name.endswith(".csv"):
            frame.write_csv(path)
        else:
            raise UsageError(f"{path}: export to .csv, .csv.gz or .parquet")
        return frame.height
