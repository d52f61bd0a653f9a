"""``jiritsu halt``, ``jiritsu resume`` and ``jiritsu flatten``: the operator's controls.

The work is :mod:`jiritsu.usecases.control` (the dashboard's buttons call the same functions);
these commands parse, confirm and render.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from jiritsu_cli.common import console, handle_errors, state

BotOpt = Annotated[
    str | None,
    typer.Option("--bot", metavar="NAME", help="Only this bot (default: everything, globally)."),
]


@handle_errors
def halt(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in status and alerts).")],
    bot: BotOpt = None,
) -> None:
    """Halt trading globally or for one bot (lifted only by `jiritsu resume`)."""
    from jiritsu.clock import RealClock
    from jiritsu.db.migrate import open_database
    from jiritsu.notify import notifier_from_config
    from jiritsu.usecases import control

    loaded = state(ctx).loaded()
    control.scope_for(loaded.settings, bot)
    with open_database(loaded, create=False) as engine:
        result = control.halt(
            engine, loaded.settings, bot=bot, reason=reason, by=control.Requester(),
            clock=RealClock(), notifier=notifier_from_config(loaded),
        )  # fmt: skip
    console().print(result.message, markup=False)


@handle_errors
def resume(ctx: typer.Context, bot: BotOpt = None) -> None:
    """Lift a halt (global, or one bot's)."""
    from jiritsu.clock import RealClock
    from jiritsu.db.migrate import open_database
    from jiritsu.notify import notifier_from_config
    from jiritsu.usecases import control

    loaded = state(ctx).loaded()
    control.scope_for(loaded.settings, bot)
    with open_database(loaded, create=False) as engine:
        result = control.resume(
            engine, loaded.settings, bot=bot, by=control.Requester(),
            clock=RealClock(), notifier=notifier_from_config(loaded),
        )  # fmt: skip
    console().print(result.message, markup=False)


@handle_errors
def flatten(
    ctx: typer.Context,
    bot: BotOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Halt, cancel every open order and close every position at market."""
    from rich.table import Table

    from jiritsu.clock import RealClock
    from jiritsu.db.migrate import open_database
    from jiritsu.errors import UsageError
    from jiritsu.notify import notifier_from_config
    from jiritsu.usecases import control

    loaded = state(ctx).loaded()
    scope = control.scope_for(loaded.settings, bot)
    what = f"bot {bot}" if bot else "EVERY bot"
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("flatten closes positions at market: confirm with --yes")
        typer.confirm(
            f"Cancel all orders and close all positions of {what} at market, then halt {scope}?",
            abort=True,
        )
    with open_database(loaded, create=False) as engine:
        result = control.flatten(
            engine, loaded, bot=bot, by=control.Requester(), clock=RealClock(),
            notifier=notifier_from_config(loaded),
        )  # fmt: skip
    report = result.report
    assert report is not None
    table = Table(title=f"flatten {scope}", title_justify="left")
    for col in ("bot", "action", "symbol", "side", "qty", "client id", "status", "detail"):
        table.add_column(col)
    for line in report.lines:
        table.add_row(
            line.bot, line.action, line.symbol, line.side or "-",
            "-" if line.qty is None else str(line.qty), line.client_order_id or "-",
            line.status or "-", line.detail,
        )  # fmt: skip
    out = console()
    out.print(table)
    out.print(f"halted: {', '.join(report.halted)} (lift with `jiritsu resume`)", markup=False)
    if report.errors:
        raise typer.Exit(1)
