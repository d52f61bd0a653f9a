"""``jiritsu simulate``: the whole system over stored candles on a simulated clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, state

# (label, tuning kept, rebalancing kept): a variant only ever turns a job off
VARIANTS: tuple[tuple[str, bool, bool], ...] = (
    ("as configured", True, True),
    ("tuning off", False, True),
    ("tuning and rebalancing off", False, False),
)


def _day(text: str, what: str, end: bool = False) -> int:
    """Epoch ms of a UTC date or time; a bare date as --to means the end of that day."""
    from jiritsu.engine.loop import parse_replay

    lo, hi = parse_replay(f"{text}..") if not end else parse_replay(f"..{text}")
    found = hi if end else lo
    if found is None:
        from jiritsu.errors import UsageError

        raise UsageError(f"{what}: a date is required")
    return found


@handle_errors
def simulate(
    ctx: typer.Context,
    start: Annotated[
        str | None,
        typer.Option("--from", help="First simulated day (UTC; default: stored + 7 days)."),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option("--to", help="Last simulated day (UTC, inclusive; default: stored)."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Where the fresh database goes (default <data_dir>/sim)."),
    ] = None,
    no_tune: Annotated[bool, typer.Option("--no-tune", help="No monthly tuning.")] = False,
    no_rebalance: Annotated[
        bool, typer.Option("--no-rebalance", help="No rebalancing (phases still recorded).")
    ] = False,
    no_save_profit: Annotated[
        bool, typer.Option("--no-save-profit", help="No weekly profit saving.")
    ] = False,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare", help="Run as configured, tuning off, tuning and rebalancing off."
        ),
    ] = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write report.html and PNG charts here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Run the whole system (bots, breakers, rebalancing, profit saving, tuning) over stored
    candles on a simulated clock, into a fresh database; print the summary."""
    from jiritsu.simulate import SimOptions, stored_range

    loaded = state(ctx).loaded()
    first, last = stored_range(loaded) if start is None or end is None else (0, 0)
    start_ms = _day(start, "--from") if start else first
    end_ms = _day(end, "--to", end=True) if end else last
    base = data_dir or Path(loaded.settings.general.data_dir) / "sim"
    tune, rebalance, save_profit = not no_tune, not no_rebalance, not no_save_profit
    if not compare:
        opts = SimOptions(start_ms, end_ms, base, tune, rebalance, save_profit)
        doc = _run(loaded, opts, as_json, report)
        if as_json:
            typer.echo(json.dumps(doc, indent=2, default=str))
        else:
            _show(doc)
            if report is not None:
                console().print(f"report: {report / 'report.html'}", markup=False)
            console().print(f"database: {base / 'jiritsu.db'}", markup=False)
        return
    docs = []
    for i, (label, keep_tune, keep_rebalance) in enumerate(VARIANTS):
        where = base / f"compare-{i + 1}"
        opts = SimOptions(
            start_ms, end_ms, where, tune and keep_tune, rebalance and keep_rebalance, save_profit
        )
        doc = _run(loaded, opts, as_json, report / f"compare-{i + 1}" if report else None)
        doc["variant"] = label
        docs.append(doc)
    if as_json:
        typer.echo(json.dumps(docs, indent=2, default=str))
    else:
        _show_compare(docs)


def _run(loaded: Any, opts: Any, quiet: bool, report: Path | None) -> dict[str, Any]:
    from jiritsu.simulate import run_simulation
    from jiritsu.simulate.summary import summarize

    with _progress(opts, not quiet) as update, _story():
        opts.progress = update
        run = run_simulation(loaded, opts)
    doc = summarize(run)
    if report is not None:
        from jiritsu.simulate.report import write_report

        write_report(run, doc, report)
    return doc


@contextmanager
def _story() -> Iterator[None]:
    """Log a readable story: the simulation's own lines (jobs, breaker trips) and errors, not
    every event of every step (the summary lists them; --debug shows everything)."""
    import logging
    import sys

    if "--debug" in sys.argv:
        yield
        return
    # events and their alert echoes are in the database and the summary: not line by line
    levels = {
        "jiritsu": logging.ERROR,
        "jiritsu.events": logging.CRITICAL + 1,
        "jiritsu.notify": logging.CRITICAL + 1,
        "jiritsu.simulate": logging.INFO,
    }
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _progress(opts: Any, enabled: bool) -> Any:
    """A Rich progress bar over the simulated period, showing the simulated date."""

    @contextmanager
    def bar() -> Any:
        if not enabled:
            yield None
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from jiritsu.clock import from_ms

        total = opts.end_ms - opts.start_ms
        with Progress(
            "[bold]simulating", TextColumn("{task.description}"), BarColumn(),
            TimeElapsedColumn(), console=console(stderr=True), transient=True,
        ) as progress:  # fmt: skip
            task = progress.add_task("", total=total)
            last = [0]

            def update(t: int) -> None:
                if t - last[0] >= 3_600_000:  # redraw once per simulated hour at most
                    last[0] = t
                    progress.update(
                        task, completed=t - opts.start_ms, description=f"{from_ms(t):%Y-%m-%d}"
                    )

            yield update

    return bar()


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{x:+.2%}"


def _show(doc: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(title=f"Simulation {doc['from'][:10]} .. {doc['to'][:10]}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("start equity", f"{doc['start_equity']:,.2f}"),
        ("end equity (bots + savings)", f"{doc['end_equity']:,.2f}"),
        ("total return", _pct(doc["total_return"])),
        ("buy and hold (index)", _pct(doc["buy_and_hold_return"])),
        ("max drawdown", f"{doc['max_drawdown']:.2%}"),
        ("Sharpe (hourly, annualised)", f"{doc['sharpe']:.2f}"),
        ("profit saved", f"{doc['profit_saved']:,.2f}"),
        ("rebalance transfers", str(doc["transfers"])),
        ("weekly savings", str(doc["savings"])),
        (
            "tunings (applied)",
            f"{len(doc['tunings'])} ({sum(t['applied'] for t in doc['tunings'])})",
        ),
        ("breaker trips", str(len(doc["breaker_trips"]))),
        ("wall time", f"{doc['wall_seconds']:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    bots = Table(title="Bots", title_justify="left")
    for col in ("bot", "trades", "pnl", "fees", "end equity"):
        bots.add_column(col, justify="left" if col == "bot" else "right")
    for name, b in doc["bots"].items():
        end = "-" if b["end_equity"] is None else f"{b['end_equity']:,.2f}"
        bots.add_row(name, str(b["trades"]), f"{b['pnl']:+,.2f}", f"{b['fees']:,.2f}", end)
    out.print(bots)
    for t in doc["tunings"]:
        verdict = "applied" if t["applied"] else "kept"
        changes = ", ".join(f"{k.split('.')[-1]} {a} -> {b}" for k, (a, b) in t["changes"].items())
        out.print(f"tune {t['time'][:16]} {t['bot']}: {verdict} {escape(changes)}")
    for trip in doc["breaker_trips"]:
        out.print(
            f"[bold yellow]breaker[/] {trip['time'][:16]} {trip['scope']}: "
            f"{escape(trip['message'] or trip['breaker'] or '')}"
        )
    for bot, note in doc["advisors"].items():
        out.print(f"{bot}: {note}")


def _show_compare(docs: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table(
        title=f"Simulation {docs[0]['from'][:10]} .. {docs[0]['to'][:10]}: does it help?",
        title_justify="left",
    )
    table.add_column("figure")
    for d in docs:
        table.add_column(d["variant"], justify="right")
    table.add_column("buy and hold", justify="right")
    bh = docs[0]["buy_and_hold_return"]
    lines = [
        ("total return", lambda d: _pct(d["total_return"]), _pct(bh)),
        ("max drawdown", lambda d: f"{d['max_drawdown']:.2%}", ""),
        ("Sharpe", lambda d: f"{d['sharpe']:.2f}", ""),
        ("end equity", lambda d: f"{d['end_equity']:,.2f}", ""),
        ("profit saved", lambda d: f"{d['profit_saved']:,.2f}", ""),
        ("transfers / savings", lambda d: f"{d['transfers']} / {d['savings']}", ""),
        ("tunings applied", lambda d: str(sum(t["applied"] for t in d["tunings"])), ""),
        ("breaker trips", lambda d: str(len(d["breaker_trips"])), ""),
        ("wall time", lambda d: f"{d['wall_seconds']:.0f} s", ""),
    ]
    for name, fn, extra in lines:
        table.add_row(name, *(fn(d) for d in docs), extra)
    console().print(table)
