"""Copy what the dashboard reads from PostgreSQL into a SQLite file (Datasette reads SQLite only).

The copy is complete every time (no incremental state to get wrong) and atomic: the file is
built next to the target under a temporary name, migrated to the same schema head as the source
(so it has the same tables, indexes and views, in SQLite's dialect), filled from one
REPEATABLE READ snapshot of the source, switched to rollback-journal mode (no ``-wal`` file
left behind) and moved over the target with ``os.replace``. A running dashboard notices the new
file on its next query. Rows go through the models' column types, so money is stored as the same
exact decimal text as in a SQLite deployment and the views compute the same numbers.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from jiritsu.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# What the dashboard's pages, views and table links read, parents before children.
MIRRORED_TABLES: tuple[str, ...] = (
    "decisions",
    "orders",
    "executions",
    "trades",
    "transfers",
    "controls",
    "portfolio_history",
    "portfolio_bot_balances",
    "market_phases",
    "sentiment_scores",
    "system_events",
    "heartbeats",
    "health_checks",
    "tuning_runs",
    "backtest_runs",
    "backtest_equity",
)
BATCH_ROWS = 5000


@dataclass
class MirrorReport:
    """What one mirror run copied."""

    path: Path
    seconds: float = 0.0
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _remove(path: Path) -> None:
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        candidate.unlink(missing_ok=True)


def mirror(source_url: str, out: str | Path, *, batch_rows: int = BATCH_ROWS) -> MirrorReport:
    """Copy :data:`MIRRORED_TABLES` from ``source_url`` (PostgreSQL) into the SQLite file ``out``.

    The source must be migrated to the newest revision (UsageError otherwise); connection
    failures raise DatabaseUnavailable. The previous file stays in place until the new one is
    complete.
    """
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine, mask_url

    started = time.monotonic()
    source = make_engine(source_url)
    try:
        if source.dialect.name != "postgresql":
            raise UsageError(
                "the mirror copies a PostgreSQL database; a SQLite database is served directly"
            )
        head, current = migrate.head(), migrate.current(source_url)
        if current != head:
            raise UsageError(
                f"{mask_url(source_url)} is at revision {current or 'none'}, not {head}: "
                "run `jiritsu db upgrade` first"
            )
        out = Path(out).expanduser().resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        report = MirrorReport(path=out)
        _remove(tmp)
        try:
            _build(source, tmp, report, batch_rows)
            os.replace(tmp, out)
        finally:
            _remove(tmp)
    finally:
        source.dispose()
    report.seconds = time.monotonic() - started
    return report


def _build(source: Engine, tmp: Path, report: MirrorReport, batch_rows: int) -> None:
    """Create the schema in ``tmp`` and copy the tables from one snapshot of ``source``."""
    import sqlalchemy as sa

    from jiritsu.db import migrate
    from jiritsu.db.models import Base

    tmp_url = f"sqlite:///{tmp}"
    migrate.upgrade(tmp_url)
    target = sa.create_engine(tmp_url, poolclass=sa.pool.NullPool)
    try:
        src = source.connect().execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        with src, src.begin(), target.begin() as dst:
            for name in MIRRORED_TABLES:
                table = Base.metadata.tables[name]
                result = src.execution_options(yield_per=batch_rows).execute(
                    sa.select(table).order_by(table.c.id)
                )
                copied = 0
                for rows in result.partitions():
                    dst.execute(table.insert(), [dict(row._mapping) for row in rows])
                    copied += len(rows)
                report.rows[name] = copied
        with target.connect() as conn:
            conn.exec_driver_sql("PRAGMA journal_mode=DELETE")
    finally:
        target.dispose()
