"""One ON CONFLICT insert for both databases; any other dialect is refused, not guessed."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from jiritsu.db.models import Heartbeat
from jiritsu.db.upsert import conflict_insert


@pytest.mark.parametrize(("name", "dialect"), [("sqlite", sqlite), ("postgresql", postgresql)])
def test_each_database_gets_its_own_on_conflict(name: str, dialect: Any) -> None:
    stmt = conflict_insert(name, Heartbeat).values(component="x")
    sql = str(stmt.on_conflict_do_nothing().compile(dialect=dialect.dialect()))
    assert "ON CONFLICT DO NOTHING" in sql


def test_another_dialect_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database dialect 'mysql'"):
        conflict_insert("mysql", Heartbeat)
