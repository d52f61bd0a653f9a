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
) -> None:
    """Bots, equity, positions, open orders, halt state, last tick, last decisions, events."""
    from jiritsu.status import collect_status

    report = collect_status(state(ctx).loaded(), performance=performance)
    if as_json:
        data = report.as_dict()
        data["total_equity"] = report.total_equity
        typer.echo(json.dumps(data, default=str, indent=2))
    else:
        _render(report)
    if not report.schema_ok:
        raise typer.Exit(1)


def _money(value: Any, places: int = 2) -> str:
    return "-" if value is None else f"{float(value):,.{places}f}"


def _render(report: StatusReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    halt = (
        f"[bold red]HALTED[/] ({escape(report.global_halt_reason or '')})"
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
    if report.total_equity is not None:
        out.print(
            f"equity   {_money(report.total_equity)} in the bots, "
            f"{_money(report.savings)} saved"
        )
    if report.exchange_error:
        out.print(f"exchange [yellow]unavailable[/]: {escape(report.exchange_error)}")
    for beat in report.heartbeats:
        step = (beat.details or {}).get("step_time") if isinstance(beat.details, dict) else None
        extra = f" (step time {step})" if step else ""
        out.print(f"{beat.component:<8} last seen {beat.last_seen:%Y-%m-%d %H:%M:%S} UTC{extra}")
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
    out.print(bots)
    for b in report.bots:
        if b.halted:
            out.print(f"[red]{b.name} halted[/]: {escape(b.halt_reason or '')}")
    _positions(report)
    _orders(report)
    _decisions(report)
    if report.performance:
        _performance(report)
    if report.recent_events:
        events = Table(title="Latest events", title_justify="left")
        for col in ("time (UTC)", "level", "type", "message"):
            events.add_column(col)
        for e in report.recent_events:
            events.add_row(
                e.timestamp.strftime("%Y-%m-%d %H:%M:%S"), e.level, e.event_type, e.message
            )
        out.print(events)


def _positions(report: StatusReport) -> None:
    from rich.table import Table

    rows = [(b.name, p) for b in report.bots for p in b.positions]
    if not rows:
        console().print("positions: none")
        return
    table = Table(title="Positions", title_justify="left")
    for col in ("bot", "symbol", "side", "size", "avg price", "TP", "SL", "unrealised"):
        table.add_column(col)
    for name, p in rows:
        table.add_row(
            name, p.symbol, p.side, f"{p.size:f}", _money(p.avg_price), _money(p.take_profit),
            _money(p.stop_loss), _money(p.unrealised_pnl),
        )  # fmt: skip
    console().print(table)


def _orders(report: StatusReport) -> None:
    from rich.table import Table

    rows = [(b.name, o) for b in report.bots for o in b.open_orders]
    if not rows:
        console().print("open orders: none")
        return
    table = Table(title="Open orders", title_justify="left")
    for col in ("bot", "client id", "side", "type", "qty", "price", "leg", "status"):
        table.add_column(col)
    for name, o in rows:
        table.add_row(
            name, o.client_order_id, o.side, o.order_type, str(o.qty), _money(o.price),
            "-" if o.leg_index is None else str(o.leg_index), o.status,
        )  # fmt: skip
    console().print(table)


def _decisions(report: StatusReport) -> None:
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
    if any_row:
        console().print(table)
    else:
        console().print("decisions: none yet")


def _performance(report: StatusReport) -> None:
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
    console().print(table)
