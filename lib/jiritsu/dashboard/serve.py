"""Run Datasette over the SQLite database, read-only, behind the login and the IP allowlist.

Datasette is built in code rather than through ``datasette serve`` so that:

* the database is a :class:`ReadOnlyDatabase`: every connection, including the one Datasette
  would use for writes, opens the file with ``mode=ro`` and ``PRAGMA query_only``, so no
  plugin, canned query or bug can change it;
* our plugins (:mod:`jiritsu.dashboard.allowlist`, :mod:`jiritsu.dashboard.plugin`) are
  registered without an entry point or a plugins directory, and the metadata never touches the
  disk (the password hashes are ``$env`` references, see :mod:`jiritsu.dashboard.config`);
* the control buttons and the live log get the configuration (:func:`plugin.attach`): the
  buttons write through the library's use-cases to the configured database, never through
  the read-only file;
* uvicorn runs with ``proxy_headers=False``: the allowlist sees the real peer address.

PostgreSQL deployments serve the mirror file (``jiritsu dashboard mirror``); the mirror is
swapped in with ``os.replace``, so connections notice a new file and reopen it.
"""

from __future__ import annotations

import functools
import math
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiritsu.errors import UsageError

if TYPE_CHECKING:
    from datasette.app import Datasette

    from jiritsu.config import LoadedConfig

# What every dashboard page reads; a database without it was never migrated to our head.
REQUIRED_VIEWS = ("performance", "dashboard_summary")
HASH_ALGORITHM = "pbkdf2_sha256"
_ANY_ADDRESS = ("0.0.0.0", "::")  # noqa: S104 - recognised, not bound to


@dataclass
class ServePlan:
    """Everything needed to start the server, worked out (and checked) before it starts."""

    db_path: Path
    host: str
    port: int
    metadata: dict[str, Any] = field(repr=False)
    settings: dict[str, Any] = field(repr=False)
    mirror: bool = False
    loaded: LoadedConfig | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/-/dashboards"

    @property
    def tunnel_hint(self) -> str:
        """The SSH tunnel that brings the dashboard to the operator's machine."""
        wildcard = self.host in _ANY_ADDRESS or self.host == "localhost"
        target = "127.0.0.1" if wildcard else self.host
        if ":" in target:
            target = f"[{target}]"
        return f"ssh -L {self.port}:{target}:{self.port} user@server"


def sqlite_path(db_url: str) -> Path | None:
    """The file of a SQLite URL, or None for PostgreSQL."""
    from sqlalchemy.engine import make_url

    url = make_url(db_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise UsageError("the dashboard needs a SQLite file, not an in-memory database")
    return Path(url.database).expanduser()


def is_password_hash(value: str) -> bool:
    """datasette-auth-passwords' format: ``pbkdf2_sha256$<iterations>$<salt>$<base64>``."""
    parts = value.strip().split("$")
    return len(parts) == 4 and parts[0] == HASH_ALGORITHM and parts[1].isdigit() and all(parts)


def hash_password(password: str) -> str:
    """A hash for ``dashboard.users[].password_hash_env`` (datasette-auth-passwords' format)."""
    from datasette_auth_passwords.utils import hash_password as _hash

    if not password:
        raise UsageError("the password must not be empty")
    return str(_hash(password))


def export_password_hashes(loaded: LoadedConfig) -> None:
    """Put every user's hash into this process's environment, where Datasette's ``$env`` reads.

    The hash may come from ``.env`` rather than the environment; it is never written to a file
    or printed. Missing or malformed hashes stop the start with a usage error.
    """
    problems: list[tuple[str, str]] = []
    for i, user in enumerate(loaded.settings.dashboard.users):
        key = f"dashboard.users[{i}].password_hash_env"
        value = loaded.secrets.dashboard_password_hash(user.username)
        if value is None:
            problems.append(
                (
                    key,
                    f"{user.password_hash_env} is not set: create a hash with "
                    "`jiritsu dashboard hash-password` and put it there",
                )
            )
        elif not is_password_hash(value):
            problems.append(
                (key, f"{user.password_hash_env} does not hold a {HASH_ALGORITHM} hash")
            )
        else:
            os.environ[user.password_hash_env] = value
    if problems:
        from jiritsu.errors import ConfigError

        raise ConfigError(problems)


def check_database(path: Path) -> None:
    """The file exists, is SQLite and carries the dashboard's views (opened read-only)."""
    if not path.is_file():
        raise UsageError(f"database file {path} does not exist")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            names = {
                row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'view'")
            }
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise UsageError(f"{path} is not a readable SQLite database: {exc}") from None
    missing = [name for name in REQUIRED_VIEWS if name not in names]
    if missing:
        raise UsageError(
            f"{path} lacks the dashboard views ({', '.join(missing)}): run `jiritsu db upgrade`"
        )


def prepare(loaded: LoadedConfig, host: str | None = None, port: int | None = None) -> ServePlan:
    """Work out what to serve and check it; raises UsageError/ConfigError for the operator."""
    from jiritsu.dashboard.config import DATASETTE_SETTINGS, build_metadata

    settings = loaded.settings
    path = sqlite_path(loaded.db_url)
    mirror = path is None
    if path is None:
        path = settings.dashboard_mirror_path
        if not path.is_file():
            raise UsageError(
                f"the database is PostgreSQL and the mirror {path} does not exist yet: "
                "run `jiritsu dashboard mirror` first (and on a timer)"
            )
    check_database(path)
    export_password_hashes(loaded)
    return ServePlan(
        db_path=path,
        host=host or settings.dashboard.host,
        port=port or settings.dashboard.port,
        metadata=build_metadata(settings, config_path=loaded.path),
        settings=dict(DATASETTE_SETTINGS),
        mirror=mirror,
        loaded=loaded,
    )


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _sqrt(value: float | None) -> float | None:
    if value is None or value < 0:
        return None
    return math.sqrt(value)


@functools.cache
def _database_class() -> type:
    from datasette.database import Database

    class ReadOnlyDatabase(Database):
        """A Datasette database that can only ever read its file.

        Every connection (``write=True`` too) is ``mode=ro`` + ``query_only``. Connections are
        per thread and reopened when the path points to a new file (the mirror's atomic swap).
        """

        def __init__(self, ds: Any, path: str) -> None:
            super().__init__(ds, path=path, is_mutable=True)
            self._local = threading.local()

        def connect(self, write: bool = False) -> sqlite3.Connection:
            uri = f"{Path(self.path).resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
            try:
                conn.execute("SELECT sqrt(4)")
            except sqlite3.OperationalError:  # SQLite built without math functions
                conn.create_function("sqrt", 1, _sqrt, deterministic=True)
            self._all_file_connections.append(conn)
            return conn

        def _fresh_connection(self) -> sqlite3.Connection:
            file_id = _file_id(self.path)
            conn = getattr(self._local, "conn", None)
            if conn is not None and getattr(self._local, "file_id", None) != file_id:
                conn.close()
                if conn in self._all_file_connections:
                    self._all_file_connections.remove(conn)
                conn = None
            if conn is None:
                conn = self.connect()
                self.ds._prepare_connection(conn, self.name)
                self._local.conn, self._local.file_id = conn, file_id
            return conn

        async def execute_fn(self, fn: Any) -> Any:
            import asyncio

            def in_thread() -> Any:
                return fn(self._fresh_connection())

            if self.ds.executor is None:
                return in_thread()
            return await asyncio.get_running_loop().run_in_executor(self.ds.executor, in_thread)

    return ReadOnlyDatabase


def register_plugin() -> None:
    """Register our plugin modules with Datasette's plugin manager (once)."""
    from datasette.plugins import pm

    from jiritsu.dashboard import allowlist, plugin

    if not pm.is_registered(allowlist):
        pm.register(allowlist, name="jiritsu_allowlist")
    if not pm.is_registered(plugin):
        pm.register(plugin, name="jiritsu_pages")


def _quiet_tracebacks() -> None:
    """Stop Datasette printing errors with every local variable (rich's ``show_locals``).

    Those locals include the request's headers, session cookie and CSRF token among them, and
    the server's output goes to the journal. Plain tracebacks are still printed.
    """
    import datasette.handle_exception as handler

    handler.rich = None


def build_datasette(
    db_path: Path,
    metadata: dict[str, Any],
    settings: dict[str, Any] | None = None,
    loaded: LoadedConfig | None = None,
) -> Datasette:
    """A Datasette instance serving ``db_path`` read-only as database ``jiritsu``.

    With ``loaded`` it also has the control buttons (unless switched off) and the live log.
    """
    from datasette.app import Datasette

    from jiritsu.dashboard import plugin
    from jiritsu.dashboard.config import DATASETTE_SETTINGS, DB_NAME

    register_plugin()
    _quiet_tracebacks()
    ds = Datasette(
        files=[], metadata=metadata, settings=dict(settings or DATASETTE_SETTINGS), memory=False
    )
    if "_memory" in ds.databases:
        ds.remove_database("_memory")
    ds.add_database(_database_class()(ds, str(db_path)), name=DB_NAME, route=DB_NAME)
    if loaded is not None:
        plugin.attach(ds, loaded)
    return ds


def run(plan: ServePlan, *, log_level: str = "info") -> None:
    """Serve until interrupted (the systemd unit's main process)."""
    import uvicorn

    ds = build_datasette(plan.db_path, plan.metadata, plan.settings, plan.loaded)
    uvicorn.run(
        ds.app(),
        host=plan.host,
        port=plan.port,
        log_level=log_level,
        lifespan="on",
        workers=1,
        proxy_headers=False,  # the allowlist must see the peer, not a header
        server_header=False,
    )
