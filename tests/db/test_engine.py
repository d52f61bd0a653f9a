"""Connection settings, bounded reconnects and the unit-of-work helper."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from jiritsu.db import migrate
from jiritsu.db.engine import (
    connect,
    make_engine,
    mask_url,
    retry_db,
    session_factory,
    session_scope,
)
from jiritsu.db.models import Control
from jiritsu.errors import DatabaseUnavailable, ExitCode, UsageError

DEAD_PG = "postgresql+psycopg://u:secretpw@127.0.0.1:1/x"


def test_sqlite_pragmas_on_every_connection(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'j.db'}")
    assert (tmp_path / "a" / "b").is_dir()
    with engine.connect() as conn:
        pragma = lambda name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
        assert pragma("journal_mode") == "wal"
        assert pragma("foreign_keys") == 1
        assert pragma("busy_timeout") == 5000
        assert pragma("synchronous") == 1  # NORMAL
    engine.dispose()


def test_postgresql_engine_settings(pg_url: str) -> None:
    engine = make_engine(pg_url.replace("postgresql+psycopg://", "postgresql://"))
    assert engine.url.drivername == "postgresql+psycopg"
    assert engine.pool._pre_ping  # type: ignore[attr-defined]
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    engine.dispose()


def test_unsupported_and_invalid_urls_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="unsupported"):
        make_engine("mysql://u:secretpw@h/db")
    with pytest.raises(UsageError) as err:
        make_engine("not a url")
    assert "secretpw" not in str(err.value)


def test_mask_url_hides_the_password() -> None:
    assert mask_url(DEAD_PG) == "postgresql+psycopg://u:***@127.0.0.1:1/x"
    assert "secretpw" not in mask_url("weird+scheme://u:secretpw@[broken/x")


def test_connect_gives_up_after_bounded_attempts_without_leaking_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sleeps: list[float] = []
    caplog.set_level(logging.WARNING)
    with pytest.raises(DatabaseUnavailable) as err:
        connect(DEAD_PG, attempts=5, base_delay=0.5, max_delay=2, sleep=sleeps.append)
    assert sleeps == [0.5, 1.0, 2.0, 2.0]
    message = str(err.value)
    assert "secretpw" not in message
    assert "127.0.0.1:1/x" in message
    assert "after 5 attempts" in message
    assert err.value.exit_code == ExitCode.DB_UNREACHABLE == 3
    assert "secretpw" not in caplog.text
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 4


def test_connect_returns_a_working_engine(db_url: str) -> None:
    sleeps: list[float] = []
    engine = connect(db_url, sleep=sleeps.append)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar_one() == 1
    engine.dispose()
    assert sleeps == []


def test_sqlite_directory_that_cannot_exist_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DatabaseUnavailable):
        connect(f"sqlite:///{blocker / 'j.db'}", attempts=1)


def _operational() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def test_retry_db_rides_out_a_short_outage() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise _operational()
        return 42

    assert retry_db(flaky, attempts=5, base_delay=0.25, sleep=sleeps.append) == 42
    assert sleeps == [0.25, 0.5]


def test_retry_db_gives_up_with_database_unavailable() -> None:
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise _operational()

    with pytest.raises(DatabaseUnavailable, match="after 3 attempts") as err:
        retry_db(down, attempts=3, sleep=lambda _s: None, what="snapshot write")
    assert len(calls) == 3
    assert "snapshot write" in str(err.value)
    assert isinstance(err.value.__cause__, OperationalError)


def test_retry_db_does_not_retry_integrity_errors() -> None:
    calls: list[int] = []

    def duplicate() -> None:
        calls.append(1)
        raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        retry_db(duplicate, attempts=5, sleep=lambda _s: None)
    assert len(calls) == 1


def test_pre_ping_survives_a_server_side_disconnect(pg_url: str, pg_server_url: str) -> None:
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one()
    admin = sa.create_engine(pg_server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    with engine.connect() as conn:  # the pooled connection is dead; pre-ping replaces it
        assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar_one() != pid
    engine.dispose()


@pytest.fixture
def migrated(db_url: str) -> Engine:
    migrate.upgrade(db_url)
    return make_engine(db_url)


def test_session_scope_commits_or_rolls_back(migrated: Engine) -> None:
    with session_scope(migrated) as session:
        session.add(Control(scope="global", halted=True, reason="test"))

    def fail_midway() -> None:
        with session_scope(migrated) as session:
            session.add(Control(scope="alpha", halted=True))
            session.flush()
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_midway()
    with session_factory(migrated)() as session:
        scopes = session.scalars(sa.select(Control.scope)).all()
    assert scopes == ["global"]
    migrated.dispose()


def test_open_database_migrates_to_head_and_refuses_an_unreachable_one(
    isolated_env: Path,
) -> None:
    from jiritsu.config import load_config
    from jiritsu.db import migrate
    from jiritsu.db.migrate import open_database
    from jiritsu.errors import DatabaseUnavailable
    from tests.conftest import REPO

    loaded = load_config(
        REPO / "config.toml", environ={"JIRITSU_GENERAL__DATA_DIR": str(isolated_env)}
    )
    with open_database(loaded) as engine:
        assert migrate.current(loaded.db_url) == migrate.head()
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT 1").scalar() == 1
    down = load_config(
        REPO / "config.toml",
        environ={
            "JIRITSU_DATABASE__DB_TYPE": "postgresql",
            "JIRITSU_DATABASE__DB_URL": "postgresql://u:pw-never-shown@127.0.0.1:1/x",
            "JIRITSU_DATABASE__RECONNECT_ATTEMPTS": "1",
            "JIRITSU_DATABASE__RECONNECT_BASE_DELAY_SECONDS": "0.01",
        },
    )
    with pytest.raises(DatabaseUnavailable) as info, open_database(down):
        pass
    assert "pw-never-shown" not in str(info.value)
