"""``jiritsu dashboard``: serve the read-only Datasette dashboard, mirror PostgreSQL for it,
and make password hashes for its login."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from jiritsu_cli.common import console, handle_errors, new_app, state

app = new_app("The read-only Datasette dashboard.")


@app.command()
@handle_errors
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind (default: dashboard.host, 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=1, max=65535, help="Port (default: dashboard.port, 8001)."),
    ] = None,
) -> None:
    """Serve the dashboard (read-only, login required, IP allowlist) until interrupted."""
    from jiritsu.dashboard import serve as server

    loaded = state(ctx).loaded()
    plan = server.prepare(loaded, host, port)
    out = console()
    source = "mirror" if plan.mirror else "database"
    out.print(f"serving {source} {plan.db_path} read-only", markup=False)
    out.print(f"dashboard: {plan.url} (log in at /-/login)", markup=False)
    out.print(f"from your machine: {plan.tunnel_hint}, then open {plan.url}", markup=False)
    if plan.host not in ("127.0.0.1", "::1", "localhost"):
        allowed = ", ".join(loaded.settings.dashboard.allowed_ips)
        out.print(
            f"note: listening on {plan.host}; only {allowed} get past the allowlist", markup=False
        )
    server.run(plan, log_level="debug" if state(ctx).debug else "info")


@app.command()
@handle_errors
def mirror(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="SQLite file to write (default: dashboard.mirror_path)."),
    ] = None,
) -> None:
    """Mirror a PostgreSQL database into the SQLite file the dashboard reads (run on a timer)."""
    from jiritsu.dashboard.mirror import mirror as run_mirror
    from jiritsu.dashboard.serve import sqlite_path
    from jiritsu.db.engine import connect
    from jiritsu.errors import UsageError

    loaded = state(ctx).loaded()
    settings = loaded.settings
    if sqlite_path(loaded.db_url) is not None:
        raise UsageError(
            "the database is SQLite: `jiritsu dashboard serve` reads it directly, no mirror needed"
        )
    connect(
        loaded.db_url,
        attempts=settings.database.reconnect_attempts,
        base_delay=settings.database.reconnect_base_delay_seconds,
    ).dispose()
    report = run_mirror(loaded.db_url, out or settings.dashboard_mirror_path)
    console().print(
        f"mirrored {report.total} rows from {len(report.rows)} tables into {report.path} "
        f"in {report.seconds:.1f} s",
        markup=False,
    )


@app.command("hash-password")
@handle_errors
def hash_password() -> None:
    """Ask for a password and print its hash for the dashboard.users password_hash_env variable."""
    from jiritsu.dashboard.serve import hash_password as make_hash

    # Prompts go to stderr so that `export VAR=$(jiritsu dashboard hash-password)` captures
    # the hash alone.
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    typer.echo(make_hash(password))
