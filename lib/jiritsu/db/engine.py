"""Engines, sessions and bounded retries for the one database.

Every command calls :func:`connect` first: it retries a few times with exponential backoff and
then raises :class:`~jiritsu.errors.DatabaseUnavailable` (exit code 3), whose message names the
database with the password masked. Long-running loops wrap their writes in :func:`retry_db` so a
short database outage mid-run is ridden out and a long one ends the run the same way.

SQLite gets WAL (readers such as Datasette never block the writer), a busy timeout (concurrent
writers wait instead of failing), foreign keys ON (off by default in SQLite) and
``synchronous=NORMAL`` (safe with WAL) on every connection. PostgreSQL goes through psycopg 3
with a connect timeout and pre-ping, so a restarted server does not surface as a stale
connection error.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jiritsu.errors import DatabaseMissing, DatabaseUnavailable, UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("jiritsu.db")

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 5000
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@]*):[^@]*@")


def mask_url(url: str | URL) -> str:
    """The database URL with its password replaced by ``***`` (safe for logs and errors)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is still masked, just by regex
        return _USERINFO.sub(r"\g<scheme>\g<user>:***@", str(url))


def _parse(url: str | URL) -> URL:
    """Parse and normalise a URL: plain ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"invalid database URL: {mask_url(url)}") from None
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        if parsed.drivername != "postgresql+psycopg":  # psycopg 3 is the one installed driver
            parsed = parsed.set(drivername="postgresql+psycopg")
    elif backend != "sqlite":
        raise UsageError(
            f"unsupported database {mask_url(parsed)}: use sqlite:///path or postgresql://..."
        )
    return parsed


def _sqlite_file(parsed: URL) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory databases."""
    db = parsed.database
    if not db or db == ":memory:" or db.startswith("file:") or parsed.query.get("mode") == "memory":
        return None
    return Path(db)


def _make_parent_dir(parsed: URL) -> None:
    """SQLite creates the file but not its directory; a directory we cannot create is fatal."""
    path = _sqlite_file(parsed)
    if path is None:
        return
    try:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnavailable(
            f"database {mask_url(parsed)}: cannot create its directory: {exc}"
        ) from exc


def require_existing(url: str | URL) -> None:
    """Raise :class:`DatabaseMissing` when ``url`` is a SQLite file that does not exist.

    Opening a SQLite URL creates an empty file, so a read-only command pointed at the wrong
    data directory would otherwise "succeed" on a fresh, empty database and report nothing.
    """
    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return
    path = _sqlite_file(parsed)
    if path is not None and not path.expanduser().exists():
        raise DatabaseMissing(
            f"no database at {path.expanduser().absolute()}: create it with `jiritsu db upgrade` "
            "(or point general.data_dir / database.db_url at the existing one)"
        )


def make_engine(url: str | URL, *, connect_timeout: float = 5) -> Engine:
    """Create (but do not open) an engine with Jiritsu's connection settings for ``url``."""
    import sqlalchemy as sa

    from jiritsu.redact import register_secret

    parsed = _parse(url)
    if parsed.password:
        register_secret(parsed.password)
    if parsed.get_backend_name() == "sqlite":
        _make_parent_dir(parsed)
        engine = sa.create_engine(parsed, connect_args={"timeout": max(connect_timeout, 1)})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            try:
                for pragma in _SQLITE_PRAGMAS:
                    cursor.execute(pragma)
            finally:
                cursor.close()

        return engine
    return sa.create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={
            "connect_timeout": max(round(connect_timeout), 1),
            "application_name": "jiritsu",
        },
    )


def migration_engine(url: str | URL, *, connect_timeout: float = 5) -> Engine:
    """An engine for running migrations (used by ``migrations/env.py``).

    PostgreSQL: the normal engine. SQLite: foreign keys OFF (batch migrations copy, drop and
    rename tables; with foreign keys ON dropping a parent table would cascade-delete its
    children), ``legacy_alter_table=ON`` (so that rename works while views reference the table;
    a migration that renames a table for real must fix child foreign keys itself) and real
    transactions around DDL (pysqlite otherwise commits DDL statement by statement), so a
    failed migration leaves the database as it was.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    parsed = _parse(url)
    if parsed.get_backend_name() != "sqlite":
        return make_engine(parsed, connect_timeout=connect_timeout)
    _make_parent_dir(parsed)
    engine = sa.create_engine(
        parsed, connect_args={"timeout": max(connect_timeout, 1)}, poolclass=NullPool
    )

    @sa.event.listens_for(engine, "connect")
    def _setup(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, see below
        cursor = dbapi_connection.cursor()
        try:
            for pragma in _SQLITE_PRAGMAS:
                cursor.execute(pragma.replace("foreign_keys=ON", "foreign_keys=OFF"))
            # Batch mode renames "_alembic_tmp_x" to "x"; modern SQLite refuses that rename
            # while a view references the (momentarily missing) "x".
            cursor.execute("PRAGMA legacy_alter_table=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def is_disconnect(exc: BaseException) -> bool:
    """Errors worth retrying: the database is down, unreachable, locked or dropped us."""
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)


def error_summary(exc: BaseException, secret: str | None = None) -> str:
    """A one-line, secret-free description of a driver error (no SQL, no parameters)."""
    from jiritsu.redact import redact

    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    text = f"{type(orig).__name__}: {lines[0] if lines else 'no details'}"
    if secret:
        text = text.replace(secret, "***")
    return redact(text)


def _delay(attempt: int, base_delay: float, max_delay: float) -> float:
    return min(max_delay, base_delay * (2**attempt))


def connect(
    url: str | URL,
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 8,
    connect_timeout: float = 5,
    sleep: Callable[[float], None] = time.sleep,
    create: bool = True,
) -> Engine:
    """Return an engine whose database answered ``SELECT 1``, retrying with backoff.

    Raises :class:`DatabaseUnavailable` (exit code 3) after ``attempts`` failures, and
    :class:`DatabaseMissing` (also 3) at once when ``create`` is False and the SQLite file does
    not exist.
    """
    import sqlalchemy as sa

    if not create:
        require_existing(url)
    parsed = _parse(url)
    masked = mask_url(parsed)
    engine = make_engine(parsed, connect_timeout=connect_timeout)
    attempts = max(1, attempts)
    reason = "no attempt made"
    for attempt in range(attempts):
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return engine
        except Exception as exc:
            if not is_disconnect(exc):
                engine.dispose()
                raise
            reason = error_summary(exc, parsed.password)
            if attempt + 1 < attempts:
                wait = _delay(attempt, base_delay, max_delay)
                log.warning(
                    "database %s unreachable (attempt %d/%d, retrying in %.1fs): %s",
                    masked,
                    attempt + 1,
                    attempts,
                    wait,
                    reason,
                )
                sleep(wait)
    engine.dispose()
    raise DatabaseUnavailable(f"database {masked} unreachable after {attempts} attempts: {reason}")


def retry_db(
    fn: Callable[[], T],
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    max_delay: float = 8,
    sleep: Callable[[float], None] = time.sleep,
    what: str = "database operation",
) -> T:
    """Call ``fn`` and retry it on connection loss / lock errors with exponential backoff.

    ``fn`` must be a whole unit of work (open its own session or transaction) so that a retry
    repeats it from the start; constraint violations and other errors are raised at once.
    Raises :class:`DatabaseUnavailable` when the database stays unavailable.
    """
    attempts = max(1, attempts)
    reason = "no attempt made"
    last: BaseException | None = None
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_disconnect(exc):
                raise
            reason, last = error_summary(exc), exc
            if attempt + 1 < attempts:
                wait = _delay(attempt, base_delay, max_delay)
                log.warning(
                    "%s failed (attempt %d/%d, retrying in %.1fs): %s",
                    what,
                    attempt + 1,
                    attempts,
                    wait,
                    reason,
                )
                sleep(wait)
    raise DatabaseUnavailable(f"{what} failed after {attempts} attempts: {reason}") from last


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory; objects stay readable after commit (``expire_on_commit=False``)."""
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    from sqlalchemy.orm import Session

    session = Session(engine, expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def connect_configured(loaded: Any, *, create: bool = True) -> Engine:
    """:func:`connect` with the configuration's reconnect settings (a ``LoadedConfig``)."""
    db = loaded.settings.database
    return connect(
        loaded.db_url,
        attempts=db.reconnect_attempts,
        base_delay=db.reconnect_base_delay_seconds,
        create=create,
    )
