"""Clocks: a SimClock only moves forward, and only when told to."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from jiritsu.clock import Clock, RealClock, SimClock, from_ms, parse_range, parse_time, to_ms
from jiritsu.errors import UsageError

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
T0_MS = 1_767_225_600_000


def test_ms_conversions_are_exact() -> None:
    assert to_ms(T0) == T0_MS
    assert from_ms(T0_MS + 1) == T0 + timedelta(milliseconds=1)
    with pytest.raises(ValueError, match="naive"):
        to_ms(datetime(2026, 1, 1))  # naive: the point of the test


def test_sim_clock_advances_by_its_step() -> None:
    clock = SimClock(T0)
    assert clock.now_ms() == T0_MS
    assert clock.advance() == T0_MS + 60_000
    assert clock.advance(2) == T0_MS + 180_000
    assert clock.now() == T0 + timedelta(minutes=3)
    fast = SimClock(T0_MS, step=timedelta(hours=1))
    assert fast.advance() == T0_MS + 3_600_000


def test_sim_clock_never_goes_back() -> None:
    clock = SimClock(T0_MS)
    clock.advance_to(T0 + timedelta(minutes=5))
    assert clock.now_ms() == T0_MS + 300_000
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance_to(T0_MS)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="positive"):
        SimClock(T0_MS, step=0)


def test_real_clock_is_the_wall_clock() -> None:
    clock = RealClock()
    assert isinstance(clock, Clock)
    assert isinstance(SimClock(T0), Clock)
    assert abs(clock.now_ms() - time.time() * 1000) < 5_000
    assert clock.now().tzinfo is not None


def test_one_date_parser_for_every_command() -> None:
    utc = timezone.utc
    assert parse_time("2024-06-01", "--at") == datetime(2024, 6, 1, tzinfo=utc)
    assert parse_time("2024-06-01T12:00+02:00", "--at") == datetime(2024, 6, 1, 10, tzinfo=utc)
    assert parse_time("2024-06-01", "--to", end_of_day=True) == datetime(2024, 6, 2, tzinfo=utc)
    assert parse_range("2024-01-03..2024-01-04", "--replay") == (
        datetime(2024, 1, 3, tzinfo=utc),
        datetime(2024, 1, 5, tzinfo=utc),  # a bare TO date includes that day
    )
    assert parse_range("..", "--replay") == (None, None)
    with pytest.raises(UsageError, match="--at: not a date"):
        parse_time("yesterday", "--at")
    with pytest.raises(UsageError, match="TO must be after FROM"):
        parse_range("2024-02-01..2024-01-01", "--replay")
    with pytest.raises(UsageError, match=r"FROM\.\.TO"):
        parse_range("2024-02-01", "--replay")
