"""``jiritsu db``: schema migrations (upgrade, downgrade, current, check).

Every command first waits (bounded) for the database; when it stays unreachable the command
logs CRITICAL and exits with code 3 (``DatabaseUnavailable`` through ``handle_errors``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from jiritsu_cli.common import console, handle_errors, new_app, state

app = new_app("Database schema: migrate, inspect and check for drift.")


def _reachable_url(ctx: typer.Context) -> str:
    """The configured database URL, after the database answered (else DatabaseUnavailable)."""
    from jiritsu.db.engine import connect

    loaded = state(ctx).loaded()
    database = loaded.settings.database
    connect(
        loaded.db_url,
        attempts=database.reconnect_attempts,
        base_delay=database.reconnect_base_delay_seconds,
    ).dispose()
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

    url = _reachable_url(ctx)
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
