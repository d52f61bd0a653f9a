"""PostgreSQL -> SQLite mirror: same rows, same money text, same view numbers, atomic swap."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from jiritsu.dashboard.mirror import MIRRORED_TABLES, mirror
from jiritsu.dashboard.seed import seed_database
from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.db.models import DASHBOARD_VIEW_NAMES, Base, Trade
from jiritsu.db.types import UTCDateTime
from jiritsu.errors import UsageError
from jiritsu_cli.main import app
from tests.dashboard.conftest import SEED_END, ServerFactory, assert_pnl_is_numeric, write_config

# Ordering that makes each view's rows comparable.
VIEW_ORDER = {
    "trade_pnl_daily": "bot, day",
    "performance": "scope, bot",
    "portfolio_daily": "day",
    "equity_daily": "day, bot",
    "sentiment_daily": "day",
    "health_latest": "check_name",
    "dashboard_summary": "as_of",
    "trade_history": "id",
    "fill_history": "id",
    "order_history": "id",
    "transfer_history": "id",
    "data_clock": "now_utc",
}


def _normal(value: Any) -> Any:
    """PostgreSQL gives datetimes and Decimals where SQLite gives text and floats."""
    if isinstance(value, datetime):
        return UTCDateTime().process_bind_param(value, sa.create_engine("sqlite://").dialect)
    if isinstance(value, Decimal):
        return float(value)
    return value


def _view_rows(url: str, view: str) -> list[dict[str, Any]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            sql = f"SELECT * FROM {view} ORDER BY {VIEW_ORDER[view]}"  # noqa: S608
            return [
                {k: _normal(v) for k, v in row._mapping.items()}
                for row in conn.execute(sa.text(sql))
            ]
    finally:
        engine.dispose()


def _same(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.keys() != y.keys():
            return False
        for key in x:
            u, v = x[key], y[key]
            if isinstance(u, float) or isinstance(v, float):
                if u is None or v is None or not math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif u != v:
                return False
    return True


@pytest.fixture
def seeded_pg(pg_url: str) -> str:
    """PostgreSQL at head with three days of activity plus a few hand-made trades."""
    seed_database(pg_url, days=3, end=SEED_END, decision_minutes=60, health_minutes=120)
    engine = make_engine(pg_url)
    with Session(engine) as session:
        for i, pnl in enumerate(("0.000000012345678901", "-12345.678901234567890123", "42")):
            session.add(
                Trade(
                    timestamp=SEED_END - timedelta(hours=i + 1),
                    sub_bot_name="SubBot-B",
                    symbol="BTCUSDT",
                    order_id=f"hand-{i}",
                    side="Sell",
                    price=Decimal("65432.1"),
                    quantity=Decimal("0.001"),
                    pnl=Decimal(pnl),
                    position_effect="close",
                )
            )
        session.commit()
    engine.dispose()
    return pg_url


def test_mirror_copies_rows_money_text_and_view_numbers(seeded_pg: str, tmp_path: Path) -> None:
    out = tmp_path / "mirror" / "dashboard.db"
    report = mirror(seeded_pg, out)
    assert report.path == out.resolve()
    assert set(report.rows) == set(MIRRORED_TABLES)
    assert report.rows["trades"] > 3
    assert report.rows["decisions"] > 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["dashboard.db"]  # no temp, no -wal

    mirror_url = f"sqlite:///{out}"
    assert migrate.current(mirror_url) == migrate.head()
    assert migrate.check(mirror_url) == []
    src, dst = make_engine(seeded_pg), make_engine(mirror_url)
    try:
        with src.connect() as a, dst.connect() as b:
            for name in MIRRORED_TABLES:
                table = Base.metadata.tables[name]
                query = sa.select(table).order_by(table.c.id)
                assert a.execute(query).all() == b.execute(query).all(), name
            raw = b.execute(
                sa.text("SELECT pnl FROM trades WHERE order_id LIKE 'hand-%' ORDER BY order_id")
            ).scalars()
            assert list(raw) == ["0.000000012345678901", "-12345.678901234567890123", "42"]
    finally:
        src.dispose()
        dst.dispose()

    for view in DASHBOARD_VIEW_NAMES:
        on_pg, on_mirror = _view_rows(seeded_pg, view), _view_rows(mirror_url, view)
        assert on_pg, f"{view} is empty on the seeded database"
        assert _same(on_pg, on_mirror), (view, on_pg[:2], on_mirror[:2])


def test_mirror_refuses_sqlite_and_unmigrated_sources(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="served directly"):
        mirror(f"sqlite:///{tmp_path / 'x.db'}", tmp_path / "m.db")
    with pytest.raises(UsageError, match="jiritsu db upgrade"):
        mirror(pg_url, tmp_path / "m.db")
    assert not (tmp_path / "m.db").exists()


def test_served_mirror_matches_postgresql_and_is_swapped_live(
    seeded_pg: str, tmp_path: Path, start_server: ServerFactory
) -> None:
    out = tmp_path / "dashboard.db"
    config = write_config(tmp_path / "pg.toml", seeded_pg, mirror_path=str(out))
    result = CliRunner().invoke(app, ["--config", str(config), "dashboard", "mirror"])
    assert result.exit_code == 0, result.output
    assert "mirrored" in result.output

    server = start_server(seeded_pg, mirror_path=str(out), allowed_ips=["127.0.0.1"])
    assert "serving mirror" in server.log()
    assert server.login().status_code == 302
    for view in ("performance", "dashboard_summary", "trade_pnl_daily"):
        served = server.get(f"/jiritsu/{view}.json?_shape=array&_size=max").json()
        order = VIEW_ORDER[view].split(", ")
        served.sort(key=lambda row: tuple(str(row[k]) for k in order))
        expected = _view_rows(seeded_pg, view)
        expected.sort(key=lambda row: tuple(str(row[k]) for k in order))
        assert _same(expected, served), view
    for slug in ("summary", "performance"):
        assert server.get(f"/-/dashboards/{slug}").status_code == 200

    # money from PostgreSQL's NUMERIC sorts and filters as numbers in the mirror's views
    engine = make_engine(seeded_pg)
    with engine.connect() as conn:
        exact = dict(
            conn.execute(sa.select(Trade.id, Trade.pnl).where(Trade.pnl.is_not(None))).all()
        )
    engine.dispose()
    assert_pnl_is_numeric(server, exact)

    def count() -> int:
        body = server.get("/jiritsu.json?sql=select+count(*)+as+n+from+trades&_shape=array")
        return int(body.json()[0]["n"])

    before = count()
    engine = make_engine(seeded_pg)
    with engine.begin() as conn:
        conn.execute(
            Trade.__table__.insert(),
            [
                {
                    "timestamp": SEED_END,
                    "sub_bot_name": "SubBot-A",
                    "symbol": "BTCUSDT",
                    "order_id": "after-swap",
                    "side": "Sell",
                    "price": Decimal(1),
                    "quantity": Decimal(1),
                    "fee": Decimal(0),
                    "pnl": Decimal("1.5"),
                    "position_effect": "close",
                    "created_at": SEED_END,
                    "updated_at": SEED_END,
                }
            ],
        )
    engine.dispose()
    assert count() == before  # the mirror is a snapshot
    mirror(seeded_pg, out)
    assert count() == before + 1  # the running server reads the new file
