"""Halt switches (the ``controls`` table): global and per bot.

A halt is set by a circuit breaker or by the operator, and only ``jiritsu resume`` (or an elapsed
configured cool-down) lifts it. Everything that trades or moves money asks :func:`halted` first.
Every function takes ``now`` from the caller's clock (a replay's cool-downs elapse in replayed
time), and every change is stamped with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from jiritsu.db.writes import WriteCount

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session
    from typing_extensions import Unpack

    from jiritsu.db.models import Control

GLOBAL = "global"
_WRITES = WriteCount()  # halt-state changes this process made (see :func:`writes`)


@dataclass(frozen=True)
class HaltState:
    scope: str
    halted: bool
    reason: str | None = None
    halted_at: datetime | None = None
    halted_by: str | None = None
    cooldown_until: datetime | None = None


# Every scope's state as stored, from a reader that knows when it moved (see :func:`state`).
StateReader = Callable[[], Sequence[HaltState]]


def _row(session: Session, scope: str) -> Control | None:
    import sqlalchemy as sa

    from jiritsu.db.models import Control

    return session.scalars(sa.select(Control).where(Control.scope == scope)).one_or_none()


def writes(engine: Engine) -> int:
    """How many halt-state changes this process has made through ``engine``: a reader whose
    database no other process writes (a simulation's) reads the states again only when it
    moved."""
    return _WRITES(engine)


def _stamp(row: Control, now: datetime) -> None:
    """``updated_at`` from the caller's clock (an unchanged value would let the column's
    wall-clock ``onupdate`` stamp it instead)."""
    from sqlalchemy.orm.attributes import flag_modified

    row.updated_at = now
    flag_modified(row, "updated_at")


def _state(row: Control | None, scope: str) -> HaltState:
    if row is None:
        return HaltState(scope, False)
    return HaltState(
        scope, bool(row.halted), row.reason, row.halted_at, row.halted_by, row.cooldown_until
    )


def halt(
    engine: Engine,
    scope: str,
    reason: str,
    *,
    by: str = "operator",
    cooldown_minutes: float = 0,
    now: datetime,
) -> bool:
    """Halt ``scope`` (GLOBAL or a bot name); returns False when it was already halted."""
    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import Control

    with session_scope(engine) as session:
        row = _row(session, scope)
        if row is None:
            row = Control(scope=scope, halted=False, updated_at=now)
            session.add(row)
        if row.halted:
            return False
        row.halted = True
        row.reason = reason
        row.halted_at = now
        row.halted_by = by
        row.cooldown_until = now + timedelta(minutes=cooldown_minutes) if cooldown_minutes else None
        _stamp(row, now)
    _WRITES.add(engine)
    return True


def resume(engine: Engine, scope: str, *, now: datetime) -> bool:
    """Lift a halt; returns False when ``scope`` was not halted."""
    from jiritsu.db.engine import session_scope

    with session_scope(engine) as session:
        row = _row(session, scope)
        if row is None or not row.halted:
            return False
        row.halted = False
        row.resumed_at = now
        row.cooldown_until = None
        _stamp(row, now)
    _WRITES.add(engine)
    return True


def state(
    engine: Engine, scope: str, *, now: datetime, states: StateReader | None = None
) -> HaltState:
    """The halt state of ``scope``; a halt whose cool-down has elapsed is lifted here.

    The row is read with one plain statement (so another process's halt is seen at once);
    ``states`` instead answers with every scope's state as stored, from a reader that knows
    when they moved (a simulation's loop over its own database, see :func:`writes`). Either
    way only a halt to lift opens a session, which reads the row again before changing it."""
    found = _stored(engine, scope) if states is None else _among(states(), scope)
    if not _elapsed(found, now):
        return found
    from jiritsu.db.engine import session_scope

    lifted = False
    with session_scope(engine) as session:
        row = _row(session, scope)
        if row is not None and row.halted and row.cooldown_until and row.cooldown_until <= now:
            row.halted = False
            row.resumed_at = now
            _stamp(row, now)
            lifted = True
        found = _state(row, scope)
    if lifted:
        _WRITES.add(engine)
    return found


def _elapsed(st: HaltState, now: datetime) -> bool:
    """A halt whose cool-down has run out (:func:`state` lifts it)."""
    return st.halted and st.cooldown_until is not None and st.cooldown_until <= now


def _among(states: Sequence[HaltState], scope: str) -> HaltState:
    for st in states:
        if st.scope == scope:
            return st
    return HaltState(scope, False)


def _stored(engine: Engine, scope: str) -> HaltState:
    with engine.connect() as conn:
        row = conn.execute(_state_query(), {"scope": scope}).first()
    return HaltState(scope, False) if row is None else HaltState(row[0], bool(row[1]), *row[2:])


def halted(
    engine: Engine, bot: str | None = None, *, now: datetime, states: StateReader | None = None
) -> HaltState:
    """The halt that stops ``bot`` (the global one first), or a not-halted state (``states``:
    see :func:`state`)."""
    glob = state(engine, GLOBAL, now=now, states=states)
    if glob.halted or bot is None:
        return glob
    return state(engine, bot, now=now, states=states)


def all_states(engine: Engine) -> list[HaltState]:
    """Every scope's state, as stored (the trade loop reads this at every step: plain rows, no
    ORM session)."""
    with engine.connect() as conn:
        return [HaltState(r[0], bool(r[1]), *r[2:]) for r in conn.execute(_all_states_query())]


def _columns() -> tuple[Any, ...]:
    from jiritsu.db.models import Control

    c = Control
    return (c.scope, c.halted, c.reason, c.halted_at, c.halted_by, c.cooldown_until)


@cache
def _all_states_query() -> Select[Unpack[tuple[Any, ...]]]:
    import sqlalchemy as sa

    from jiritsu.db.models import Control

    return sa.select(*_columns()).order_by(Control.scope)


@cache
def _state_query() -> Select[Unpack[tuple[Any, ...]]]:
    import sqlalchemy as sa

    from jiritsu.db.models import Control

    return sa.select(*_columns()).where(Control.scope == sa.bindparam("scope"))
