"""Heartbeats: one upserted row per component, on both backends, with restarts visible."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu import heartbeat
from jiritsu.db.models import Heartbeat

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_first_beat_creates_the_row_and_later_beats_update_it(engine: Engine) -> None:
    assert heartbeat.last_beat(engine, heartbeat.TRADE_LOOP) is None
    assert heartbeat.age(engine, heartbeat.TRADE_LOOP) is None

    heartbeat.beat(engine, heartbeat.TRADE_LOOP, {"tick": 1}, now=T0)
    heartbeat.beat(
        engine, heartbeat.TRADE_LOOP, {"equity": Decimal("1.5")}, now=T0 + timedelta(seconds=30)
    )

    found = heartbeat.last_beat(engine, heartbeat.TRADE_LOOP)
    assert found is not None
    assert found.last_seen == T0 + timedelta(seconds=30)
    assert found.started_at == T0, "the same process keeps its start time"
    assert found.details == {"equity": "1.5"}
    assert found.pid == os.getpid()
    assert found.host
    assert heartbeat.age(engine, heartbeat.TRADE_LOOP, now=T0 + timedelta(seconds=100)) == 70
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Heartbeat)).scalar_one() == 1


def test_a_beat_from_another_process_restarts_the_clock(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, now=T0)
    monkeypatch.setattr(heartbeat.os, "getpid", lambda: 4_000_000)
    later = T0 + timedelta(minutes=5)
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, now=later)
    found = heartbeat.last_beat(engine, heartbeat.TRADE_LOOP)
    assert found is not None
    assert (found.pid, found.started_at, found.last_seen) == (4_000_000, later, later)


def test_components_are_independent(engine: Engine) -> None:
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, now=T0)
    heartbeat.beat(engine, heartbeat.HEALTH, now=T0 + timedelta(minutes=1))
    assert heartbeat.age(engine, heartbeat.TRADE_LOOP, now=T0 + timedelta(minutes=2)) == 120
    assert heartbeat.age(engine, heartbeat.HEALTH, now=T0 + timedelta(minutes=2)) == 60
    assert heartbeat.age(engine, heartbeat.TRADE_TICK) is None


def test_age_is_never_negative_when_the_beat_is_from_a_clock_ahead(engine: Engine) -> None:
    heartbeat.beat(engine, "dashboard", now=T0 + timedelta(seconds=5))
    assert heartbeat.age(engine, "dashboard", now=T0) == 0


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_component_names_must_fit_the_column(engine: Engine, name: str) -> None:
    with pytest.raises(ValueError, match="component name"):
        heartbeat.beat(engine, name)
