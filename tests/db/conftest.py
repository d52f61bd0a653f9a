"""Fixtures for database tests: a migrated database (SQLite and PostgreSQL) and its engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated database, once per backend."""
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()
