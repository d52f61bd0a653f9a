"""Fixtures for the Gemini client tests: the fake Gemini on loopback and a migrated database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from tests.fakes.gemini import FakeGemini

KEYS = ("gk-test-key-one-111", "gk-test-key-two-222", "gk-test-key-three-333")


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(keys=KEYS) as server:
        yield server


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database, once on SQLite and once on PostgreSQL."""
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    migrate.upgrade(sqlite_url)
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()
