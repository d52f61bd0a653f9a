"""The dashboard's views on SQLite and PostgreSQL, against numbers worked out by hand."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.db.models import (
    Control,
    HealthCheck,
    PortfolioBotBalance,
    PortfolioSnapshot,
    SentimentScore,
    Trade,
)

DAY1 = datetime(2026, 1, 5, tzinfo=timezone.utc)
SQRT_365 = math.sqrt(365)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def _rows(engine: Engine, sql: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(sa.text(sql))]


def _trade(n: int, bot: str, when: datetime, pnl: str | None, effect: str | None) -> Trade:
    return Trade(
        timestamp=when,
        sub_bot_name=bot,
        symbol="BTCUSDT",
        order_id=f"o-{n}",
        side="Sell" if effect == "close" else "Buy",
        price=Decimal("100"),
        quantity=Decimal("1"),
        pnl=None if pnl is None else Decimal(pnl),
        position_effect=effect,
    )


# (bot, day offset, pnl, position_effect). Opening trades carry no PnL (or a zero one) and must
# not count; a row with PnL but no recorded effect counts as closed.
TRADES: list[tuple[str, int, str | None, str | None]] = [
    ("A", 0, None, "open"),
    ("A", 0, "10", "close"),
    ("A", 0, "0", "open"),
    ("A", 0, "-5", "close"),
    ("A", 2, "7.5", "close"),
    ("B", 1, "-2", "close"),
    ("B", 1, "4", None),
    ("C", 0, "3.25", "close"),
]


def _by_scope(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["bot"] or "overall": row for row in rows}


def test_performance_per_bot_and_overall(engine: Engine) -> None:
    with Session(engine) as session:
        session.add_all(
            _trade(n, bot, DAY1 + timedelta(days=day, hours=n), pnl, effect)
            for n, (bot, day, pnl, effect) in enumerate(TRADES)
        )
        session.commit()
    got = _by_scope(_rows(engine, "SELECT * FROM performance"))
    assert set(got) == {"A", "B", "C", "overall"}
    assert got["overall"]["scope"] == "overall"
    assert {got[b]["scope"] for b in "ABC"} == {"bot"}

    # A: closes +10, -5 on day 1 and +7.5 on day 3; day 2 had none, so its PnL is 0.
    a = got["A"]
    assert (a["closed_trades"], a["wins"], a["losses"]) == (3, 2, 1)
    assert a["win_rate"] == pytest.approx(2 / 3)
    assert a["gross_profit"] == pytest.approx(17.5)
    assert a["gross_loss"] == pytest.approx(5.0)
    assert a["profit_factor"] == pytest.approx(3.5)
    assert a["net_pnl"] == pytest.approx(12.5)
    assert a["avg_pnl"] == pytest.approx(12.5 / 3)
    assert (a["first_day"], a["last_day"], a["days"]) == ("2026-01-05", "2026-01-07", 3)
    daily_a = [5.0, 0.0, 7.5]
    assert a["daily_pnl_ratio"] == pytest.approx(
        statistics.mean(daily_a) / statistics.stdev(daily_a) * SQRT_365
    )
    assert a["daily_pnl_ratio"] == pytest.approx(20.8452347)  # 4.1667 / 3.8188 * 19.105

    # B: -2 and +4 on one day: one day is too few for a daily PnL ratio.
    b = got["B"]
    assert (b["closed_trades"], b["wins"], b["losses"]) == (2, 1, 1)
    assert b["win_rate"] == pytest.approx(0.5)
    assert b["profit_factor"] == pytest.approx(2.0)
    assert b["daily_pnl_ratio"] is None

    # C: never lost, so there is no profit factor (no division by zero).
    c = got["C"]
    assert (c["closed_trades"], c["wins"], c["losses"]) == (1, 1, 0)
    assert c["win_rate"] == pytest.approx(1.0)
    assert c["profit_factor"] is None
    assert c["gross_loss"] == pytest.approx(0.0)

    # Overall: the bots' PnL summed per day (5 + 3.25, 2, 7.5), then the same formulas.
    o = got["overall"]
    assert (o["closed_trades"], o["wins"], o["losses"]) == (6, 4, 2)
    assert o["win_rate"] == pytest.approx(4 / 6)
    assert o["profit_factor"] == pytest.approx((10 + 7.5 + 4 + 3.25) / (5 + 2))
    assert o["net_pnl"] == pytest.approx(17.75)
    assert o["days"] == 3
    daily = [8.25, 2.0, 7.5]
    assert o["daily_pnl_ratio"] == pytest.approx(
        statistics.mean(daily) / statistics.stdev(daily) * SQRT_365
    )


def test_0007_renames_the_pnl_ratio_and_its_downgrade_restores_the_old_name(
    db_url: str, engine: Engine
) -> None:
    """'Sharpe' is of returns only; the view's ratio of daily PnL has its own name (0007)."""

    def columns() -> list[str]:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT * FROM performance")).keys())

    after = columns()
    assert "daily_pnl_ratio" in after
    assert "sharpe" not in after
    migrate.downgrade(db_url, "0006")
    assert columns() == [("sharpe" if c == "daily_pnl_ratio" else c) for c in after]
    migrate.upgrade(db_url)
    assert columns() == after


def test_performance_is_empty_without_closed_trades(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_trade(1, "A", DAY1, None, "open"))
        session.commit()
    assert _rows(engine, "SELECT * FROM performance") == []


def test_trade_pnl_daily_groups_by_utc_day(engine: Engine) -> None:
    late = datetime(2026, 1, 5, 23, 30, tzinfo=timezone(timedelta(hours=-5)))  # 04:30 UTC, 6th
    with Session(engine) as session:
        session.add(_trade(1, "A", late, "1.5", "close"))
        session.add(_trade(2, "A", DAY1 + timedelta(days=1, hours=20), "-0.5", "close"))
        session.commit()
    rows = _rows(engine, "SELECT * FROM trade_pnl_daily")
    assert len(rows) == 1
    row = rows[0]
    assert (row["bot"], row["day"], row["closed_trades"], row["wins"], row["losses"]) == (
        "A",
        "2026-01-06",
        2,
        1,
        1,
    )
    assert row["pnl"] == pytest.approx(1.0)
    assert row["gross_profit"] == pytest.approx(1.5)
    assert row["gross_loss"] == pytest.approx(0.5)


def test_daily_portfolio_and_equity_take_each_days_last_snapshot(engine: Engine) -> None:
    times = [DAY1 + timedelta(hours=h) for h in (1, 12, 23)] + [DAY1 + timedelta(days=1, hours=3)]
    with Session(engine) as session:
        for i, when in enumerate(times):
            snap = PortfolioSnapshot(
                timestamp=when,
                total_balance_usdt=Decimal(1000 + i),
                profit_saved_balance=Decimal(i),
                phase="ranging",
            )
            session.add(snap)
            session.flush()
            session.add_all(
                [
                    PortfolioBotBalance(snapshot_id=snap.id, bot_name="A", balance=Decimal(i)),
                    PortfolioBotBalance(
                        snapshot_id=snap.id, bot_name="B", balance=Decimal("0.5") + i
                    ),
                ]
            )
        session.commit()
    daily = _rows(engine, "SELECT * FROM portfolio_daily ORDER BY day")
    assert [(r["day"], r["total_balance_usdt"], r["profit_saved_balance"]) for r in daily] == [
        ("2026-01-05", 1002.0, 2.0),
        ("2026-01-06", 1003.0, 3.0),
    ]
    equity = _rows(engine, "SELECT * FROM equity_daily ORDER BY day, bot")
    assert [(r["day"], r["bot"], r["balance"]) for r in equity] == [
        ("2026-01-05", "A", 2.0),
        ("2026-01-05", "B", 2.5),
        ("2026-01-06", "A", 3.0),
        ("2026-01-06", "B", 3.5),
    ]


def test_sentiment_moving_average_spans_seven_calendar_days(engine: Engine) -> None:
    scores = {0: [0.2, 0.4], 2: [-0.6], 9: [1.0], 10: [0.0]}
    with Session(engine) as session:
        n = 0
        for day, values in scores.items():
            for value in values:
                n += 1
                session.add(
                    SentimentScore(
                        timestamp=DAY1 + timedelta(days=day, hours=n),
                        source="test",
                        item_key=f"k{n}",
                        score=value,
                        headline=f"h{n}",
                    )
                )
        session.add(SentimentScore(timestamp=DAY1, source="t", item_key="unscored", headline="x"))
        session.commit()
    rows = {r["day"]: r for r in _rows(engine, "SELECT * FROM sentiment_daily")}
    assert list(sorted(rows)) == ["2026-01-05", "2026-01-07", "2026-01-14", "2026-01-15"]
    assert rows["2026-01-05"]["items"] == 2
    assert rows["2026-01-05"]["avg_score"] == pytest.approx(0.3)
    assert rows["2026-01-07"]["avg_score_7d"] == pytest.approx((0.2 + 0.4 - 0.6) / 3)
    # the 14th's window is the 8th..14th: the 5th and the 7th have dropped out
    assert rows["2026-01-14"]["avg_score_7d"] == pytest.approx(1.0)
    assert rows["2026-01-15"]["avg_score_7d"] == pytest.approx(0.5)


def test_summary_counts_back_24_hours_from_the_newest_snapshot(engine: Engine) -> None:
    now = DAY1 + timedelta(days=3)
    with Session(engine) as session:
        for hours, total in ((30, 1000), (24, 1010), (1, 1020), (0, 1050)):
            session.add(
                PortfolioSnapshot(
                    timestamp=now - timedelta(hours=hours),
                    total_balance_usdt=Decimal(total),
                    profit_saved_balance=Decimal("7.5"),
                )
            )
        session.add_all(
            [
                _trade(1, "A", now - timedelta(hours=2), "5", "close"),
                _trade(2, "A", now - timedelta(hours=3), "-1.25", "close"),
                _trade(3, "A", now - timedelta(hours=25), "3", "close"),  # older than 24 h
                _trade(4, "A", now - timedelta(hours=2), None, "open"),
            ]
        )
        session.add_all(
            [
                Control(scope="global", halted=False),
                Control(scope="A", halted=True, reason="drawdown"),
                Control(scope="B", halted=False),
                HealthCheck(ts=now - timedelta(hours=2), check_name="disk", status="ok"),
                HealthCheck(ts=now - timedelta(hours=1), check_name="disk", status="warn"),
                HealthCheck(ts=now - timedelta(hours=1), check_name="db", status="OK"),
                # "skipped" (e.g. no exchange layer to ask) is not a problem
                HealthCheck(ts=now - timedelta(hours=1), check_name="exchange", status="skipped"),
            ]
        )
        session.commit()
    (row,) = _rows(engine, "SELECT * FROM dashboard_summary")
    assert row["total_equity"] == pytest.approx(1050.0)
    assert row["equity_change_24h"] == pytest.approx(40.0)  # vs the snapshot exactly 24 h ago
    assert row["realised_pnl_24h"] == pytest.approx(3.75)
    assert row["profit_saved"] == pytest.approx(7.5)
    assert (row["global_halted"], row["halted_bots"]) == (0, 1)
    assert (row["health_checks"], row["health_problems"]) == (3, 1)
    latest = {r["check_name"]: r["status"] for r in _rows(engine, "SELECT * FROM health_latest")}
    assert latest == {"disk": "warn", "db": "OK", "exchange": "skipped"}


def test_summary_of_an_empty_database(engine: Engine) -> None:
    (row,) = _rows(engine, "SELECT * FROM dashboard_summary")
    assert row["as_of"] is None
    assert row["total_equity"] is None
    assert row["realised_pnl_24h"] == 0
    assert (row["global_halted"], row["halted_bots"], row["health_checks"]) == (0, 0, 0)
