"""Backups: round trips on SQLite and PostgreSQL, retention, refusing foreign files, the
password's path, the version of pg_dump, and the db backup/restore commands."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from jiritsu import heartbeat
from jiritsu.config import LoadedConfig
from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.db.models import Candle, SystemEvent
from jiritsu.errors import UsageError
from jiritsu.events import record_event
from jiritsu.notify import build_notifier
from jiritsu.ops import backup as ops_backup
from jiritsu.ops.backup import NAME_RE, backup, list_backups, pg_tool, prune, restore, run_backup
from tests.conftest import REPO
from tests.fakes.discord import FakeDiscord
from tests.processes import jiritsu_env, run_jiritsu

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _write_rows(engine: Engine) -> None:
    for text in ("one", "two", "three"):
        record_event(engine, "INFO", "STARTUP", text, now=NOW)
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, {"tick": 1})
    with engine.begin() as conn:
        for ts in (0, 60_000):
            conn.execute(
                sa.insert(Candle).values(
                    symbol="BTCUSDT",
                    interval="1",
                    ts=ts,
                    open=1.5,
                    high=2.0,
                    low=1.0,
                    close=1.75,
                    volume=10.0,
                )
            )


def _change_rows(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(SystemEvent).where(SystemEvent.message == "two"))
        conn.execute(sa.delete(Candle).where(Candle.ts == 0))
    record_event(engine, "INFO", "STARTUP", "four", now=NOW)
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, {"tick": 2})


def _rows(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "events": sorted(conn.execute(sa.select(SystemEvent.message)).scalars()),
            "candles": sorted(conn.execute(sa.select(Candle.ts, Candle.close)).all()),
            "beat": heartbeat.last_beat(engine, heartbeat.TRADE_LOOP),
        }


def test_backup_and_restore_round_trip(engine: Engine, db_url: str, tmp_path: Path) -> None:
    _write_rows(engine)
    backups = tmp_path / "backups"
    result = backup(db_url, backups, retention_days=14)
    assert NAME_RE.match(result.path.name)
    assert result.path.suffix == (".sqlite" if db_url.startswith("sqlite") else ".dump")
    assert stat.S_IMODE(result.path.stat().st_mode) == 0o600, "backups hold the whole history"
    assert result.revision == migrate.head()
    assert result.size == result.path.stat().st_size > 0
    assert not list(backups.glob("*.partial"))
    saved = _rows(engine)

    _change_rows(engine)
    changed = _rows(engine)
    assert changed != saved
    engine.dispose()  # the restore must not wait for our idle connections

    restored = restore(db_url, result.path, safety_dir=backups)
    assert _rows(engine) == saved
    assert restored.revision == migrate.head()
    assert restored.safety_backup is not None
    assert restored.safety_backup != result.path
    assert [b.path for b in list_backups(backups)] == [restored.safety_backup, result.path]

    engine.dispose()
    restore(db_url, restored.safety_backup)  # the safety backup holds what was replaced
    assert _rows(engine) == changed


def test_sqlite_backup_is_one_self_contained_file(sqlite_url: str, tmp_path: Path) -> None:
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    _write_rows(engine)
    engine.dispose()
    result = backup(sqlite_url, tmp_path)
    assert not Path(f"{result.path}-wal").exists()
    conn = sqlite3.connect(result.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT count(*) FROM system_events").fetchone()[0] == 3
    finally:
        conn.close()


def test_restore_refuses_what_is_not_a_jiritsu_backup(
    engine: Engine, db_url: str, tmp_path: Path, pg_server_url: str
) -> None:
    _write_rows(engine)
    before = _rows(engine)
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(4096))
    foreign = tmp_path / "foreign.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (x TEXT)")
    conn.commit()
    conn.close()
    candidates = [junk, foreign, tmp_path / "missing.sqlite"]
    if db_url.startswith("postgresql"):
        # A genuine pg_dump archive, of a database that is not Jiritsu's.
        candidates.append(backup(pg_server_url, tmp_path / "other").path)
    for candidate in candidates:
        with pytest.raises(UsageError, match=r"not a Jiritsu backup|not a readable|no such backup"):
            restore(db_url, candidate, safety_dir=tmp_path / "safety")
    assert _rows(engine) == before
    assert not (tmp_path / "safety").exists(), "nothing happens before the file is accepted"


def test_a_missing_sqlite_database_is_not_backed_up_as_an_empty_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="nothing to back up"):
        backup(f"sqlite:///{tmp_path / 'nope.db'}", tmp_path / "backups")
    assert not (tmp_path / "nope.db").exists()
    assert list_backups(tmp_path / "backups") == []


def test_the_password_travels_in_the_environment_only(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    password = "pw-SECRETbk14"  # a test value: the test server trusts anyone
    url = make_url(pg_url).set(password=password).render_as_string(hide_password=False)
    migrate.upgrade(url)
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = subprocess.run

    def spy(cmd: list[str], *args: Any, **kwargs: Any) -> Any:
        calls.append((list(cmd), dict(kwargs.get("env") or {})))
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(ops_backup.subprocess, "run", spy)
    caplog.set_level("DEBUG")
    result = backup(url, tmp_path)
    restore(url, result.path)
    tools = [(cmd, env) for cmd, env in calls if "--version" not in cmd]
    assert {Path(cmd[0]).name for cmd, _ in tools} == {"pg_dump", "pg_restore"}
    for cmd, env in tools:
        assert password not in " ".join(cmd)
        if any(arg.startswith("--dbname=") for arg in cmd):
            assert env["PGPASSWORD"] == password
    assert password not in caplog.text


def test_pg_tool_picks_the_newest_that_fits_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tools = []
    for major in (14, 16, 15):
        tool = tmp_path / str(major) / "pg_dump"
        tool.parent.mkdir()
        tool.write_text(f"#!/bin/sh\necho 'pg_dump (PostgreSQL) {major}.3'\n")
        tool.chmod(0o755)
        tools.append(tool)
    monkeypatch.setattr(ops_backup, "_candidates", lambda name, bindir: iter(tools))
    assert pg_tool("pg_dump", min_major=15) == tmp_path / "16" / "pg_dump"
    with pytest.raises(UsageError) as err:
        pg_tool("pg_dump", min_major=17)
    assert "(14)" in str(err.value)
    assert "(16)" in str(err.value)
    assert "postgresql-client-17" in str(err.value)


def test_retention_deletes_old_backups_but_always_keeps_the_newest(tmp_path: Path) -> None:
    names = [
        "jiritsu-20260101T000000Z.sqlite",  # 59 days old
        "jiritsu-20260201T000000Z.dump",  # 28 days old
        "jiritsu-20260220T000000Z.sqlite",  # 9 days old: kept
        "jiritsu-20260220T000000Z-2.sqlite",
        "jiritsu-latest.sqlite",  # not ours: never touched
        "notes.txt",
    ]
    for name in names:
        (tmp_path / name).write_text("x")
    stale = tmp_path / "jiritsu-20260101T000000Z.sqlite.partial"
    fresh = tmp_path / "jiritsu-20260301T115900Z.sqlite.partial"
    for partial in (stale, fresh):
        partial.write_text("x")
    old = (NOW - timedelta(days=2)).timestamp()
    os.utime(stale, (old, old))
    os.utime(fresh, (NOW.timestamp(), NOW.timestamp()))

    deleted = prune(tmp_path, 14, now=NOW)
    assert sorted(p.name for p in deleted) == sorted(names[:2])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*names[2:], fresh.name])
    assert [b.path.name for b in list_backups(tmp_path)] == [names[3], names[2]]

    prune(tmp_path, 1, now=NOW + timedelta(days=365))
    assert [b.path.name for b in list_backups(tmp_path)] == [names[3]], "the newest survives"


def test_run_backup_applies_retention_and_records_an_event(
    make_loaded: Callable[..., LoadedConfig], db_url: str, engine: Engine
) -> None:
    loaded = make_loaded(db_url, JIRITSU_BACKUP__RETENTION_DAYS="1")
    old = loaded.settings.backup_dir / "jiritsu-20200101T000000Z.sqlite"
    old.parent.mkdir(parents=True)
    old.write_text("x")
    result = run_backup(loaded)
    assert result.deleted == [old]
    assert result.path.parent == loaded.settings.backup_dir
    with engine.connect() as conn:
        message = conn.execute(
            sa.select(SystemEvent.message).where(SystemEvent.event_type == "DATABASE")
        ).scalar_one()
    assert message.startswith(f"backup written: {result.path.name}")


def test_a_failed_backup_is_alerted(
    make_loaded: Callable[..., LoadedConfig], sqlite_url: str, tmp_path: Path
) -> None:
    migrate.upgrade(sqlite_url)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    loaded = make_loaded(sqlite_url, JIRITSU_BACKUP__DIR=str(blocker))
    with FakeDiscord() as fake:
        notifier = build_notifier(fake.url_for("5", "tok-bk"), min_level="WARNING")
        with pytest.raises(FileExistsError):
            run_backup(loaded, notifier=notifier)
        bodies = [json.dumps(m) for m in fake.messages]
    assert len(bodies) == 1
    assert "backup failed" in bodies[0]


# --------------------------------------------------------------------------- the commands


@pytest.fixture
def cli_env(isolated_env: Path) -> dict[str, str]:
    return jiritsu_env(isolated_env)


def test_db_backup_and_restore_commands(cli_env: dict[str, str], tmp_path: Path) -> None:
    data = Path(cli_env["JIRITSU_GENERAL__DATA_DIR"])
    missing = run_jiritsu(["db", "backup"], cli_env)
    assert missing.returncode == 2, "no database yet: nothing to back up"
    assert not (data / "jiritsu.db").exists()

    assert run_jiritsu(["db", "upgrade"], cli_env).returncode == 0
    engine = make_engine(f"sqlite:///{data / 'jiritsu.db'}")
    _write_rows(engine)
    saved = _rows(engine)

    made = run_jiritsu(["db", "backup"], cli_env)
    assert made.returncode == 0, made.stdout + made.stderr
    [file] = list_backups(data / "backups")
    assert f"backup written: {file.path}" in made.stdout
    elsewhere = run_jiritsu(["db", "backup", "--dir", str(tmp_path / "elsewhere")], cli_env)
    assert elsewhere.returncode == 0
    assert len(list_backups(tmp_path / "elsewhere")) == 1

    _change_rows(engine)
    changed = _rows(engine)
    engine.dispose()
    declined = run_jiritsu(["db", "restore", str(file.path)], cli_env, stdin="n\n")
    assert declined.returncode == 1
    assert _rows(engine) == changed

    done = run_jiritsu(["db", "restore", str(file.path), "--yes"], cli_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the previous contents are in" in done.stdout
    after = _rows(engine)
    assert after["candles"] == saved["candles"]
    assert after["beat"] == saved["beat"]
    # The restore leaves its own event in the restored database.
    assert after["events"] == sorted([*saved["events"], f"database restored from {file.path.name}"])

    refused = run_jiritsu(["db", "restore", str(REPO / "config.toml"), "--yes"], cli_env)
    assert refused.returncode == 2
    assert "not a Jiritsu backup" in refused.stderr
    engine.dispose()
