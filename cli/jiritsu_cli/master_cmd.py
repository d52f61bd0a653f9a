"""The master layer's commands: ``phase``, ``rebalance``, ``save-profit`` and ``snapshot``.

Each opens the database (exit 3 when it stays unreachable) and the runtime, calls one use-case of
:mod:`jiritsu.usecases.master` and renders the result. Exit codes: 0 ok, 1 a transfer failed or is
unknown (or earlier ones are still unsettled), 2 bad usage or not enough candles, 3 database
unreachable, 4 halted.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from jiritsu_cli.common import console, handle_errors, state

if TYPE_CHECKING:
    from jiritsu.master.phase import PhaseReading
    from jiritsu.master.profit import SaveResult
    from jiritsu.master.rebalance import RebalanceResult
    from jiritsu.master.snapshot import PortfolioSnapshot
    from jiritsu.runtime import Runtime

DryRunOpt = Annotated[
    bool, typer.Option("--dry-run", help="Measure and print the plan; move and record nothing.")
]


@contextmanager
def _runtime(ctx: typer.Context, *, require_keys: bool = True) -> Iterator[Runtime]:
    from jiritsu.db.migrate import open_database
    from jiritsu.runtime import build_runtime

    loaded = state(ctx).loaded()
    with (
        open_database(loaded) as engine,
        build_runtime(loaded, db=engine, require_keys=require_keys) as rt,
    ):
        yield rt


def _fmt(when: datetime) -> str:
    return f"{when:%Y-%m-%d %H:%M} UTC"


# --------------------------------------------------------------------------- phase


@handle_errors
def phase(
    ctx: typer.Context,
    at: Annotated[
        str | None, typer.Option("--at", help="Classify as of this UTC time (default: now).")
    ] = None,
    history: Annotated[
        str | None,
        typer.Option("--history", help="FROM..TO (UTC): the phase of every bar in the range."),
    ] = None,
    record: Annotated[
        bool | None,
        typer.Option(
            "--record/--no-record",
            help="Store the reading(s) in market_phases (default: yes; with --history: no).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Classify the market phase of the index symbol and show the numbers behind it."""
    from jiritsu.clock import parse_time
    from jiritsu.errors import UsageError
    from jiritsu.usecases import master

    if history and at:
        raise UsageError("--at and --history do not go together")
    if history:
        start_text, sep, end_text = history.partition("..")
        if not sep or not start_text or not end_text:
            raise UsageError("--history takes FROM..TO, e.g. 2024-01-01..2024-02-01")
        start, end = parse_time(start_text, "--history"), parse_time(end_text, "--history")
        with _runtime(ctx, require_keys=False) as rt:
            past = master.phase_history(rt, start, end, record=bool(record))
        _render_history(past.readings, past.added)
        return
    when = parse_time(at, "--at") if at else None
    with _runtime(ctx, require_keys=False) as rt:
        now = master.phase(rt, at=when, record=record is not False)
    _render_reading(now.reading, now.stored)


def _render_reading(reading: PhaseReading, stored: bool | None) -> None:
    from rich.table import Table

    out = console()
    table = Table(title=f"Market phase of {reading.symbol}: {reading.phase}", title_justify="left")
    table.add_column("number")
    table.add_column("value", justify="right")
    d = reading.details
    rows: list[tuple[str, str]] = [
        ("indicator", f"{reading.indicator} on {reading.timeframe} bars"),
        ("last closed bar", f"{_fmt(reading.bar_ts)} .. {_fmt(reading.close_ts)}"),
        ("close", f"{d['close']:,.2f}"),
    ]
    if reading.indicator == "EMA_Cross":
        rows += [
            (f"EMA({d['short_period']})", f"{d['ema_short']:,.2f}"),
            (f"EMA({d['long_period']})", f"{d['ema_long']:,.2f}"),
            ("spread", f"{d['spread'] * 100:+.3f} %"),
            (f"slope over {d['slope_bars']} bars", f"{d['slope'] * 100:+.3f} %"),
            ("weak / strong", f"{d['weak_pct'] * 100:g} % / {d['strong_pct'] * 100:g} %"),
        ]
    else:
        rows += [
            (f"ADX({d['long_period']})", f"{d['adx']:.2f}"),
            (f"+DI({d['short_period']})", f"{d['plus_di']:.2f}"),
            (f"-DI({d['short_period']})", f"{d['minus_di']:.2f}"),
            ("trend / strong", f"{d['adx_trend']:g} / {d['adx_strong']:g}"),
        ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    if reading.stale:
        out.print(
            f"[yellow]stale:[/] the newest closed bar closed {_fmt(reading.close_ts)}; "
            "backfill candles for a current reading (jiritsu data backfill)"
        )
    if stored is not None:
        out.print("recorded in market_phases" if stored else "already recorded for this bar")


def _render_history(readings: list[PhaseReading], added: int | None) -> None:
    from rich.table import Table

    from jiritsu.master.phase import phase_shares

    out = console()
    if not readings:
        out.print("no closed bars with enough history in that range")
        return
    spans: list[tuple[PhaseReading, PhaseReading, int]] = []
    for r in readings:
        if spans and spans[-1][0].phase == r.phase:
            first, _, count = spans[-1]
            spans[-1] = (first, r, count + 1)
        else:
            spans.append((r, r, 1))
    table = Table(
        title=f"Phases of {readings[0].symbol} ({readings[0].indicator}, "
        f"{readings[0].timeframe} bars)",
        title_justify="left",
    )
    for col in ("from (bar close)", "to (bar close)", "phase", "bars"):
        table.add_column(col)
    for first, last, count in spans:
        table.add_row(_fmt(first.close_ts), _fmt(last.close_ts), first.phase, str(count))
    out.print(table)
    shares = ", ".join(f"{p} {s * 100:.0f} %" for p, s in phase_shares(readings).items())
    out.print(f"{len(readings)} bars: {shares}")
    if added is not None:
        out.print(f"recorded {added} new reading(s) in market_phases")


# --------------------------------------------------------------------------- rebalance


@handle_errors
def rebalance(ctx: typer.Context, dry_run: DryRunOpt = False) -> None:
    """Move capital between sub-accounts to the market phase's allocation."""
    from jiritsu.usecases import master

    with _runtime(ctx) as rt:
        result = master.rebalance(rt, dry_run=dry_run)
    _render_rebalance(result)
    if result.exit_code:
        raise typer.Exit(int(result.exit_code))


def _render_rebalance(result: RebalanceResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    plan = result.plan
    why = result.reading.summary() if result.reading is not None else plan.phase
    out.print(f"phase: {escape(why)}")
    table = Table(
        title=f"Allocation for {plan.phase} (total {plan.total:.2f}, band ±{plan.band})",
        title_justify="left",
    )
    for col in ("bot", "equity", "available", "share", "target", "deviation", ""):
        table.add_column(col, justify="right" if col not in ("bot", "") else "left")
    for b in plan.bots:
        table.add_row(
            b.bot,
            f"{b.equity:.2f}",
            f"{b.available:.2f}",
            f"{float(b.share) * 100:.1f} %",
            f"{b.target:.2f}",
            f"{b.deviation:+.2f}",
            "outside band" if b.out_of_band else "",
        )
    out.print(table)
    for bot, why_not in result.excluded.items():
        out.print(f"{escape(bot)}: not taking part ({escape(why_not)})")
    if result.dry_run:
        for t in plan.transfers:
            out.print(f"would move {t.amount:.2f} USDT {t.from_bot} -> {t.to_bot}")
        if result.unsettled:
            out.print(
                f"[yellow]{len(result.unsettled)} earlier transfer(s) unsettled:[/] a real run "
                "settles them first and moves nothing until they are"
            )
    else:
        for o in result.outcomes:
            style = "green" if o.ok else "bold red"
            error = f" ({escape(o.error)})" if o.error and not o.ok else ""
            out.print(
                f"[{style}]{o.status}[/]: {o.amount:.2f} USDT {o.from_account} -> {o.to_account} "
                f"[dim]{o.key}[/]{error}"
            )
        if result.settled is not None:
            for o in result.settled.settled:
                out.print(f"settled earlier transfer {o.key}: {o.status}")
    for note in plan.skipped:
        out.print(f"[dim]{escape(note)}[/]")
    if not plan.transfers:
        out.print("nothing to move")
    elif result.dry_run:
        out.print("dry run: nothing moved, nothing recorded")


# --------------------------------------------------------------------------- save-profit


@handle_errors
def save_profit(
    ctx: typer.Context,
    dry_run: DryRunOpt = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Save even outside the scheduled day and hour (still once a week)."
        ),
    ] = False,
) -> None:
    """Sweep a share of each bot's profit since the last saving to the savings account."""
    from jiritsu.usecases import master

    with _runtime(ctx) as rt:
        result = master.save_profit(rt, dry_run=dry_run, force=force)
    _render_save(result)
    if result.exit_code:
        raise typer.Exit(int(result.exit_code))


def _render_save(result: SaveResult) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    window = result.window
    if result.status == "not_due":
        out.print(
            f"not due: the saving of {_fmt(window.scheduled)} could run until "
            f"{_fmt(window.due_until)}; the next is {_fmt(window.next)} (--force saves now)"
        )
        return
    if result.status == "already_saved" and result.plan is None:
        out.print(f"already saved for {_fmt(window.scheduled)}: nothing more moves this week")
        return
    plan = result.plan
    assert plan is not None
    table = Table(
        title=f"Profit saving for {_fmt(window.scheduled)} (rate {float(plan.rate) * 100:g} %)",
        title_justify="left",
    )
    for col in ("bot", "equity", "realised PnL", "accounted", "profit", "to save", "note"):
        table.add_column(col, justify="left" if col in ("bot", "note") else "right")
    for line in plan.bots:
        table.add_row(
            line.bot,
            f"{line.equity:.2f}",
            f"{line.realised:+.2f}",
            f"{line.baseline.accounted:+.2f}",
            f"{line.profit:+.2f}",
            f"{line.amount:.2f}",
            escape(line.note or ""),
        )
    out.print(table)
    if result.status == "already_saved":
        out.print(f"already saved for {_fmt(window.scheduled)}: a real run moves nothing more")
        return
    if result.status == "dry_run":
        out.print(f"dry run: would save {plan.total:.2f} USDT; nothing moved, nothing recorded")
        return
    for o in result.outcomes:
        style = "green" if o.ok else "bold red"
        error = f" ({escape(o.error)})" if o.error and not o.ok else ""
        out.print(
            f"[{style}]{o.status}[/]: {o.amount:.2f} USDT {o.from_account} -> savings "
            f"[dim]{o.key}[/]{error}"
        )
    out.print(f"saved {result.saved:.2f} USDT")
    if result.snapshot is not None:
        out.print(f"savings now {result.snapshot.profit_saved_balance:.2f} USDT")
    for problem in result.problems:
        out.print(f"[bold red]problem:[/] {escape(problem)}")


# --------------------------------------------------------------------------- snapshot


@handle_errors
def snapshot(ctx: typer.Context) -> None:
    """Record a portfolio snapshot: each bot's equity, the total and the profit saved."""
    from jiritsu.usecases import master

    with _runtime(ctx) as rt:
        snap = master.snapshot(rt)
    _render_snapshot(snap)


def _render_snapshot(snap: PortfolioSnapshot) -> None:
    from rich.table import Table

    table = Table(
        title=f"Portfolio snapshot #{snap.id} at {_fmt(snap.timestamp)}", title_justify="left"
    )
    for col in ("bot", "equity", "available"):
        table.add_column(col, justify="left" if col == "bot" else "right")
    for b in snap.bots:
        table.add_row(b.bot, f"{b.equity:.2f}", f"{b.available:.2f}")
    table.add_row("total (trading)", f"{snap.total_balance_usdt:.2f}", "")
    table.add_row("profit saved", f"{snap.profit_saved_balance:.2f}", "")
    out = console()
    out.print(table)
    out.print(f"phase: {snap.phase or 'none recorded yet'}")
