"""``jiritsu health``: run the library's health checks, render them, exit by the verdict."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from jiritsu_cli.common import console, handle_errors, state

if TYPE_CHECKING:
    from jiritsu.ops.health import HealthReport

_STYLE = {"ok": "green", "warn": "yellow", "bad": "bold red", "skipped": "dim"}


@handle_errors
def health(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Check system health, record it and alert on changes (exit 1 when unhealthy, 3 no DB)."""
    from jiritsu.notify import build_notifier
    from jiritsu.ops.health import run_health

    loaded = state(ctx).loaded()
    settings = loaded.settings
    notes = settings.notifications
    # INFO passes here so that recoveries can be sent; run_health applies min_level itself.
    notifier = build_notifier(
        loaded.secrets.discord_webhook(),
        enabled=notes.enabled,
        timeout=notes.timeout_seconds,
        username=notes.username,
        min_level="INFO",
        footer=settings.general.environment,
    )
    report = run_health(loaded, notifier=notifier, min_level=notes.min_level)
    if not report.database_reachable:
        import logging

        logging.getLogger("jiritsu.cli").critical(
            "database unreachable: %s", report.check("database").message
        )
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        _render(report)
    if report.exit_code:
        raise typer.Exit(int(report.exit_code))


def _render(report: HealthReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(
        title=f"Health at {report.checked_at:%Y-%m-%d %H:%M:%S} UTC", title_justify="left"
    )
    for col in ("check", "status", "details"):
        table.add_column(col)
    for check in report.checks:
        style = _STYLE.get(check.status, "")
        table.add_row(check.name, f"[{style}]{check.status}[/]", escape(check.message))
    out.print(table)
    verdict = {"ok": "[green]healthy[/]", "warn": "[yellow]healthy, with warnings[/]"}.get(
        report.status, "[bold red]UNHEALTHY[/]"
    )
    if not report.database_reachable:
        verdict = "[bold red]UNHEALTHY: database unreachable[/]"
    out.print(f"overall: {verdict}")
    if report.data_time is not None:
        out.print(
            f"data judged on simulated time: {report.data_time:%Y-%m-%d %H:%M} UTC "
            f"({escape(report.data_clock or 'simulation')}; not a live database)"
        )
    for alert in report.alerts:
        out.print(f"alert ({alert.delivery}, {alert.level}): {escape(alert.message)}")
