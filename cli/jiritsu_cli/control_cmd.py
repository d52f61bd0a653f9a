"""``jiritsu halt``, ``jiritsu resume`` and ``jiritsu flatten``: the operator's controls."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, state

BotOpt = Annotated[
    str | None,
    typer.Option("--bot", metavar="NAME", help="Only this bot (default: everything, globally)."),
]


def _engine(loaded: Any) -> Any:
    from jiritsu.db.engine import connect
    from jiritsu.db.migrate import ensure_schema

    db = loaded.settings.database
    ensure_schema(
        loaded.db_url, attempts=db.reconnect_attempts, base_delay=db.reconnect_base_delay_seconds
    )
    return connect(
        loaded.db_url, attempts=db.reconnect_attempts, base_delay=db.reconnect_base_delay_seconds
    )


def _scope(loaded: Any, bot: str | None) -> str:
    from jiritsu.controls import GLOBAL
    from jiritsu.errors import UsageError

    if bot is None:
        return GLOBAL
    if bot not in loaded.settings.bot_names:
        raise UsageError(f"no bot named {bot!r} (bots: {', '.join(loaded.settings.bot_names)})")
    return bot


@handle_errors
def halt(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option("--reason", help="Why (shown in status and alerts).")],
    bot: BotOpt = None,
) -> None:
    """Halt trading globally or for one bot (lifted only by `jiritsu resume`)."""
    from jiritsu import controls
    from jiritsu.events import EventType, record_event
    from jiritsu.notify import notifier_from_config

    loaded = state(ctx).loaded()
    scope = _scope(loaded, bot)
    engine = _engine(loaded)
    try:
        if not controls.halt(engine, scope, reason, by="operator"):
            console().print(f"{scope} was already halted")
            return
        record_event(
            engine, "WARNING", EventType.HALT, f"{scope} halted by the operator: {reason}",
            {"scope": scope}, bot=bot, notifier=notifier_from_config(loaded),
        )  # fmt: skip
    finally:
        engine.dispose()
    console().print(f"{scope} halted: {reason}")


@handle_errors
def resume(ctx: typer.Context, bot: BotOpt = None) -> None:
    """Lift a halt (global, or one bot's)."""
    from jiritsu import controls
    from jiritsu.events import EventType, record_event
    from jiritsu.notify import notifier_from_config

    loaded = state(ctx).loaded()
    scope = _scope(loaded, bot)
    engine = _engine(loaded)
    try:
        if not controls.resume(engine, scope):
            console().print(f"{scope} was not halted")
            return
        record_event(
            engine, "WARNING", EventType.RESUME, f"{scope} resumed by the operator",
            {"scope": scope}, bot=bot, notifier=notifier_from_config(loaded),
        )  # fmt: skip
    finally:
        engine.dispose()
    console().print(f"{scope} resumed")


@handle_errors
def flatten(
    ctx: typer.Context,
    bot: BotOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Halt, cancel every open order and close every position at market."""
    from datetime import datetime, timezone

    from rich.table import Table

    from jiritsu.engine.flatten import flatten as run
    from jiritsu.errors import UsageError
    from jiritsu.exchange.factory import build_exchange
    from jiritsu.notify import notifier_from_config

    loaded = state(ctx).loaded()
    scope = _scope(loaded, bot)
    what = f"bot {bot}" if bot else "EVERY bot"
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError("flatten closes positions at market: confirm with --yes")
        typer.confirm(
            f"Cancel all orders and close all positions of {what} at market, then halt {scope}?",
            abort=True,
        )
    engine = _engine(loaded)
    exchange = None
    try:
        exchange = build_exchange(loaded)
        report = run(
            engine, exchange, loaded.settings, bot=bot, now=datetime.now(timezone.utc),
            notifier=notifier_from_config(loaded),
        )  # fmt: skip
    finally:
        if exchange is not None:
            exchange.close()
        engine.dispose()
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
    out.print(f"halted: {', '.join(report.halted)} (lift with `jiritsu resume`)")
    if report.errors:
        raise typer.Exit(1)
