"""``jiritsu status``: render the library's status report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from jiritsu_cli.common import console, handle_errors, state

if TYPE_CHECKING:
    from jiritsu.status import StatusReport


@handle_errors
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Bots, halt state, database schema and the latest events."""
    from jiritsu.status import collect_status

    report = collect_status(state(ctx).loaded())
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        _render(report)
    if not report.schema_ok:
        raise typer.Exit(1)


def _render(report: StatusReport) -> None:
    from rich.table import Table

    out = console()
    halt = (
        f"[bold red]HALTED[/] ({report.global_halt_reason})"
        if report.global_halt
        else "[green]running[/]"
    )
    out.print(f"[bold]Jiritsu[/] environment [cyan]{report.environment}[/]  trading: {halt}")
    out.print(f"config   {report.config_path}")
    out.print(f"database {report.database}")
    if report.schema_ok:
        out.print(f"schema   {report.schema_revision} (up to date)")
    else:
        out.print(
            f"schema   [yellow]{report.schema_revision or 'empty'}[/] != head {report.schema_head}"
            " -- run [bold]jiritsu db upgrade[/]"
        )
    bots = Table(title="Sub-bots", title_justify="left")
    for col in ("bot", "enabled", "symbol", "category", "advisor", "state"):
        bots.add_column(col)
    for b in report.bots:
        state_txt = f"[red]halted[/] ({b.halt_reason})" if b.halted else "ok"
        bots.add_row(
            b.name, "yes" if b.enabled else "no", b.symbol, b.category, b.advisor, state_txt
        )
    out.print(bots)
    if report.recent_events:
        events = Table(title="Latest events", title_justify="left")
        for col in ("time (UTC)", "level", "type", "message"):
            events.add_column(col)
        for e in report.recent_events:
            events.add_row(
                e.timestamp.strftime("%Y-%m-%d %H:%M:%S"), e.level, e.event_type, e.message
            )
        out.print(events)
