"""record_event: the row, the log line and the alert agree; a dead database loses nothing."""

from __future__ import annotations

import io
import logging
from datetime import datetime, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu import redact
from jiritsu.db.engine import make_engine
from jiritsu.db.models import SystemEvent
from jiritsu.events import EventType, record_event
from jiritsu.log import setup_console_logging
from jiritsu.notify import build_notifier
from tests.fakes.discord import FakeDiscord

NOW = datetime(2019, 5, 1, 12, 0, tzinfo=timezone.utc)  # the caller's clock, not the wall's


def test_event_is_stored_logged_and_alerted_with_secrets_masked(engine: Engine) -> None:
    redact.register_secret("gm-key-0123456789")
    stream = io.StringIO()
    setup_console_logging(stream=stream)
    with FakeDiscord() as fake:
        notifier = build_notifier(fake.url_for("1", "webhooktoken1"), min_level="WARNING")
        stored = record_event(
            engine,
            "ERROR",
            EventType.ADVISOR_ERROR,
            "gemini refused key gm-key-0123456789",
            {"amount": Decimal("1.50"), "key": "gm-key-0123456789"},
            bot="SubBot-B",
            notifier=notifier,
            now=NOW,
        )
        received = b"".join(r.body for r in fake.requests)
    assert stored is True
    with Session(engine) as session:
        row = session.scalars(sa.select(SystemEvent)).one()
    assert (row.level, row.event_type, row.bot) == ("ERROR", "ADVISOR_ERROR", "SubBot-B")
    assert row.timestamp == NOW
    assert row.message == "gemini refused key ***"
    assert row.details == {"amount": "1.50", "key": "***"}
    line = stream.getvalue()
    assert "[ERROR] [jiritsu.events] [SubBot-B] ADVISOR_ERROR: gemini refused key ***" in line
    assert len(fake.messages) == 1
    assert b"gm-key-0123456789" not in received
    assert "ADVISOR_ERROR" in fake.messages[0]["embeds"][0]["title"]
    assert "gm-key-0123456789" not in line


def test_event_survives_an_unreachable_database(caplog: pytest.LogCaptureFixture) -> None:
    dead = make_engine("postgresql+psycopg://u:pw12345@127.0.0.1:1/none", connect_timeout=1)
    caplog.set_level(logging.INFO, logger="jiritsu.events")
    setup_console_logging(stream=io.StringIO())
    logging.getLogger("jiritsu").propagate = True  # let caplog see the records
    try:
        stored = record_event(dead, "CRITICAL", EventType.CIRCUIT_BREAKER, "drawdown 16%", now=NOW)
    finally:
        logging.getLogger("jiritsu").propagate = False
    assert stored is False
    messages = [r.getMessage() for r in caplog.records]
    assert any("CIRCUIT_BREAKER: drawdown 16%" in m for m in messages)
    assert any("not stored in the database" in m for m in messages)


def test_unknown_level_is_a_programming_error(engine: Engine) -> None:
    with pytest.raises(ValueError, match="unknown event level"):
        record_event(engine, "LOUD", "X", "y", now=NOW)


def test_an_event_without_details_stores_sql_null(engine: Engine) -> None:
    """The plain INSERT writes what the ORM row did: no details is SQL NULL (not JSON null),
    the caller's time, the level upper-cased; each event its own row, in order."""
    assert record_event(engine, "info", "LOOP", "started", now=NOW) is True
    assert record_event(engine, "WARNING", EventType.ORDER, "held", {"n": 2}, now=NOW) is True
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(SystemEvent.id, SystemEvent.level, SystemEvent.event_type,
                      SystemEvent.bot, SystemEvent.details.is_(None), SystemEvent.timestamp)
            .order_by(SystemEvent.id)
        ).all()  # fmt: skip
    assert [tuple(r)[1:] for r in rows] == [
        ("INFO", "LOOP", None, True, NOW),
        ("WARNING", "ORDER", None, False, NOW),
    ]
    assert rows[0][0] < rows[1][0]
