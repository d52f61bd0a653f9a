"""Migrations are the only way the schema changes: up, down, up again, and no drift."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.db.models import VIEW_NAMES, Base

REPO = Path(__file__).resolve().parents[2]

TABLES = {
    "trades",
    "executions",
    "orders",
    "decisions",
    "candles",
    "transfers",
    "controls",
    "portfolio_history",
    "portfolio_bot_balances",
    "market_phases",
    "sentiment_scores",
    "system_events",
    "backtest_runs",
    "backtest_equity",
    "tuning_runs",
    "heartbeats",
    "health_checks",
    # 0002: the paper exchange's ledger
    "paper_accounts",
    "paper_orders",
    "paper_fills",
    "paper_positions",
    "paper_transfers",
    # 0003: news and API usage
    "api_usage",
    # 0006: the installation's own facts (install id)
    "meta",
}


def _schema(url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(url)
    try:
        inspector = sa.inspect(engine)
        return set(inspector.get_table_names()), set(inspector.get_view_names())
    finally:
        engine.dispose()


def test_models_cover_the_design_tables() -> None:
    assert set(Base.metadata.tables) == TABLES


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    assert migrate.current(db_url) is None

    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head()
    tables, views = _schema(db_url)
    assert tables == TABLES | {"alembic_version"}
    assert views == set(VIEW_NAMES)
    assert migrate.check(db_url) == []

    migrate.downgrade(db_url, "base")
    assert migrate.current(db_url) is None
    tables, views = _schema(db_url)
    assert tables == {"alembic_version"}
    assert views == set()

    migrate.upgrade(db_url)
    assert migrate.current(db_url) == migrate.head()
    assert migrate.check(db_url) == []


def test_upgrade_twice_is_a_no_op_and_keeps_data(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO heartbeats (component, last_seen) VALUES ('x', :t)"),
            {"t": "2026-01-01 00:00:00.000000+00:00"},
        )
    migrate.upgrade(db_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM heartbeats")).scalar_one() == 1
    engine.dispose()


def test_check_reports_unmigrated_database(db_url: str) -> None:
    problems = migrate.check(db_url)
    assert "never migrated" in problems[0]
    assert "table orders: in the models, missing in the database" in problems


def test_check_reports_column_added_by_hand(db_url: str) -> None:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE trades ADD COLUMN sneaky INTEGER"))
    engine.dispose()
    assert migrate.check(db_url) == ["column trades.sneaky: in the database, not in the models"]


def _copy_of_models() -> sa.MetaData:
    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    return metadata


def test_check_reports_model_changes(db_url: str) -> None:
    migrate.upgrade(db_url)
    changed = _copy_of_models()
    changed.tables["orders"].append_column(sa.Column("new_col", sa.Integer(), nullable=True))
    changed.tables["candles"].c.volume.type = sa.String(20)
    changed.remove(changed.tables["heartbeats"])

    problems = migrate.check(db_url, metadata=changed)

    assert "column orders.new_col: in the models, missing in the database" in problems
    assert "table heartbeats: in the database, not in the models" in problems
    assert any(p.startswith("column candles.volume: type") for p in problems)
    assert len(problems) == 3


def test_ensure_schema_creates_directory_and_migrates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'j.db'}"
    assert migrate.ensure_schema(url, sleep=lambda _s: None) == migrate.head()
    assert migrate.current(url) == migrate.head()
    assert migrate.check(url) == []


def test_alembic_by_hand_with_the_repository_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hand.db'}"
    cmd = [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "-x", f"url={url}"]
    up = subprocess.run([*cmd, "upgrade", "head"], capture_output=True, text=True, check=False)
    assert up.returncode == 0, up.stderr
    assert migrate.current(url) == migrate.head()
    sql = subprocess.run(
        [*cmd, "upgrade", "head", "--sql"], capture_output=True, text=True, check=False
    )
    assert sql.returncode == 0, sql.stderr
    assert "CREATE VIEW portfolio_history_wide" in sql.stdout


def test_sqlite_batch_migration_keeps_children_views_and_checks(sqlite_url: str) -> None:
    """Future migrations recreate SQLite tables (batch mode): no cascade, no lost view/CHECK."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from jiritsu.db.engine import migration_engine

    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO portfolio_history (id, timestamp, total_balance_usdt)"
                " VALUES (1, '2026-01-01 00:00:00.000000+00:00', '10')"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO portfolio_bot_balances (snapshot_id, bot_name, balance)"
                " VALUES (1, 'alpha', '10')"
            )
        )
    mig = migration_engine(sqlite_url)
    with mig.connect() as conn:
        ops = Operations(MigrationContext.configure(conn, opts={"render_as_batch": True}))
        with conn.begin():
            for table in ("portfolio_history", "orders"):
                with ops.batch_alter_table(table, recreate="always") as batch:
                    batch.alter_column("id", existing_type=sa.Integer())
    mig.dispose()

    with engine.connect() as conn:
        wide = conn.execute(sa.text("SELECT bot_balances FROM portfolio_history_wide")).scalar()
        assert wide == '{"alpha":10}'
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text(
                    "INSERT INTO orders (client_order_id, bot, symbol, category, side,"
                    " order_type, qty, filled_qty, status, reduce_only, created_at, updated_at)"
                    " VALUES ('c', 'b', 'S', 'linear', 'Buy', 'Market', '1', '0', 'bogus', 0,"
                    " 'x', 'x')"
                )
            )
    engine.dispose()
    assert migrate.check(sqlite_url) == []


def test_sqlite_migrations_are_transactional(sqlite_url: str) -> None:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    from jiritsu.db.engine import migration_engine

    mig = migration_engine(sqlite_url)
    with pytest.raises(RuntimeError), mig.connect() as conn:  # noqa: PT012
        ops = Operations(MigrationContext.configure(conn))
        with conn.begin():
            ops.create_table("half_done", sa.Column("id", sa.Integer(), primary_key=True))
            raise RuntimeError("migration failed midway")
    mig.dispose()
    tables, _ = _schema(sqlite_url)
    assert "half_done" not in tables
