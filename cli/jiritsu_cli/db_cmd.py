"""``jiritsu db``: schema migrations (upgrade, downgrade, current, check), backup and restore.

Every command first waits (bounded) for the database; when it stays unreachable the command
logs CRITICAL and exits with code 3 (``DatabaseUnavailable`` through ``handle_errors``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jiritsu_cli.common import console, handle_errors, new_app, state

app = new_app("Database: migrate, inspect and check the schema; back up and restore.")


def _reachable_url(ctx: typer.Context, *, create: bool = False) -> str:
    """The configured database URL, after the database answered (else DatabaseUnavailable).

    Only ``upgrade`` and ``restore`` may create a missing SQLite file; the others inspect.
    """
    from jiritsu.db.engine import connect_configured

    loaded = state(ctx).loaded()
    connect_configured(loaded, create=create).dispose()
    return str(loaded.db_url)


@app.command()
@handle_errors
def upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Option("--revision", "-r", help="Target revision.")] = "head",
) -> None:
    """Migrate the database schema up (to the newest revision by default)."""
    from jiritsu.db import migrate
    from jiritsu.db.engine import mask_url

    url = _reachable_url(ctx, create=True)
    before, after = migrate.upgrade_recorded(url, revision)
    out = console()
    if before == after:
        out.print(f"{mask_url(url)}: already at {after or 'base'}", markup=False)
    else:
        out.print(
            f"{mask_url(url)}: upgraded {before or 'base'} -> {after or 'base'}", markup=False
        )


@app.command()
@handle_errors
def downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help='Target revision ("base" drops every table).')],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Migrate the database schema down; dropped tables lose their data."""
    from jiritsu.db import migrate
    from jiritsu.db.engine import mask_url

    url = _reachable_url(ctx)
    before = migrate.current(url)
    if not yes:
        typer.confirm(
            f"Downgrade {mask_url(url)} from {before or 'base'} to {revision}? "
            "Tables dropped by the downgrade lose their data",
            abort=True,
        )
    migrate.downgrade(url, revision)
    after = migrate.current(url)
    console().print(
        f"{mask_url(url)}: downgraded {before or 'base'} -> {after or 'base'}", markup=False
    )


@app.command()
@handle_errors
def current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the newest available one."""
    from jiritsu.db import migrate

    url = _reachable_url(ctx)
    rev, newest = migrate.current(url), migrate.head()
    note = "(head)" if rev == newest else f"(head is {newest}; run `jiritsu db upgrade`)"
    console().print(f"{rev or 'none'} {note}", markup=False)


@app.command()
@handle_errors
def check(ctx: typer.Context) -> None:
    """Compare the models with the database schema; exit 1 when they differ."""
    from jiritsu.db import migrate

    url = _reachable_url(ctx)
    problems = migrate.check(url)
    out = console()
    if not problems:
        out.print(f"schema in sync with the models (revision {migrate.head()})")
        return
    out.print(f"[bold red]schema differs from the models[/] ({len(problems)}):", markup=True)
    for line in problems:
        out.print(f"  - {line}", markup=False)
    raise typer.Exit(1)


PgBin = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin",
        help="Directory holding pg_dump/pg_restore (default: the newest that fits the server).",
        show_default=False,
    ),
]


def _backup_source(ctx: typer.Context) -> str:
    """The database to back up; a PostgreSQL server must answer, a SQLite file must exist."""
    loaded = state(ctx).loaded()
    if str(loaded.db_url).startswith("sqlite"):
        return str(loaded.db_url)  # connecting would create an empty database file
    return _reachable_url(ctx)


@app.command()
@handle_errors
def backup(
    ctx: typer.Context,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Backup directory (default: backup.dir, else <data_dir>/backups).",
            show_default=False,
        ),
    ] = None,
    pg_bin: PgBin = None,
) -> None:
    """Back up the database (SQLite backup API / pg_dump) and delete expired backups."""
    from jiritsu.notify import build_notifier
    from jiritsu.ops.backup import run_backup

    _backup_source(ctx)
    loaded = state(ctx).loaded()
    notes = loaded.settings.notifications
    notifier = build_notifier(
        loaded.secrets.discord_webhook(),
        enabled=notes.enabled,
        timeout=notes.timeout_seconds,
        username=notes.username,
        min_level=notes.min_level,
        footer=loaded.settings.general.environment,
    )
    result = run_backup(loaded, directory=directory, notifier=notifier, pg_bindir=pg_bin)
    out = console()
    out.print(
        f"backup written: {result.path} ({result.size} bytes, {result.seconds:.1f}s, "
        f"revision {result.revision or 'none'})",
        markup=False,
    )
    days = loaded.settings.backup.retention_days
    for path in result.deleted:
        out.print(f"deleted {path.name} (older than {days} days)", markup=False)


@app.command()
@handle_errors
def restore(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="A backup written by `jiritsu db backup`.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    pg_bin: PgBin = None,
) -> None:
    """Replace the database's contents with a backup (the current ones are backed up first)."""
    from jiritsu.db import migrate
    from jiritsu.db.engine import mask_url
    from jiritsu.ops.backup import backup_kind, inspect_backup, run_restore

    url = _reachable_url(ctx, create=True)
    loaded = state(ctx).loaded()
    revision = inspect_backup(file, backup_kind(url), pg_bindir=pg_bin)
    if not yes:
        typer.confirm(
            f"Restore {mask_url(url)} from {file} (schema revision {revision or 'none'})? "
            "Its current contents are replaced (a safety backup is taken first); stop the "
            "jiritsu services before you do this",
            abort=True,
        )
    result = run_restore(loaded, file, pg_bindir=pg_bin)
    out = console()
    out.print(f"{mask_url(url)}: restored from {result.source}", markup=False)
    if result.safety_backup:
        out.print(f"the previous contents are in {result.safety_backup}", markup=False)
    head = migrate.head()
    if result.revision != head:
        out.print(
            f"schema revision {result.revision or 'none'} (head is {head}): "
            "run `jiritsu db upgrade`",
            markup=False,
        )
