"""``jiritsu trade-tick`` and ``jiritsu trade-loop``: parse, call :mod:`jiritsu.engine.loop`,
render."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from jiritsu_cli.common import console, handle_errors, state

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig
    from jiritsu.engine.loop import LoopResult, TradeLoop

BotOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--bot", metavar="NAME", help="Only this bot (repeatable; default: every enabled bot)."
    ),
]


def _schema(loaded: LoadedConfig) -> None:
    """Wait (bounded) for the database and bring its schema to head, as every command does."""
    from jiritsu.db.migrate import open_database

    with open_database(loaded):
        pass


@handle_errors
def trade_tick(ctx: typer.Context, bot: BotOpt = None) -> None:
    """Run one trading cycle for every enabled bot (exit 0 ok, 1 errors, 4 halted)."""
    from rich.table import Table

    from jiritsu.engine.loop import run_tick

    loaded = state(ctx).loaded()
    _schema(loaded)
    result = run_tick(loaded, bots=bot)
    table = Table(title="trade tick", title_justify="left")
    for col in ("bot", "decided", "action", "acted", "orders", "state"):
        table.add_column(col)
    for r in result.reports:
        status = f"error: {r.error}" if r.error else ("halted" if r.halted else "ok")
        table.add_row(
            r.bot, "yes" if r.decided else "no", r.action or "-", "yes" if r.acted else "no",
            "; ".join(r.orders) or "-", status,
        )  # fmt: skip
    out = console()
    out.print(table)
    for trip in result.trips:
        out.print(f"[bold red]circuit breaker[/] {trip}")
    raise typer.Exit(result.exit_code)


@handle_errors
def trade_loop(
    ctx: typer.Context,
    replay: Annotated[
        str | None,
        typer.Option(
            "--replay",
            metavar="FROM..TO",
            help="Replay stored candles on the paper exchange with a simulated clock "
            "(UTC dates or ISO times; '..' = the whole stored range after a 2-day warm-up).",
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option("--speed", min=0, help="Replay: simulated seconds per real second (0: max)."),
    ] = 0.0,
    bot: BotOpt = None,
) -> None:
    """Trade continuously: reconcile, tick at each bar close, honour halts (SIGTERM stops
    cleanly, SIGHUP reloads the configuration)."""
    from jiritsu.clock import from_ms
    from jiritsu.config import load_config
    from jiritsu.engine.loop import LoopOptions, parse_replay, run_loop

    app_state = state(ctx)
    loaded = app_state.loaded()
    _schema(loaded)
    options = LoopOptions(
        replay=parse_replay(replay) if replay is not None else None, speed=speed, bots=bot
    )
    first = [loaded]

    def load() -> object:
        if first:  # the configuration already loaded (and validated) by the CLI
            return first.pop()
        return load_config(app_state.config_path)

    out = console()
    on_step = None
    if options.replay is not None:
        import logging

        # Every order is an INFO event in the database; on the console one line per simulated
        # day says more (warnings and breakers still print).
        logging.getLogger("jiritsu.events").setLevel(logging.WARNING)
        day = [-1]

        def on_step(t: int, loop: TradeLoop) -> None:
            today = t // 86_400_000
            if today != day[0]:
                day[0] = today
                r = loop.result
                out.print(
                    f"  {from_ms(t):%Y-%m-%d}  decisions {r.decisions:>6}  orders {r.orders:>5}"
                    f"  breaker trips {len(r.trips)}"
                )

    result = run_loop(load, options, on_step=on_step)
    out.print(
        f"{_where_it_stopped(result)}: {result.steps} steps, {result.decisions} decisions, "
        f"{result.orders} orders, {result.errors} errors in {result.wall_seconds:.1f} s"
    )
    for trip in result.trips:
        out.print(f"  circuit breaker {trip}")
    raise typer.Exit(result.exit_code)


def _where_it_stopped(result: LoopResult) -> str:
    """ "finished (range)" only when a replay reached its end; otherwise the time of the last
    step, so a SIGTERM on Jan 13 of a January replay does not read as a completed month."""
    from jiritsu.clock import from_ms

    def fmt(ms: int) -> str:
        return f"{from_ms(ms):%Y-%m-%d %H:%M}"

    if result.start_ms is None:
        return "trade loop stopped before its first step"
    span = fmt(result.start_ms) + (f" .. {fmt(result.end_ms)}" if result.end_ms else "")
    if result.stop_reason == "finished":
        return f"trade loop finished ({span} UTC)"
    why = {"signal": "stop signal", "database": "database unreachable"}.get(
        result.stop_reason, result.stop_reason or "stopped"
    )
    at = fmt(result.last_ms) if result.last_ms is not None else fmt(result.start_ms)
    if result.end_ms:
        return f"trade loop stopped at {at} of {span} UTC ({why})"
    return f"trade loop stopped at {at} UTC, running since {span} UTC ({why})"
