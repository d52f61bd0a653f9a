"""One ``market_phases`` row per reading (migration 0008), on SQLite and PostgreSQL: the
migration removes the duplicates two concurrent ``phase`` runs could store and keys the table;
the database refuses a second row for a reading; a reading another run stored between this
run's start and its insert is not stored again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.master.phase import PhaseReading, record_readings
from tests.master import utc

CLOSE = utc(2026, 1, 1, 4)
INSERT = (
    "INSERT INTO market_phases (ts, symbol, phase, indicator, value) "
    "VALUES (:ts, :symbol, :phase, :indicator, 1.0)"
)


def reading(hours: int = 0, phase: str = "range") -> PhaseReading:
    close = CLOSE + timedelta(hours=hours)
    return PhaseReading("BTCUSDT", phase, "EMA_Cross", 0.5, "60", close - timedelta(hours=1),
                        close, close)  # fmt: skip


def stored(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT id, symbol, indicator, phase FROM market_phases ORDER BY id"
        ))]  # fmt: skip


def test_the_migration_removes_duplicates_then_keys_the_table(db_url: str) -> None:
    migrate.upgrade(db_url, "0007")
    engine = make_engine(db_url)
    ts = "2026-01-01 04:00:00.000000+00:00"
    try:
        with engine.begin() as conn:
            for phase, indicator in (
                ("range", "EMA_Cross"),
                ("weak_bull", "EMA_Cross"),
                ("range", "ADX"),
                ("range", None),
                ("weak_bear", None),
            ):
                conn.execute(sa.text(INSERT), {"ts": ts, "symbol": "BTCUSDT", "phase": phase,
                                               "indicator": indicator})  # fmt: skip
        migrate.upgrade(db_url)
        # the oldest row of each key stays; a reading without an indicator gets the empty one
        assert [r[2:] for r in stored(engine)] == [
            ("EMA_Cross", "range"), ("ADX", "range"), ("", "range"),
        ]  # fmt: skip
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text(INSERT), {"ts": ts, "symbol": "BTCUSDT", "phase": "strong_bull",
                                           "indicator": "ADX"})  # fmt: skip
        assert migrate.check(db_url) == []
        migrate.downgrade(db_url, "0007")  # and back: the key goes, the rows stay
        assert len(stored(engine)) == 3
    finally:
        engine.dispose()


def test_a_reading_is_stored_once_per_bar(engine: Engine) -> None:
    assert record_readings(engine, [reading(0), reading(1), reading(1)]) == 2
    assert record_readings(engine, [reading(1, "strong_bull"), reading(2)]) == 1
    assert [r[3] for r in stored(engine)] == ["range", "range", "range"]  # the first one stays


def test_a_reading_another_run_stores_meanwhile_is_not_stored_twice(pg_url: str) -> None:
    """PostgreSQL: two ``phase`` runs that both found the bar missing used to insert it both
    (SQLite serialises writers with BEGIN IMMEDIATE, so there only the key matters)."""
    migrate.upgrade(pg_url)
    engine = make_engine(pg_url)
    other = make_engine(pg_url)
    fired: list[str] = []

    @sa.event.listens_for(engine, "before_cursor_execute")
    def another_run_first(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO market_phases") and not fired:
            fired.append(statement)
            assert record_readings(other, [reading(1)]) == 1

    try:
        assert record_readings(engine, [reading(0), reading(1)]) == 1
        assert fired
        assert [r[3] for r in stored(engine)] == ["range", "range"]
    finally:
        engine.dispose()
        other.dispose()
