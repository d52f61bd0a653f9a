"""The five-field cron parser used for optimizer.schedule."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from jiritsu.config.cron import CronError, parse_cron

UTC = timezone.utc


def test_default_schedule_runs_at_one_on_the_first_of_the_month() -> None:
    cron = parse_cron("0 1 1 * *")
    assert cron.next_after(datetime(2026, 11, 1, 1, 0, tzinfo=UTC)) == datetime(
        2026, 12, 1, 1, 0, tzinfo=UTC
    )
    assert cron.next_after(datetime(2026, 12, 15, 8, 30, tzinfo=UTC)) == datetime(
        2027, 1, 1, 1, 0, tzinfo=UTC
    )
    assert cron.matches(datetime(2027, 3, 1, 1, 0, 59, tzinfo=UTC))
    assert not cron.matches(datetime(2027, 3, 1, 1, 1, tzinfo=UTC))


def test_lists_ranges_steps_and_names() -> None:
    cron = parse_cron("*/15 9-17/4 * JAN,jul mon-fri")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == {9, 13, 17}
    assert cron.months == {1, 7}
    assert cron.weekdays == {1, 2, 3, 4, 5}
    assert parse_cron("5/20 * * * *").minutes == {5, 25, 45}


def test_sunday_is_0_and_7() -> None:
    assert parse_cron("0 0 * * 7").weekdays == parse_cron("0 0 * * sun").weekdays == {0}
    sunday = datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # a Sunday
    assert parse_cron("0 0 * * 7").matches(sunday)


def test_day_of_month_or_day_of_week_when_both_restricted() -> None:
    cron = parse_cron("0 0 13 * fri")
    assert cron.matches(datetime(2026, 11, 13, tzinfo=UTC))  # Friday the 13th
    assert cron.matches(datetime(2026, 11, 6, tzinfo=UTC))  # any Friday
    assert cron.matches(datetime(2026, 12, 13, tzinfo=UTC))  # a Sunday, but the 13th
    assert not cron.matches(datetime(2026, 11, 7, tzinfo=UTC))


def test_leap_day_schedule_is_possible() -> None:
    cron = parse_cron("0 0 29 2 *")
    assert cron.next_after(datetime(2026, 1, 1, tzinfo=UTC)) == datetime(2028, 2, 29, tzinfo=UTC)


def test_aliases() -> None:
    assert parse_cron("@monthly").minutes == parse_cron("0 0 1 * *").minutes
    assert parse_cron("@hourly").hours == frozenset(range(24))


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("0 1 1 *", "expected 5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("* * 0 * *", "day of month: 0 is outside 1-31"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "day of week: 8 is outside 0-7"),
        ("*/0 * * * *", "step '0'"),
        ("5-1 * * * *", "runs backwards"),
        ("a * * * *", "not a number"),
        ("1,,2 * * * *", "empty list item"),
        ("0 0 31 4,6 *", "never fires"),
    ],
)
def test_invalid_expressions_say_why(expr: str, fragment: str) -> None:
    with pytest.raises(CronError, match=fragment.replace("*", r"\*")):
        parse_cron(expr)
