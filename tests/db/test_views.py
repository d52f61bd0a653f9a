"""The design's wide portfolio layout and ISO candle times, as views on both backends."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.db.models import Candle, PortfolioBotBalance, PortfolioSnapshot
from jiritsu.db.types import UTCDateTime

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def test_portfolio_history_wide_gives_bot_balances_as_json(engine: Engine) -> None:
    with Session(engine) as session:
        full = PortfolioSnapshot(
            timestamp=T0, total_balance_usdt=Decimal("1234.5"), profit_saved_balance=Decimal(7)
        )
        empty = PortfolioSnapshot(timestamp=T0, total_balance_usdt=Decimal(0))
        session.add_all([full, empty])
        session.flush()
        balances = {
            "zeta": Decimal("1234.499999999987654321"),
            "alpha": Decimal("0.000000012345678901"),
            "mid": Decimal("0"),
        }
        for bot, bal in balances.items():
            session.add(PortfolioBotBalance(snapshot_id=full.id, bot_name=bot, balance=bal))
        session.commit()
        ids = (full.id, empty.id)

    query = sa.text(
        "SELECT id, CAST(bot_balances AS TEXT) AS b, total_balance_usdt"
        " FROM portfolio_history_wide ORDER BY id"
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    assert [r.id for r in rows] == list(ids)
    got = json.loads(rows[0].b, parse_float=Decimal)
    assert got == balances
    assert list(got) == ["alpha", "mid", "zeta"]  # keys in bot-name order
    assert json.loads(rows[1].b) == {}
    assert Decimal(str(rows[0].total_balance_usdt)) == Decimal("1234.5")


def test_candles_utc_view_adds_iso_time(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            Candle(
                symbol="BTCUSDT",
                interval="1",
                ts=1767225600123,
                open=1.0,
                high=1.0,
                low=1.0,
                close=1.0,
                volume=0.0,
            )
        )
        session.commit()
    col = sa.column("time_utc", UTCDateTime())
    with engine.connect() as conn:
        got = conn.execute(sa.select(col).select_from(sa.table("candles_utc"))).scalar_one()
    assert got == datetime(2026, 1, 1, 0, 0, 0, 123000, tzinfo=timezone.utc)
