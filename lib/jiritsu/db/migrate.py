"""Schema migrations, programmatically: the only way the schema of a Jiritsu database changes.

The Alembic configuration is built in code (``script_location`` = :func:`migrations_dir`) and the
URL is passed in, so nothing depends on the working directory or on alembic.ini. Connection
failures become :class:`~jiritsu.errors.DatabaseUnavailable` (exit code 3).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from jiritsu.errors import DatabaseUnavailable
from jiritsu.resources import migrations_dir

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Engine

BASE = "base"


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


@contextmanager
def _unavailable_as_error(url: str) -> Iterator[None]:
    """Turn connection-level driver errors into DatabaseUnavailable with a masked URL."""
    from jiritsu.db.engine import error_summary, is_disconnect, mask_url

    try:
        yield
    except Exception as exc:
        if not is_disconnect(exc):
            raise
        raise DatabaseUnavailable(f"database {mask_url(url)}: {error_summary(exc)}") from exc


def _run_command(url: str, fn: Callable[[Config], None]) -> None:
    from jiritsu.db.engine import migration_engine

    engine = migration_engine(url)
    try:
        with _unavailable_as_error(url), engine.connect() as conn:
            cfg = _config()
            cfg.attributes["connection"] = conn
            fn(cfg)
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision`` (default: the newest)."""
    from alembic import command

    _run_command(url, lambda cfg: command.upgrade(cfg, revision))


def upgrade_recorded(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade and, when the revision moved, leave a MIGRATION event (at wall time: a schema
    change is the operator's act, whatever clock the data runs on); returns (before, after)."""
    from jiritsu.clock import wall_now
    from jiritsu.db.engine import make_engine
    from jiritsu.events import EventType, record_event

    before = current(url)
    upgrade(url, revision)
    after = current(url)
    if before != after:
        engine = make_engine(url)
        try:
            record_event(
                engine,
                "INFO",
                EventType.MIGRATION,
                f"schema upgraded {before or 'base'} -> {after or 'base'}",
                {"before": before, "after": after},
                now=wall_now(),
            )
        finally:
            engine.dispose()
    return before, after


def downgrade(url: str, revision: str) -> None:
    """Migrate down to ``revision`` (``"base"`` drops every table, with its data)."""
    from alembic import command

    _run_command(url, lambda cfg: command.downgrade(cfg, revision))


def head() -> str:
    """The newest revision in ``migrations/versions``."""
    from alembic.script import ScriptDirectory

    rev = ScriptDirectory.from_config(_config()).get_current_head()
    if rev is None:
        raise RuntimeError(f"no migrations found in {migrations_dir()}")
    return rev


def _with_engine(url: str, fn: Callable[[Engine], Any]) -> Any:
    from jiritsu.db.engine import make_engine

    engine = make_engine(url)
    try:
        with _unavailable_as_error(url):
            return fn(engine)
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    from alembic.runtime.migration import MigrationContext

    def _current(engine: Engine) -> str | None:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    return _with_engine(url, _current)


def check(url: str, *, metadata: MetaData | None = None) -> list[str]:
    """Human-readable differences between the models and the database; empty when in sync.

    ``metadata`` defaults to the models (``Base.metadata``); tests pass a modified copy.
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from jiritsu.db.models import VIEW_NAMES, Base

    target = Base.metadata if metadata is None else metadata

    def include_object(obj: Any, name: str | None, type_: str, *_: Any) -> bool:
        return not (type_ == "table" and name in VIEW_NAMES)

    def _check(engine: Engine) -> list[str]:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            problems: list[str] = []
            rev, newest = ctx.get_current_revision(), head()
            if rev != newest:
                problems.append(
                    f"database is at revision {rev or 'none (never migrated)'}, "
                    f"migrations head is {newest}: run `jiritsu db upgrade`"
                )
            problems.extend(describe_diff(d) for d in _flatten(compare_metadata(ctx, target)))
            return problems

    return _with_engine(url, _check)


def ensure_schema(
    url: str,
    *,
    attempts: int = 5,
    base_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Start-up path: wait (bounded) for the database, then upgrade it to head.

    Returns the head revision; raises DatabaseUnavailable when the database stays down.
    """
    from jiritsu.db.engine import connect

    connect(url, attempts=attempts, base_delay=base_delay, sleep=sleep).dispose()
    upgrade(url)
    return head()


@contextmanager
def open_database(loaded: Any, *, create: bool = True) -> Iterator[Engine]:
    """What every command does first: wait (bounded) for the configured database, bring its
    schema to head, and dispose of the engine afterwards. DatabaseUnavailable when it stays down;
    with ``create=False`` (commands that must find an existing database) DatabaseMissing when
    there is no SQLite file.
    """
    from jiritsu.db.engine import connect_configured

    engine = connect_configured(loaded, create=create)
    try:
        upgrade(loaded.db_url)
        yield engine
    finally:
        engine.dispose()


def _flatten(diffs: list[Any]) -> Iterator[tuple[Any, ...]]:
    for diff in diffs:
        if isinstance(diff, list):  # column modifications come as a list of tuples
            yield from diff
        else:
            yield diff


def _cols(obj: Any) -> str:
    return ", ".join(c.name for c in obj.columns)


def describe_diff(diff: tuple[Any, ...]) -> str:
    """One line per Alembic diff tuple; "models" is the code, "database" the migrated schema."""
    kind = diff[0]
    if kind == "add_table":
        return f"table {diff[1].name}: in the models, missing in the database"
    if kind == "remove_table":
        return f"table {diff[1].name}: in the database, not in the models"
    if kind == "add_column":
        return f"column {diff[2]}.{diff[3].name}: in the models, missing in the database"
    if kind == "remove_column":
        return f"column {diff[2]}.{diff[3].name}: in the database, not in the models"
    if kind in ("add_index", "remove_index"):
        idx = diff[1]
        where = "in the models, missing in the database"
        if kind == "remove_index":
            where = "in the database, not in the models"
        return f"index {idx.name} on {idx.table.name}({_cols(idx)}): {where}"
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        con = diff[1]
        where = "in the database, not in the models"
        if kind.startswith("add"):
            where = "in the models, missing in the database"
        return f"constraint {con.name} on {con.table.name}({_cols(con)}): {where}"
    if kind == "modify_type":
        _, _schema, table, column, _info, db_type, model_type = diff
        return f"column {table}.{column}: type {db_type} in the database, {model_type} in models"
    if kind == "modify_nullable":
        _, _schema, table, column, _info, db_null, model_null = diff

        def word(nullable: bool) -> str:
            return "NULL" if nullable else "NOT NULL"

        return (
            f"column {table}.{column}: {word(db_null)} in the database, "
            f"{word(model_null)} in the models"
        )
    if kind == "modify_default":
        _, _schema, table, column, _info, db_default, model_default = diff
        return (
            f"column {table}.{column}: server default {db_default!r} in the database, "
            f"{model_default!r} in the models"
        )
    if kind == "modify_comment":
        return f"column {diff[2]}.{diff[3]}: comment differs"
    if kind in ("add_table_comment", "remove_table_comment"):
        return f"table {diff[1].name}: comment differs"
    return f"{kind}: {diff[1:]!r}"
