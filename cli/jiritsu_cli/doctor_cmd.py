"""``jiritsu doctor``: render the library's readiness report (:mod:`jiritsu.ops.doctor`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from jiritsu_cli.common import console, handle_errors, state

if TYPE_CHECKING:
    from jiritsu.ops.doctor import DoctorReport

_STYLE = {"ok": "green", "warn": "yellow", "bad": "bold red", "skipped": "dim"}


@handle_errors
def doctor(
    ctx: typer.Context,
    notify: Annotated[
        bool, typer.Option("--notify", help="Send a test message to the Discord webhook.")
    ] = False,
    gemini: Annotated[
        bool, typer.Option("--gemini", help="Send one tiny request to Gemini.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Check keys, sub-accounts, UIDs, clock, database, Discord and Gemini for the configured
    environment; print what to fix (exit 0 only when everything needed is in place)."""
    from jiritsu.ops.doctor import run_doctor

    report = run_doctor(state(ctx).loaded(), notify=notify, gemini=gemini)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        _render(report)
    if report.exit_code:
        raise typer.Exit(int(report.exit_code))


def _render(report: DoctorReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(title=f"jiritsu doctor: {report.environment}", title_justify="left")
    for col in ("check", "status", "found"):
        table.add_column(col)
    for f in report.findings:
        style = _STYLE.get(f.status, "")
        table.add_row(escape(f.check), f"[{style}]{f.status}[/]", escape(f.message))
    out.print(table)
    if report.sub_accounts is not None:
        subs = Table(title="Sub-accounts of the master", title_justify="left")
        for col in ("UID", "username", "status", "USDT", "configured as"):
            subs.add_column(col)
        for s in report.sub_accounts:
            balance = "?" if s.balance_usdt is None else f"{s.balance_usdt:,.2f}"
            subs.add_row(str(s.uid), escape(s.username), s.status, balance, escape(s.bot or "-"))
        out.print(subs)
    if report.fixes:
        out.print("[bold]to fix:[/]")
        for line in report.fixes:
            out.print(f"  - {escape(line)}")
    verdict = "[green]ready[/]" if report.ready else "[bold red]NOT READY[/]"
    out.print(f"{report.environment}: {verdict}")
