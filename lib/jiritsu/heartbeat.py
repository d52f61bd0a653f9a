"""Heartbeats: every long-running component upserts one row in ``heartbeats`` to say "alive".

``jiritsu health`` compares the age of a component's last beat with a threshold, so a trade loop
that hangs (alive for systemd, doing nothing) is noticed as surely as one that died. One row per
component keeps the table tiny; ``started_at`` changes only when another process (pid or host)
takes over the component, so a restart is visible too.

Components the system knows by name: :data:`TRADE_LOOP` (beats while the loop runs, at least
every ``health.heartbeat_max_age_seconds / 2``), :data:`TRADE_TICK` (beats after each completed
trading cycle) and :data:`HEALTH` (the health job itself).

:data:`SIM_CLOCK` is not a process but a marker: "this database ran on simulated time up to T".
A replay (and ``jiritsu simulate``) sets it with :func:`mark_simulated`; a live run clears it
with :func:`clear_simulated`. Freshness checks read it through :func:`simulated_time` and judge
the data against T instead of the wall clock, so a finished replay is not "stale for years".

A beat is wall time (:func:`jiritsu.clock.wall_now`) whatever clock the component trades on: it
says whether a process is alive now, and an hour of a replay passes in a second.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from jiritsu.clock import wall_now

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = [
    "HEALTH",
    "SIM_CLOCK",
    "TRADE_LOOP",
    "TRADE_TICK",
    "Beat",
    "SimulatedTime",
    "age",
    "beat",
    "clear_simulated",
    "last_beat",
    "mark_simulated",
    "simulated_time",
]

TRADE_LOOP = "trade-loop"
TRADE_TICK = "trade-tick"
HEALTH = "health"
SIM_CLOCK = "simulated-clock"
_MAX_COMPONENT = 64  # heartbeats.component is VARCHAR(64)


@dataclass(frozen=True)
class Beat:
    """The last heartbeat of one component."""

    component: str
    last_seen: datetime
    started_at: datetime | None
    pid: int | None
    host: str | None
    details: Any

    def age_seconds(self, now: datetime | None = None) -> float:
        """Seconds since the beat (never negative: clocks of two hosts may disagree a little)."""
        now = now or wall_now()
        return max(0.0, (now - self.last_seen).total_seconds())


def _check_component(component: str) -> str:
    if not component or len(component) > _MAX_COMPONENT:
        raise ValueError(f"component name must be 1-{_MAX_COMPONENT} characters: {component!r}")
    return component


def _portable(details: Mapping[str, Any] | None) -> Any:
    """Details go into a JSON column: Decimal, datetimes and the like become text."""
    if details is None:
        return None
    return json.loads(json.dumps(dict(details), default=str))


def beat(
    engine: Engine,
    component: str,
    details: Mapping[str, Any] | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """Record that ``component`` is alive now (one upsert; raises on database errors).

    The caller decides what a failed beat means: a loop would typically wrap it in
    :func:`jiritsu.db.engine.retry_db` or log and carry on.
    """
    import sqlalchemy as sa

    from jiritsu.db.models import Heartbeat
    from jiritsu.db.upsert import conflict_insert

    _check_component(component)
    when = now or wall_now()
    table = Heartbeat.__table__
    values = {
        "component": component,
        "last_seen": when,
        "started_at": when,
        "pid": os.getpid(),
        "host": socket.gethostname()[:255],
        "details": _portable(details),
    }
    stmt = conflict_insert(engine.dialect.name, table).values(**values)
    same_process = sa.and_(table.c.pid == stmt.excluded.pid, table.c.host == stmt.excluded.host)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.component],
        set_={
            "last_seen": stmt.excluded.last_seen,
            "pid": stmt.excluded.pid,
            "host": stmt.excluded.host,
            "details": stmt.excluded.details,
            # A restart (another pid or host) starts the clock again; a beat of the same
            # process keeps it.
            "started_at": sa.case(
                (same_process, sa.func.coalesce(table.c.started_at, stmt.excluded.started_at)),
                else_=stmt.excluded.started_at,
            ),
        },
    )
    with engine.begin() as conn:
        conn.execute(stmt)


def last_beat(engine: Engine, component: str) -> Beat | None:
    """The last heartbeat of ``component``, or None when it never beat."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from jiritsu.db.models import Heartbeat

    with Session(engine) as session:
        row = session.scalars(
            sa.select(Heartbeat).where(Heartbeat.component == _check_component(component))
        ).first()
        if row is None:
            return None
        return Beat(
            component=row.component,
            last_seen=row.last_seen,
            started_at=row.started_at,
            pid=row.pid,
            host=row.host,
            details=row.details,
        )


def age(engine: Engine, component: str, *, now: datetime | None = None) -> float | None:
    """Seconds since ``component`` last beat; None when it never did."""
    found = last_beat(engine, component)
    return None if found is None else found.age_seconds(now)


@dataclass(frozen=True)
class SimulatedTime:
    """The simulated clock a database last ran on: its data's "now" is ``until``."""

    until: datetime
    source: str
    recorded_at: datetime


def mark_simulated(
    engine: Engine, until: datetime, source: str, *, now: datetime | None = None
) -> None:
    """Record that this database has run on simulated time up to ``until`` (``source``: what
    ran it, e.g. ``"replay"`` or ``"simulate"``); the newest mark wins."""
    if until.tzinfo is None:
        raise ValueError("the simulated time must be timezone-aware (UTC)")
    beat(engine, SIM_CLOCK, {"until": until.isoformat(), "source": source}, now=now)


def clear_simulated(engine: Engine) -> None:
    """A live run owns this database now: forget the simulated clock."""
    import sqlalchemy as sa

    from jiritsu.db.models import Heartbeat

    with engine.begin() as conn:
        conn.execute(sa.delete(Heartbeat).where(Heartbeat.component == SIM_CLOCK))


def simulated_time(engine: Engine) -> SimulatedTime | None:
    """The simulated clock this database ran on, or None when it runs on real time."""
    found = last_beat(engine, SIM_CLOCK)
    if found is None:
        return None
    details = found.details
    if not isinstance(details, dict) or "until" not in details:
        return None
    until = datetime.fromisoformat(str(details["until"]))
    if until.tzinfo is None:
        until = until.replace(tzinfo=timezone.utc)
    return SimulatedTime(until, str(details.get("source") or "simulation"), found.last_seen)
