"""A halt state read with one plain statement, or answered from the states a reader holds (a
simulation's loop over its own database), equals the state the former ORM read gave, and lifts
an elapsed cool-down at the same moments with the same row: over random sequences of halts,
resumes, reads and elapsing cool-downs, on SQLite and PostgreSQL. A read asks the database
nothing (reader) or one SELECT (live)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm.attributes import flag_modified

from jiritsu import controls
from jiritsu.db.engine import session_scope
from jiritsu.db.models import Control
from tests.exchange.test_paper_reads import statements

T = datetime(2026, 3, 1, tzinfo=timezone.utc)
SCOPES = (controls.GLOBAL, "SubBot-A", "SubBot-B", "never-halted")


def former_state(engine: Engine, scope: str, *, now: datetime) -> controls.HaltState:
    """The read before plain statements: the row through an ORM session, lifted in it."""
    with session_scope(engine) as session:
        row = session.scalars(sa.select(Control).where(Control.scope == scope)).one_or_none()
        if row is not None and row.halted and row.cooldown_until and row.cooldown_until <= now:
            row.halted = False
            row.resumed_at = now
            row.updated_at = now
            flag_modified(row, "updated_at")
        if row is None:
            return controls.HaltState(scope, False)
        return controls.HaltState(scope, bool(row.halted), row.reason, row.halted_at,
                                  row.halted_by, row.cooldown_until)  # fmt: skip


def stored(engine: Engine, scope: str) -> tuple[Any, ...] | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(Control.halted, Control.reason, Control.halted_at, Control.halted_by,
                      Control.resumed_at, Control.cooldown_until, Control.updated_at)
            .where(Control.scope == scope)
        ).first()  # fmt: skip
    return None if row is None else tuple(row)


class Reader:
    """The loop's reader of a private database: every state, read again after a change."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read: tuple[int, list[controls.HaltState]] | None = None
        self.reads = 0

    def __call__(self) -> list[controls.HaltState]:
        mark = controls.writes(self.engine)
        if self.read is None or self.read[0] != mark:
            self.read = (mark, controls.all_states(self.engine))
            self.reads += 1
        return self.read[1]


@pytest.mark.parametrize("seed", range(4))
def test_reads_equal_the_former_orm_read_and_lift_alike(engine: Engine, seed: int) -> None:
    """Each scope is mirrored by an "old:" twin the former read serves; after every read both
    give the same state and their rows hold the same values (a lift stamps both alike)."""
    rng = random.Random(seed)
    reader = Reader(engine)
    now = T
    lifts = 0
    for _ in range(160):
        now += timedelta(minutes=rng.choice((0, 1, 7, 30, 61)))
        scope = rng.choice(SCOPES)
        what = rng.random()
        if what < 0.25 and scope != "never-halted":
            cooldown = rng.choice((0, 5, 30, 60))
            for s in (scope, f"old:{scope}"):
                controls.halt(engine, s, f"r{seed}", by="breaker", cooldown_minutes=cooldown,
                              now=now)  # fmt: skip
        elif what < 0.35 and scope != "never-halted":
            for s in (scope, f"old:{scope}"):
                controls.resume(engine, s, now=now)
        else:
            before = stored(engine, scope)
            expected = former_state(engine, f"old:{scope}", now=now)
            got = controls.state(engine, scope, now=now, states=reader if what < 0.7 else None)
            assert got == controls.HaltState(scope, *_fields(expected))
            assert stored(engine, scope) == stored(engine, f"old:{scope}")
            lifts += before != stored(engine, scope)
    assert lifts  # some cool-downs elapsed and were lifted
    assert reader.reads < 160


def _fields(st: controls.HaltState) -> tuple[Any, ...]:
    return (st.halted, st.reason, st.halted_at, st.halted_by, st.cooldown_until)


def test_a_reader_answers_without_asking_and_live_asks_once(engine: Engine) -> None:
    controls.halt(engine, "SubBot-A", "streak", cooldown_minutes=60, now=T)
    reader = Reader(engine)
    reader()
    with statements(engine) as seen:
        assert controls.halted(engine, "SubBot-A", now=T, states=reader).halted
        assert not controls.halted(engine, "SubBot-B", now=T, states=reader).halted
    assert seen == []
    with statements(engine) as seen:
        assert controls.state(engine, "SubBot-A", now=T).halted
    assert len(seen) == 1
    assert "FROM controls" in seen[0]
    # a live process sees another's halt at once; the lift reads the row again and writes it
    controls.halt(engine, controls.GLOBAL, "operator", now=T)
    assert controls.halted(engine, "SubBot-B", now=T).reason == "operator"
    later = T + timedelta(hours=1)
    reader()  # (read again after that halt)
    with statements(engine) as seen:
        lifted = controls.state(engine, "SubBot-A", now=later, states=reader)
    assert not lifted.halted
    assert [s.split()[0] for s in seen if "controls" in s] == ["SELECT", "UPDATE"]
    assert stored(engine, "SubBot-A")[4] == later  # resumed_at
