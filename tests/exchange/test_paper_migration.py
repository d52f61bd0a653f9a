"""Migration 0002 (the paper ledger) goes up and down cleanly on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine

PAPER_TABLES = {
    "paper_accounts",
    "paper_orders",
    "paper_fills",
    "paper_positions",
    "paper_transfers",
}


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0002_upgrades_and_downgrades_cleanly(db_url: str) -> None:
    migrate.upgrade(db_url, "0001")
    assert not PAPER_TABLES & _tables(db_url)

    migrate.upgrade(db_url, "0002")
    assert migrate.current(db_url) == "0002"
    assert PAPER_TABLES <= _tables(db_url)

    migrate.downgrade(db_url, "0001")
    assert migrate.current(db_url) == "0001"
    assert not PAPER_TABLES & _tables(db_url)
    assert "orders" in _tables(db_url)  # 0001's tables are untouched

    migrate.upgrade(db_url)  # head: later revisions build on 0002
    assert PAPER_TABLES <= _tables(db_url)
    assert migrate.check(db_url) == []
    migrate.downgrade(db_url, "base")
    assert _tables(db_url) == {"alembic_version"}


def test_paper_constraints_hold(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    insert = sa.text(
        "INSERT INTO paper_accounts (account, wallet, coin, balance, created_at, updated_at)"
        " VALUES ('bot', :wallet, 'USDT', '1', :t, :t)"
    )
    t = "2026-01-01 00:00:00.000000+00:00"
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"wallet": "UNIFIED", "t": t})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # a duplicate
            conn.execute(insert, {"wallet": "UNIFIED", "t": t})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # no such wallet
            conn.execute(insert, {"wallet": "SPOT", "t": t})
    finally:
        engine.dispose()
