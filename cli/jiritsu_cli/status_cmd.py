"""``jiritsu status``: render the library's status report."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, state

if TYPE_CHECKING:
    from jiritsu.status import StatusReport


@handle_errors
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    performance: Annotated[
        bool,
        typer.Option("--performance", help="Add each bot's trades, win rate, PnL and fees."),
    ] = False,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Refresh until Ctrl-C (exit 0).")
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.2, help="Seconds between --watch refreshes.")
    ] = 5.0,
) -> None:
    """Bots, equity, positions, open orders, halt state, trade loop, last decisions, events."""
    loaded = state(ctx).loaded()
    if watch:
        _watch(loaded, performance=performance, interval=interval)
        return
    report = _collect(loaded, performance)
    if as_json:
        data = report.as_dict()
        data["total_equity"] = report.total_equity
        typer.echo(json.dumps(data, default=str, indent=2))
    else:
        out = console()
        for part in _renderables(report):
            out.print(part)
    if not report.schema_ok:
        raise typer.Exit(1)


def _collect(loaded: Any, performance: bool) -> StatusReport:
    from jiritsu.clock import wall_now
    from jiritsu.status import collect_status

    return collect_status(loaded, performance=performance, now=wall_now())


def _watch(loaded: Any, *, performance: bool, interval: float) -> None:
    """Redraw in place on a terminal (a new block per refresh when piped) until Ctrl-C.

    The first read fails like plain ``status`` (a missing database is exit 3); later failures
    are shown in the view and the next refresh tries again.
    """
    import time

    from rich.console import Group
    from rich.live import Live
    from rich.markup import escape

    from jiritsu.clock import wall_now
    from jiritsu.errors import JiritsuError
    from jiritsu.redact import redact

    out = console()

    def frame(first: bool) -> Group:
        stamp = f"{wall_now():%Y-%m-%d %H:%M:%S} UTC"
        head = f"[dim]status at {stamp}, every {interval:g}s; Ctrl-C to leave[/]"
        try:
            parts = _renderables(_collect(loaded, performance))
        except JiritsuError as exc:
            if first:
                raise
            parts = [f"[bold red]error:[/] {escape(redact(str(exc)))} (retrying)"]
        return Group(head, *parts)

    try:
        view = frame(first=True)
        if not out.is_terminal:
            while True:
                out.print(view)
                out.rule()
                time.sleep(interval)
                view = frame(first=False)
        with Live(view, console=out, screen=True, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(first=False), refresh=True)
    except KeyboardInterrupt:
        out.print("stopped watching")


def _money(value: Any, places: int = 2) -> str:
    return "-" if value is None else f"{float(value):,.{places}f}"


def _renderables(report: StatusReport) -> list[Any]:
    """Everything ``status`` shows, as Rich renderables (printed once, or redrawn by --watch)."""
    from rich.markup import escape
    from rich.table import Table

    parts: list[Any] = []
    halt = (
        f"[bold red]HALTED[/] ({escape(report.global_halt_reason or '')})"
        if report.global_halt
        else "[green]not halted[/]"
    )
    parts.append(f"[bold]Jiritsu[/] environment [cyan]{report.environment}[/]  {halt}")
    if report.loop is not None:
        style = "green" if report.loop.alive else "yellow"
        parts.append(f"loop     [{style}]{escape(report.loop.message)}[/]")
    parts.append(f"config   {escape(report.config_path)}")
    parts.append(f"database {escape(report.database)}")
    if report.schema_ok:
        parts.append(f"schema   {report.schema_revision} (up to date)")
    else:
        parts.append(
            f"schema   [yellow]{report.schema_revision or 'empty'}[/] != head {report.schema_head}"
            " -- run [bold]jiritsu db upgrade[/]"
        )
    if report.total_equity is not None:
        parts.append(
            f"equity   {_money(report.total_equity)} in the bots, "
            f"{_money(report.savings)} saved"
        )
    if report.exchange_error:
        parts.append(f"exchange [yellow]unavailable[/]: {escape(report.exchange_error)}")
    for beat in report.heartbeats:
        step = (beat.details or {}).get("step_time") if isinstance(beat.details, dict) else None
        extra = f" (step time {step})" if step else ""
        parts.append(f"{beat.component:<8} last seen {beat.last_seen:%Y-%m-%d %H:%M:%S} UTC{extra}")
    bots = Table(title="Sub-bots", title_justify="left")
    for col in ("bot", "market", "advisor", "equity", "available", "state"):
        bots.add_column(col)
    for b in report.bots:
        state_txt = "[red]halted[/]" if b.halted else "ok"
        if not b.enabled:
            state_txt = "disabled"
        bots.add_row(
            b.name, f"{b.symbol} {b.category}", b.advisor, _money(b.equity), _money(b.available),
            state_txt,
        )  # fmt: skip
    parts.append(bots)
    for b in report.bots:
        if b.halted:
            parts.append(f"[red]{b.name} halted[/]: {escape(b.halt_reason or '')}")
    parts += [_positions(report), _orders(report), _decisions(report)]
    if report.performance:
        parts.append(_performance(report))
    if report.recent_events:
        events = Table(title="Latest events", title_justify="left")
        for col in ("time (UTC)", "level", "type", "message"):
            events.add_column(col)
        for e in report.recent_events:
            events.add_row(
                e.timestamp.strftime("%Y-%m-%d %H:%M:%S"), e.level, e.event_type, e.message
            )
        parts.append(events)
    return parts


def _positions(report: StatusReport) -> Any:
    from rich.table import Table

    rows = [(b.name, p) for b in report.bots for p in b.positions]
    if not rows:
        return "positions: none"
    table = Table(title="Positions", title_justify="left")
    for col in ("bot", "symbol", "side", "size", "avg price", "TP", "SL", "unrealised"):
        table.add_column(col)
    for name, p in rows:
        table.add_row(
            name, p.symbol, p.side, f"{p.size:f}", _money(p.avg_price), _money(p.take_profit),
            _money(p.stop_loss), _money(p.unrealised_pnl),
        )  # fmt: skip
    return table


def _orders(report: StatusReport) -> Any:
    from rich.table import Table

    rows = [(b.name, o) for b in report.bots for o in b.open_orders]
    if not rows:
        return "open orders: none"
    table = Table(title="Open orders", title_justify="left")
    for col in ("bot", "client id", "side", "type", "qty", "price", "leg", "status"):
        table.add_column(col)
    for name, o in rows:
        table.add_row(
            name, o.client_order_id, o.side, o.order_type, str(o.qty), _money(o.price),
            "-" if o.leg_index is None else str(o.leg_index), o.status,
        )  # fmt: skip
    return table


def _decisions(report: StatusReport) -> Any:
    from rich.table import Table

    table = Table(title="Last decisions", title_justify="left")
    for col in ("bot", "bar (UTC)", "advisor", "action", "conf.", "reason"):
        table.add_column(col)
    any_row = False
    for b in report.bots:
        for d in b.last_decisions[:1]:  # the newest; --json has more
            any_row = True
            bar = d.bar_ts.strftime("%Y-%m-%d %H:%M") if d.bar_ts else "-"
            action = d.action or d.outcome or "-"
            conf = "-" if d.confidence is None else f"{d.confidence:.2f}"
            reason = d.reason or ""
            reason = reason if len(reason) <= 60 else reason[:57] + "..."
            table.add_row(b.name, bar, d.provider, action, conf, reason)
    return table if any_row else "decisions: none yet"


def _performance(report: StatusReport) -> Any:
    from rich.table import Table

    table = Table(title="Performance (closed trades, PnL after fees)", title_justify="left")
    for col in ("bot", "trades", "wins", "win rate", "PnL", "profit factor", "fees", "fills"):
        table.add_column(col)
    for p in report.performance:
        rate = "-" if p["win_rate"] is None else f"{p['win_rate']:.0%}"
        pf = "-" if p["profit_factor"] is None else f"{p['profit_factor']:.2f}"
        table.add_row(
            p["bot"], str(p["closed_trades"]), str(p["wins"]), rate, _money(p["pnl"], 4), pf,
            _money(p["fees"], 4), str(p["orders_filled"]),
        )  # fmt: skip
    return table
