"""Money is exact Decimal and timestamps are aware UTC, identically on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from jiritsu.db.models import Heartbeat, PortfolioSnapshot, SystemEvent, Transfer
from jiritsu.db.types import Money, UTCDateTime, to_decimal

TOKYO = timezone(timedelta(hours=9))
MONEY_CASES = [
    ("0.000000012345678901", "0.000000012345678901"),
    ("12345678901234567890.123456789012345678", "12345678901234567890.123456789012345678"),
    ("-99999999999999999999.999999999999999999", "-99999999999999999999.999999999999999999"),
    ("65432.10", "65432.1"),
    ("10", "10"),
    ("0.000", "0"),
    ("1.0000000000000000005", "1"),  # 19th decimal place: rounded half-even, like NUMERIC(38,18)
    ("1.0000000000000000015", "1.000000000000000002"),
]


def _transfer(key: str, amount: Decimal | str) -> Transfer:
    return Transfer(
        idempotency_key=key,
        kind="manual",
        from_account="main",
        to_account="alpha",
        coin="USDT",
        amount=amount,
    )


def test_money_round_trips_exactly(engine: Engine) -> None:
    with Session(engine) as session:
        for i, (raw, _) in enumerate(MONEY_CASES):
            session.add(_transfer(f"k{i}", Decimal(raw)))
        session.commit()
    with Session(engine) as session:
        rows = session.scalars(sa.select(Transfer).order_by(Transfer.id)).all()
        got = [r.amount for r in rows]
    assert all(isinstance(v, Decimal) for v in got)
    # format "f": str() of a Decimal switches to exponent notation below 1e-6 (same value)
    assert [format(v, "f") for v in got] == [expected for _, expected in MONEY_CASES]
    assert got[0] == Decimal("0.000000012345678901")


def test_money_accepts_int_and_str_and_refuses_float() -> None:
    assert to_decimal(5) == Decimal(5)
    assert to_decimal(" 1.50 ") == Decimal("1.5")
    with pytest.raises(TypeError):
        to_decimal(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_decimal(True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer digits"):
        to_decimal("100000000000000000000")  # 21 integer digits do not fit NUMERIC(38,18)
    with pytest.raises(ValueError, match="finite"):
        to_decimal(Decimal("NaN"))
    with pytest.raises(ValueError, match="not a decimal"):
        to_decimal("12abc")


def test_money_float_is_refused_on_write(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(_transfer("f", 0.1))  # type: ignore[arg-type]
        with pytest.raises(StatementError) as err:
            session.commit()
    assert isinstance(err.value.orig, TypeError)


def test_sqlite_stores_money_and_time_as_exact_sortable_text(sqlite_url: str) -> None:
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine

    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with Session(engine) as session:
        session.add(
            PortfolioSnapshot(
                timestamp=datetime(2026, 1, 1, 9, 0, tzinfo=TOKYO),
                total_balance_usdt=Decimal("0.000000012345678901"),
            )
        )
        session.commit()
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT timestamp, typeof(timestamp), total_balance_usdt,"
                " typeof(total_balance_usdt) FROM portfolio_history"
            )
        ).one()
    engine.dispose()
    assert tuple(row) == (
        "2026-01-01 00:00:00.000000+00:00",
        "text",
        "0.000000012345678901",
        "text",
    )


def test_naive_datetime_is_refused(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(
            SystemEvent(
                timestamp=datetime(2026, 1, 1), level="INFO", event_type="X", message="naive"
            )
        )
        with pytest.raises(StatementError) as err:
            session.commit()
    assert isinstance(err.value.orig, ValueError)
    assert "naive" in str(err.value.orig)
    with engine.connect() as conn:  # also in a WHERE clause
        with pytest.raises(StatementError):
            conn.execute(sa.select(SystemEvent).where(SystemEvent.timestamp > datetime(2026, 1, 1)))


def test_aware_datetimes_round_trip_as_utc_and_sort(engine: Engine) -> None:
    times = [
        datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=TOKYO),  # 03:00:00.123456Z
        datetime(2026, 3, 1, 2, 59, 59, tzinfo=timezone.utc),
        datetime(2026, 2, 28, 23, 0, tzinfo=timezone(timedelta(hours=-5))),  # 04:00Z
    ]
    with Session(engine) as session:
        for i, t in enumerate(times):
            session.add(Heartbeat(component=f"c{i}", last_seen=t))
        session.commit()
    with Session(engine) as session:
        ordered = session.scalars(sa.select(Heartbeat).order_by(Heartbeat.last_seen)).all()
        after = session.scalars(
            sa.select(Heartbeat.component).where(
                Heartbeat.last_seen > datetime(2026, 3, 1, 3, 0, tzinfo=timezone.utc)
            )
        ).all()
    assert [h.component for h in ordered] == ["c1", "c0", "c2"]
    for h in ordered:
        assert h.last_seen.tzinfo is not None
        assert h.last_seen.utcoffset() == timedelta(0)
    assert ordered[1].last_seen == times[0]
    assert ordered[1].last_seen.microsecond == 123456
    assert sorted(after) == ["c0", "c2"]


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()])
def test_type_processors_directly(dialect: sa.Dialect) -> None:
    ts, money = UTCDateTime(), Money()
    aware = datetime(2026, 1, 1, 9, 0, tzinfo=TOKYO)
    stored = ts.process_bind_param(aware, dialect)
    back = ts.process_result_value(stored, dialect)
    assert back == aware
    assert back.tzinfo == timezone.utc
    with pytest.raises(ValueError, match="naive"):
        ts.process_bind_param(datetime(2026, 1, 1), dialect)
    assert money.process_result_value(money.process_bind_param("1.50", dialect), dialect) == (
        Decimal("1.5")
    )


def test_sqlite_reads_text_written_by_others() -> None:
    ts = UTCDateTime()
    dialect = sqlite.dialect()
    assert ts.process_result_value("2026-01-01 00:00:00", dialect) == datetime(
        2026, 1, 1, tzinfo=timezone.utc
    )
    assert ts.process_result_value("2026-01-01T09:00:00+09:00", dialect) == datetime(
        2026, 1, 1, tzinfo=timezone.utc
    )
    assert str(Money().process_result_value(0.5, dialect)) == "0.5"


def test_sqlite_text_reads_are_canonical_on_every_read() -> None:
    """Reads of stored text are cached by text: each text still gets its own canonical value,
    however many times and in whatever order the texts are read."""
    money, ts, dialect = Money(), UTCDateTime(), sqlite.dialect()
    texts = {"65432.10": "65432.1", "1E+1": "10", "-0": "0", "0.000": "0", " 2.50 ": "2.5",
             "1e-7": "0.0000001", "10": "10", "-3.0": "-3"}  # fmt: skip
    for _ in range(2):
        for text, expected in texts.items():
            got = money.process_result_value(text, dialect)
            assert isinstance(got, Decimal)
            assert format(got, "f") == expected
            assert got.as_tuple() == Decimal(expected).as_tuple()  # not 1E+1, not -0
    stamps = {"2026-01-01T09:00:00+09:00": datetime(2026, 1, 1, tzinfo=timezone.utc),
              "2026-01-01 00:00:00": datetime(2026, 1, 1, tzinfo=timezone.utc),
              "2026-01-01 01:00:00Z": datetime(2026, 1, 1, 1, tzinfo=timezone.utc)}  # fmt: skip
    for _ in range(2):
        for text, expected in stamps.items():
            got_ts = ts.process_result_value(text, dialect)
            assert got_ts == expected
            assert got_ts.tzinfo == timezone.utc
    with pytest.raises(ValueError, match="isoformat"):
        ts.process_result_value("not a time", dialect)


def test_json_none_is_sql_null(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(SystemEvent(level="INFO", event_type="A", message="m", details=None))
        session.add(SystemEvent(level="INFO", event_type="B", message="m", details={"k": [1, "x"]}))
        session.commit()
    with engine.connect() as conn:
        nulls = conn.execute(
            sa.text("SELECT event_type FROM system_events WHERE details IS NULL")
        ).scalars()
        assert list(nulls) == ["A"]
    with Session(engine) as session:
        b = session.scalars(sa.select(SystemEvent).where(SystemEvent.event_type == "B")).one()
        assert b.details == {"k": [1, "x"]}
