"""The synthetic year: every table the dashboard reads gets rows, deterministically."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from jiritsu.dashboard.seed import seed_database
from jiritsu.db.engine import make_engine
from jiritsu.db.models import BacktestEquity, Base, Decision, Trade
from tests.dashboard.conftest import SEED_END

DASHBOARD_TABLES = (
    "trades",
    "orders",
    "executions",
    "decisions",
    "portfolio_history",
    "portfolio_bot_balances",
    "market_phases",
    "system_events",
    "sentiment_scores",
    "health_checks",
    "heartbeats",
    "controls",
    "transfers",
    "tuning_runs",
    "backtest_runs",
    "backtest_equity",
)


def test_seed_fills_every_dashboard_table_and_the_views(db_url: str) -> None:
    report = seed_database(db_url, days=2, end=SEED_END, decision_minutes=30, health_minutes=60)
    assert report.end == SEED_END
    assert report.start == SEED_END - timedelta(days=2)
    assert set(DASHBOARD_TABLES) <= {name for name, n in report.rows.items() if n > 0}
    assert report.rows["portfolio_history"] == 48  # hourly
    assert report.rows["decisions"] == 2 * 48 * 3  # every 30 minutes for three bots
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            for name in DASHBOARD_TABLES:
                table = Base.metadata.tables[name]
                count = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
                assert count == report.rows[name], name
            bots = conn.execute(sa.text("SELECT bot FROM performance WHERE scope = 'bot'"))
            assert {row[0] for row in bots} <= {"SubBot-A", "SubBot-B", "SubBot-C"}
            summary = conn.execute(sa.text("SELECT * FROM dashboard_summary")).one()
            assert summary.total_equity > 0
            assert summary.halted_bots == 1
    finally:
        engine.dispose()


def test_seed_is_deterministic(tmp_path: Path) -> None:
    dumps = []
    for name in ("one", "two"):
        url = f"sqlite:///{tmp_path / name}.db"
        seed_database(url, days=1, end=SEED_END, decision_minutes=60)
        engine = make_engine(url)
        with engine.connect() as conn:
            dumps.append(
                [
                    conn.execute(sa.select(t).order_by(t.c.id)).all()
                    for t in (Trade.__table__, Decision.__table__, BacktestEquity.__table__)
                ]
            )
        engine.dispose()
    assert dumps[0] == dumps[1]
