"""Shared fixtures: every test gets its own data dir, and database tests run on SQLite AND
PostgreSQL (JIRITSU_TEST_PG_URL, else a private server started with pgserver)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from jiritsu import redact

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point all state at a temp dir and drop any JIRITSU_* settings of the machine."""
    for key in list(os.environ):
        if key.startswith("JIRITSU_") and key != "JIRITSU_TEST_PG_URL":
            monkeypatch.delenv(key, raising=False)
    data = tmp_path / "data"
    monkeypatch.setenv("JIRITSU_GENERAL__DATA_DIR", str(data))
    monkeypatch.chdir(tmp_path)
    redact.clear_secrets()
    return data


def _pg_url_from_env() -> str | None:
    url = os.environ.get("JIRITSU_TEST_PG_URL")
    if url and url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server for the whole session (never skipped)."""
    url = _pg_url_from_env()
    if url:
        yield url
        return
    import shutil
    import tempfile

    import pgserver

    # Not under pytest's basetemp: pytest prunes old basetemps, and a concurrent session would
    # delete the data directory of a server that is still running.
    root = Path(tempfile.mkdtemp(prefix="jiritsu-test-pg-"))
    server = pgserver.get_server(root, cleanup_mode="stop")
    uri = server.get_uri()
    try:
        yield "postgresql+psycopg://" + uri[len("postgresql://") :]
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    import sqlalchemy as sa

    name = "t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base, sep, query = pg_server_url.partition("?")
    head, _, _ = base.rpartition("/")
    yield f"{head}/{name}{sep}{query}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'jiritsu.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated database, once per backend."""
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine

    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated SQLite database (for tests that need only one backend)."""
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine

    migrate.upgrade(sqlite_url)
    eng = make_engine(sqlite_url)
    yield eng
    eng.dispose()
