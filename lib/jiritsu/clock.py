"""Clocks: the one source of "now" for everything that stamps or reads time.

The runtime (:mod:`jiritsu.runtime`) picks one clock per process and hands it to the journal,
the market data, the paper exchange and the trade loop. Live commands use :class:`RealClock`;
replays, simulations, live paper trading's step clock and tests use a :class:`SimClock` that only
moves when told to, so a run over stored candles is reproducible to the millisecond and nothing
can peek at a bar before the clock has passed its close.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable


def to_ms(value: datetime | int) -> int:
    """Epoch milliseconds of an aware datetime (or an int already in ms)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(f"naive datetime refused (attach a timezone, e.g. UTC): {value!r}")
        return round(value.timestamp() * 1000)
    return int(value)


def from_ms(ms: int) -> datetime:
    """Aware UTC datetime of epoch milliseconds (exact to the millisecond)."""
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(ms))


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the time in epoch milliseconds."""

    def now_ms(self) -> int: ...

    def now(self) -> datetime: ...


class RealClock:
    """Wall-clock time (UTC)."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def now(self) -> datetime:
        return from_ms(self.now_ms())


def wall_now() -> datetime:
    """The wall clock's time, for what is wall time by nature whatever clock the trading runs
    on: backup file names and ages, heartbeats (a process's liveness), API quotas and rate
    limits, log lines, the operator's own actions at a terminal. Anything a job records about
    the market or the money takes the runtime's clock instead."""
    return RealClock().now()


class SimClock:
    """A clock that starts at ``start`` and moves by ``step`` (default one minute) per
    :meth:`advance`, or to a given time with :meth:`advance_to`; it never goes back."""

    def __init__(self, start: datetime | int, step: timedelta | int = 60_000) -> None:
        self._now = to_ms(start)
        self.step_ms = int(step.total_seconds() * 1000) if isinstance(step, timedelta) else step
        if self.step_ms <= 0:
            raise ValueError(f"step must be positive, got {self.step_ms} ms")

    def now_ms(self) -> int:
        return self._now

    def now(self) -> datetime:
        return from_ms(self._now)

    def advance(self, steps: int = 1) -> int:
        """Move forward by ``steps`` steps; return the new time in ms."""
        if steps < 0:
            raise ValueError("a SimClock never goes back")
        self._now += steps * self.step_ms
        return self._now

    def advance_to(self, when: datetime | int) -> int:
        """Move forward to ``when``; moving back is a ValueError (it would replay the past)."""
        target = to_ms(when)
        if target < self._now:
            raise ValueError(f"a SimClock never goes back: {target} < now {self._now}")
        self._now = target
        return self._now


def parse_time(text: str, what: str, *, end_of_day: bool = False) -> datetime:
    """A UTC time from ``2024-06-01``, ``2024-06-01T12:00`` or ISO 8601 with an offset (naive
    means UTC); the one parser of every command's dates. ``end_of_day``: a bare date means the
    end of that day (an inclusive TO). A bad value is a UsageError naming ``what``."""
    from jiritsu.errors import UsageError

    part = text.strip()
    try:
        when = datetime.fromisoformat(part.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{what}: not a date or time: {text!r} (use e.g. 2024-06-01 or 2024-06-01T12:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    if end_of_day and len(part) == 10:
        when += timedelta(days=1)
    return when.astimezone(timezone.utc)


def parse_range(text: str, what: str) -> tuple[datetime | None, datetime | None]:
    """``FROM..TO`` (either side may be empty: open); a bare date as TO includes that day."""
    from jiritsu.errors import UsageError

    if ".." not in text:
        raise UsageError(f"{what} takes FROM..TO (e.g. 2024-01-03..2024-02-01), got {text!r}")
    lo, _, hi = text.partition("..")
    start = parse_time(lo, what) if lo.strip() else None
    stop = parse_time(hi, what, end_of_day=True) if hi.strip() else None
    if start is not None and stop is not None and stop <= start:
        raise UsageError(f"{what}: TO must be after FROM")
    return start, stop
