"""``jiritsu reconcile``: make the database agree with the exchange and show the differences."""

from __future__ import annotations

from typing import Annotated

import typer

from jiritsu_cli.common import console, handle_errors, state


@handle_errors
def reconcile(
    ctx: typer.Context,
    bot: Annotated[str | None, typer.Option("--bot", help="Only this bot.")] = None,
) -> None:
    """Reconcile orders, fills and positions with the exchange (safe to run any time)."""
    from rich.table import Table

    from jiritsu.db.migrate import open_database
    from jiritsu.runtime import build_runtime
    from jiritsu.usecases.reconcile import reconcile as run

    loaded = state(ctx).loaded()
    with open_database(loaded) as engine, build_runtime(loaded, db=engine) as rt:
        report = run(rt, bot=bot)
    out = console()
    for name, why in report.skipped.items():
        out.print(f"{name}: skipped, {why}")
    if report.clean:
        if report.bots:
            out.print(f"in sync with the exchange ({', '.join(report.bots)})")
        return
    table = Table(title=f"{len(report.differences)} differences settled", title_justify="left")
    for col in ("bot", "kind", "what"):
        table.add_column(col)
    for diff in report.differences:
        table.add_row(diff.bot, diff.kind, diff.message)
    out.print(table)
