"""Database backups and restores, for both backends, with retention.

- **SQLite**: SQLite's online backup API (``sqlite3.Connection.backup``) copies a consistent
  snapshot while the trade loop keeps writing (WAL: readers never block the writer) into
  ``jiritsu-YYYYmmddTHHMMSSZ.sqlite``, a self-contained file (rollback journal, checked with
  ``PRAGMA quick_check``). A restore copies it back through the same API.
- **PostgreSQL**: ``pg_dump -Fc`` into ``jiritsu-YYYYmmddTHHMMSSZ.dump``; a restore runs
  ``pg_restore --clean --if-exists`` in a single transaction. The password travels in
  ``PGPASSWORD``, never on a command line or in a log. pg_dump refuses a server newer than
  itself, so the newest pg_dump at least as new as the server is chosen among ``PATH``,
  ``/usr/lib/postgresql/*/bin`` (Debian/Ubuntu) and pgserver's bundled binaries.

Every file is written as ``<name>.partial`` and renamed when complete, so neither retention nor
a restore ever sees half a backup; backups are readable by their owner only (they hold the
whole trading history). Retention deletes backups older than ``backup.retention_days`` by the
time in their name, and always keeps the newest one. A restore refuses a file that is not a
Jiritsu backup and first takes a safety backup of what it replaces.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiritsu.clock import wall_now
from jiritsu.errors import JiritsuError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from jiritsu.config import LoadedConfig
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.backup")

__all__ = [
    "BackupFile",
    "BackupResult",
    "RestoreResult",
    "backup",
    "backup_kind",
    "inspect_backup",
    "list_backups",
    "pg_tool",
    "prune",
    "restore",
    "run_backup",
    "run_restore",
]

STAMP = "%Y%m%dT%H%M%SZ"
NAME_RE = re.compile(r"^jiritsu-(\d{8}T\d{6}Z)(?:-(\d+))?\.(sqlite|dump)$")
SUFFIX = {"sqlite": ".sqlite", "postgresql": ".dump"}
# Tables whose presence makes a file a Jiritsu database (the first is Alembic's).
MARKER_TABLES = ("alembic_version", "heartbeats", "system_events")
SQLITE_HEADER = b"SQLite format 3\x00"
PARTIAL_MAX_AGE = timedelta(days=1)
RESTORE_LOCK_TIMEOUT = "60s"  # a restore waits this long for locks, then fails (services up?)


@dataclass(frozen=True)
class BackupFile:
    """A backup in the backup directory, dated by its name."""

    path: Path
    created: datetime
    backend: str

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class BackupResult:
    path: Path
    backend: str
    size: int
    seconds: float
    revision: str | None
    deleted: list[Path] = field(default_factory=list)


@dataclass
class RestoreResult:
    source: Path
    backend: str
    revision: str | None
    safety_backup: Path | None
    seconds: float


# --------------------------------------------------------------------------- names, retention


def backup_kind(url: str | URL) -> str:
    """``"sqlite"`` or ``"postgresql"`` for a database URL."""
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    if backend not in SUFFIX:
        raise UsageError(f"cannot back up a {backend} database")
    return backend


def list_backups(directory: Path) -> list[BackupFile]:
    """Every complete backup in ``directory``, newest first (other files are ignored)."""
    found: list[tuple[datetime, int, BackupFile]] = []
    if not Path(directory).is_dir():
        return []
    for path in Path(directory).iterdir():
        match = NAME_RE.match(path.name)
        if not match or not path.is_file():
            continue
        created = datetime.strptime(match.group(1), STAMP).replace(tzinfo=timezone.utc)
        backend = "sqlite" if match.group(3) == "sqlite" else "postgresql"
        found.append((created, int(match.group(2) or 1), BackupFile(path, created, backend)))
    return [item[2] for item in sorted(found, key=lambda t: (t[0], t[1]), reverse=True)]


def prune(directory: Path, retention_days: int, now: datetime | None = None) -> list[Path]:
    """Delete backups older than ``retention_days`` (never the newest) and stale partials."""
    now = now or wall_now()  # file ages are wall time
    cutoff = now - timedelta(days=retention_days)
    deleted = []
    for old in list_backups(directory)[1:]:
        if old.created < cutoff:
            old.path.unlink(missing_ok=True)
            deleted.append(old.path)
            log.info("retention: deleted %s (older than %d days)", old.path.name, retention_days)
    for partial in Path(directory).glob("jiritsu-*.partial"):
        age = now.timestamp() - partial.stat().st_mtime
        if age > PARTIAL_MAX_AGE.total_seconds():
            partial.unlink(missing_ok=True)
            log.info("retention: deleted the leftover %s", partial.name)
    return deleted


def _target(directory: Path, backend: str, now: datetime) -> Path:
    base = f"jiritsu-{now.astimezone(timezone.utc).strftime(STAMP)}"
    suffix = SUFFIX[backend]
    path = directory / f"{base}{suffix}"
    n = 2
    while path.exists() or path.with_name(path.name + ".partial").exists():
        path = directory / f"{base}-{n}{suffix}"
        n += 1
    return path


def _private_file(path: Path) -> None:
    """Create an empty file only its owner can read (the backup is written into it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(partial: Path, final: Path) -> None:
    """Make the finished backup visible under its final name, durably."""
    _fsync(partial)
    os.replace(partial, final)
    try:
        _fsync(final.parent)
    except OSError:  # pragma: no cover - some file systems cannot fsync a directory
        pass


# --------------------------------------------------------------------------- SQLite


def _sqlite_file(url: str | URL) -> Path:
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise UsageError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database).expanduser()


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def _sqlite_backup(db: Path, partial: Path) -> str | None:
    if not db.is_file():
        raise UsageError(f"no SQLite database at {db} (nothing to back up yet)")
    src = sqlite3.connect(str(db), timeout=30)
    try:
        dst = sqlite3.connect(str(partial))
        try:
            src.backup(dst)  # all pages in one step: one consistent snapshot
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal
            result = dst.execute("PRAGMA quick_check").fetchone()[0]
            if result != "ok":
                raise JiritsuError(f"the backup of {db} failed its integrity check: {result}")
            try:
                return _sqlite_revision(dst)
            except sqlite3.Error:
                return None
        finally:
            dst.close()
    finally:
        src.close()


def _inspect_sqlite(path: Path) -> str | None:
    with path.open("rb") as fh:
        if fh.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
            raise UsageError(f"{path} is not a Jiritsu backup (not an SQLite database)")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        missing = [t for t in MARKER_TABLES if t not in tables]
        if missing:
            raise UsageError(f"{path} is not a Jiritsu backup (no {', '.join(missing)} table)")
        result = conn.execute("PRAGMA quick_check").fetchone()[0]
        if result != "ok":
            raise UsageError(f"{path} is damaged: {result}")
        return _sqlite_revision(conn)
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path} is not a readable SQLite database: {exc}") from None
    finally:
        conn.close()


def _sqlite_restore(source: Path, db: Path) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(str(db), timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


# --------------------------------------------------------------------------- PostgreSQL


def _quote_conninfo(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def pg_connection(url: str | URL) -> tuple[str, dict[str, str]]:
    """(libpq connection string WITHOUT the password, extra environment WITH it).

    The string is safe for a command line and a log; the password goes to ``PGPASSWORD``.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    params: dict[str, str] = {}
    for key, value in parsed.query.items():
        params[key] = ",".join(value) if isinstance(value, tuple) else str(value)
    if parsed.host:
        params["host"] = parsed.host
    if parsed.port:
        params["port"] = str(parsed.port)
    if parsed.username:
        params["user"] = parsed.username
    if parsed.database:
        params["dbname"] = parsed.database
    params.pop("password", None)
    conninfo = " ".join(f"{key}={_quote_conninfo(value)}" for key, value in params.items())
    env = {"PGAPPNAME": "jiritsu-backup"}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return conninfo, env


def _server_major(url: str | URL) -> int:
    import sqlalchemy as sa

    from jiritsu.db.engine import connect

    engine = connect(url, attempts=2, base_delay=0.5)
    try:
        with engine.connect() as conn:
            number = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one())
    finally:
        engine.dispose()
    return number // 10000


def _candidates(name: str, bindir: Path | None) -> Iterator[Path]:
    if bindir is not None:
        yield Path(bindir) / name
        return
    on_path = shutil.which(name)
    if on_path:
        yield Path(on_path)
    yield from sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin:
        yield Path(spec.origin).parent / "pginstall" / "bin" / name


def _tool_major(path: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except OSError:
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def pg_tool(name: str, *, min_major: int, bindir: Path | None = None) -> Path:
    """The newest ``pg_dump``/``pg_restore`` whose major version is at least ``min_major``.

    UsageError (naming what was found) when there is none: install the matching
    ``postgresql-client-N`` package or point ``bindir`` at one.
    """
    seen: dict[Path, int | None] = {}
    for path in _candidates(name, bindir):
        if path in seen or not (path.is_file() and os.access(path, os.X_OK)):
            continue
        seen[path] = _tool_major(path)
    usable = [(major, path) for path, major in seen.items() if major and major >= min_major]
    if usable:
        return max(usable, key=lambda item: item[0])[1]
    found = ", ".join(f"{p} ({m or '?'})" for p, m in seen.items()) or "none"
    raise UsageError(
        f"no {name} for PostgreSQL {min_major} or newer (found: {found}); install "
        f"postgresql-client-{min_major} or pass the directory of a newer one with --pg-bin"
    )


def _run_pg(cmd: list[str], extra_env: Mapping[str, str], what: str) -> str:
    from jiritsu.redact import redact

    env = {**os.environ, **extra_env}
    log.debug("running %s", " ".join(cmd))  # no password in cmd: it is in the environment
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout or "no output").split())
        if extra_env.get("PGPASSWORD"):
            detail = detail.replace(extra_env["PGPASSWORD"], "***")
        raise JiritsuError(f"{what} failed (exit {done.returncode}): {redact(detail)[:800]}")
    return done.stdout


def _pg_backup(url: str | URL, partial: Path, bindir: Path | None) -> None:
    pg_dump = pg_tool("pg_dump", min_major=_server_major(url), bindir=bindir)
    conninfo, env = pg_connection(url)
    _run_pg(
        [
            str(pg_dump),
            "--format=custom",
            "--no-password",
            f"--file={partial}",
            f"--dbname={conninfo}",
        ],
        env,
        "pg_dump",
    )


def _pg_revision(pg_restore: Path, path: Path) -> str | None:
    out = _run_pg(
        [str(pg_restore), "--data-only", "--table=alembic_version", "--file=-", str(path)],
        {},
        "reading the revision of the backup",
    )
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("COPY ") and "alembic_version" in line:
            value = lines[i + 1].strip() if i + 1 < len(lines) else ""
            return None if value in ("", "\\.") else value
    return None


def _inspect_pg(path: Path, bindir: Path | None) -> str | None:
    with path.open("rb") as fh:
        if fh.read(5) != b"PGDMP":
            raise UsageError(f"{path} is not a Jiritsu backup (not a pg_dump custom archive)")
    pg_restore = pg_tool("pg_restore", min_major=0, bindir=bindir)
    toc = _run_pg([str(pg_restore), "--list", str(path)], {}, "reading the backup")
    missing = [t for t in MARKER_TABLES if not re.search(rf"\bTABLE \S+ {t}\b", toc)]
    if missing:
        raise UsageError(f"{path} is not a Jiritsu backup (no {', '.join(missing)} table)")
    return _pg_revision(pg_restore, path)


def _pg_restore(url: str | URL, source: Path, bindir: Path | None) -> None:
    pg_restore = pg_tool("pg_restore", min_major=_server_major(url), bindir=bindir)
    conninfo, env = pg_connection(url)
    env["PGOPTIONS"] = f"-c lock_timeout={RESTORE_LOCK_TIMEOUT}"
    _run_pg(
        [
            str(pg_restore),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            "--no-password",
            f"--dbname={conninfo}",
            str(source),
        ],
        env,
        "pg_restore",
    )


# --------------------------------------------------------------------------- the operations


def backup(
    url: str | URL,
    directory: Path,
    *,
    retention_days: int | None = None,
    now: datetime | None = None,
    pg_bindir: Path | None = None,
) -> BackupResult:
    """Back up the database at ``url`` into ``directory``; then apply retention (if given)."""
    kind = backup_kind(url)
    now = now or wall_now()  # the file's name: when it was written
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    final = _target(directory, kind, now)
    partial = final.with_name(final.name + ".partial")
    started = time.monotonic()
    _private_file(partial)
    try:
        if kind == "sqlite":
            revision = _sqlite_backup(_sqlite_file(url), partial)
        else:
            _pg_backup(url, partial, pg_bindir)
            revision = None
        _publish(partial, final)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    result = BackupResult(
        path=final,
        backend=kind,
        size=final.stat().st_size,
        seconds=time.monotonic() - started,
        revision=revision,
    )
    if kind == "postgresql":
        result.revision = _pg_revision(pg_tool("pg_restore", min_major=0, bindir=pg_bindir), final)
    if retention_days is not None:
        result.deleted = prune(directory, retention_days, now)
    return result


def inspect_backup(path: Path, backend: str, *, pg_bindir: Path | None = None) -> str | None:
    """The schema revision of a Jiritsu backup for ``backend``; UsageError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such backup file: {path}")
    if backend == "sqlite":
        return _inspect_sqlite(path)
    if backend == "postgresql":
        return _inspect_pg(path, pg_bindir)
    raise UsageError(f"cannot restore into a {backend} database")


def restore(
    url: str | URL,
    source: Path,
    *,
    safety_dir: Path | None = None,
    pg_bindir: Path | None = None,
    now: datetime | None = None,
) -> RestoreResult:
    """Replace the contents of the database at ``url`` with the backup ``source``.

    Refuses (UsageError) a file that is not a Jiritsu backup for this backend. With
    ``safety_dir``, the current contents are backed up there first (when there are any).
    """
    kind = backup_kind(url)
    source = Path(source)
    revision = inspect_backup(source, kind, pg_bindir=pg_bindir)
    started = time.monotonic()
    safety: Path | None = None
    if safety_dir is not None:
        exists = kind == "postgresql" or _sqlite_file(url).is_file()
        if exists:
            safety = backup(url, safety_dir, now=now, pg_bindir=pg_bindir).path
    if kind == "sqlite":
        _sqlite_restore(source, _sqlite_file(url))
    else:
        _pg_restore(url, source, pg_bindir)
    return RestoreResult(source, kind, revision, safety, time.monotonic() - started)


# --------------------------------------------------------------------------- with the config


def _event(
    loaded: LoadedConfig,
    level: str,
    message: str,
    details: Mapping[str, Any],
    notifier: Notifier | None = None,
    *,
    now: datetime,
) -> None:
    """Record a DATABASE event in the configured database (never raises)."""
    from jiritsu.db.engine import make_engine
    from jiritsu.events import EventType, record_event

    engine = None
    try:
        # Connecting to a SQLite file that does not exist would create an empty database.
        if backup_kind(loaded.db_url) != "sqlite" or _sqlite_file(loaded.db_url).is_file():
            engine = make_engine(loaded.db_url)
    except Exception as exc:  # noqa: BLE001 - the event still reaches the log and the notifier
        log.debug("no engine for the event: %s", exc)
    try:
        record_event(
            engine, level, EventType.DATABASE, message, details, notifier=notifier, now=now
        )
    finally:
        if engine is not None:
            engine.dispose()


def run_backup(
    loaded: LoadedConfig,
    *,
    directory: Path | None = None,
    notifier: Notifier | None = None,
    pg_bindir: Path | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """The configured database's backup with the configured retention, recorded as an event.

    A failure is recorded as an ERROR event, alerted through ``notifier`` and re-raised: a
    daily backup that fails silently is found out on the day it is needed.
    """
    settings = loaded.settings
    target = Path(directory) if directory else settings.backup_dir
    now = now or wall_now()
    try:
        result = backup(
            loaded.db_url,
            target,
            retention_days=settings.backup.retention_days,
            now=now,
            pg_bindir=pg_bindir,
        )
    except Exception as exc:
        _event(loaded, "ERROR", f"backup failed: {exc}", {"dir": str(target)}, notifier, now=now)
        raise
    _event(
        loaded,
        "INFO",
        f"backup written: {result.path.name} ({result.size} bytes)",
        {
            "path": str(result.path),
            "size": result.size,
            "revision": result.revision,
            "seconds": round(result.seconds, 3),
            "deleted": [p.name for p in result.deleted],
        },
        now=now,
    )
    return result


def run_restore(
    loaded: LoadedConfig,
    source: Path,
    *,
    pg_bindir: Path | None = None,
    now: datetime | None = None,
) -> RestoreResult:
    """Restore the configured database from ``source`` (safety backup into the backup dir)."""
    now = now or wall_now()
    result = restore(
        loaded.db_url,
        source,
        safety_dir=loaded.settings.backup_dir,
        pg_bindir=pg_bindir,
        now=now,
    )
    _event(
        loaded,
        "WARNING",
        f"database restored from {Path(source).name}",
        {
            "source": str(source),
            "revision": result.revision,
            "safety_backup": str(result.safety_backup) if result.safety_backup else None,
        },
        now=now,
    )
    return result
