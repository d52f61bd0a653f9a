"""``jiritsu backtest``: a bot's real strategy over stored candles (one run or a grid)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, progress_bar, state

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jiritsu.backtest.runner import BacktestResult


@contextmanager
def open_engine(loaded: Any) -> Iterator[Any]:
    """A migrated database engine for the command's duration."""
    from jiritsu.db.migrate import open_database

    with open_database(loaded) as engine:
        yield engine


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{x:+.2%}"


def _num(x: Any) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def summary_rows(m: dict[str, Any]) -> list[tuple[str, str]]:
    """The metrics as (label, text) rows for the Rich table."""
    return [
        ("initial equity", f"{m['initial_equity']:,.2f}"),
        ("final equity", f"{m['final_equity']:,.2f}"),
        ("total return", _pct(m["total_return"])),
        ("CAGR", _pct(m["cagr"])),
        ("Sharpe", _num(m["sharpe_ratio"])),
        ("Sortino", _num(m["sortino_ratio"])),
        ("max drawdown", f"{m['max_drawdown']:.2%}"),
        ("win rate", f"{m['win_rate']:.1%}"),
        ("profit factor", "inf" if m["profit_factor"] is None else _num(m["profit_factor"])),
        ("trades", str(m["trade_count"])),
        ("exposure", f"{m['exposure']:.1%}"),
        ("fees paid", f"{m['fees_paid']:,.4f}"),
        ("bars", f"{m['bars']:,}"),
    ]


def _show(result: BacktestResult, run_id: int, gaps: str) -> None:
    from datetime import datetime, timezone

    from rich.table import Table

    from jiritsu.backtest.plot import sparkline

    def d(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")

    table = Table(title=f"{result.bot} {result.symbol} {result.timeframe}m  run #{run_id}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("period", f"{d(result.start_ms)} .. {d(result.end_ms)}")
    for label, text in summary_rows(result.metrics.as_dict()):
        table.add_row(label, text)
    out = console()
    out.print(table)
    out.print(f"equity {sparkline(result.equity)}", markup=False)
    out.print(f"gaps: {gaps}", markup=False)
    if result.portfolio:
        out.print(f"assumed: {result.portfolio}", markup=False)
    for note in result.stopped_notes():
        out.print(f"[bold yellow]breaker:[/] {note}")


def _ms(text: str | None) -> int | None:
    from jiritsu_cli.data_cmd import _ms as parse

    return parse(text)


@handle_errors
def backtest(
    ctx: typer.Context,
    bot: Annotated[str, typer.Option("--bot", "-b", help="Sub-bot name.")],
    from_: Annotated[
        str | None, typer.Option("--from", help="Start (YYYY-MM-DD; default: stored + 2 days).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="End, exclusive (default: stored).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a parameter: key=value.")
    ] = None,
    grid: Annotated[
        list[str] | None,
        typer.Option("--grid", help="Sweep a parameter: key=FROM:TO:STEP (ends included)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the equity chart to this PNG.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Grid processes (default optimizer.workers).")
    ] = None,
) -> None:
    """Backtest a bot's real strategy over stored candles; the run is saved for the dashboard."""
    from jiritsu.backtest.portfolio import load_portfolio
    from jiritsu.backtest.results import save_run
    from jiritsu.backtest.runner import load_data, recorded_decisions
    from jiritsu.clock import RealClock
    from jiritsu.market.gaps import GapReport
    from jiritsu.runtime import market_data
    from jiritsu.tune.grid import GridJob, check_grid, expand, parse_grid, parse_sets, run_grid

    loaded = state(ctx).loaded()
    settings = loaded.settings
    names = [b.name for b in settings.sub_bots]
    if bot not in names:
        _unknown(bot, names)
    sets = parse_sets(set_ or [], bot, names, settings)
    if sets:
        settings = settings.with_params(sets)
    candidates = None
    if grid:  # a bad grid is a usage error before any data is loaded
        spec = parse_grid(grid, bot, names, settings)
        check_grid(settings, spec)
        candidates = expand(spec)
    with open_engine(loaded) as engine:
        with progress_bar("loading candles", not as_json):
            market = market_data(settings, engine, RealClock())
            data, start, end = load_data(market, settings, bot, _ms(from_), _ms(to))
            portfolio = load_portfolio(market, settings, bot, start, end, data)
        lo, hi = int(data.ts.searchsorted(start)), int(data.ts.searchsorted(end))
        gaps = GapReport.from_ts(data.ts[lo:hi].astype("int64"), 60_000).summary()
        if candidates is not None:
            job = GridJob(settings, bot, data, start, end, portfolio=portfolio)
            n = workers if workers is not None else settings.optimizer.workers
            with progress_bar(f"{len(candidates)} runs", not as_json) as update:
                found = run_grid(job, candidates, workers=n, progress=update)
            _show_grid(found, settings.optimizer.target_metric, as_json)
            return
        decisions = None
        if settings.bot(bot).advisor in ("gemini", "hybrid"):
            decisions = recorded_decisions(engine, bot, start, end)
        with progress_bar("backtesting", not as_json) as update:
            update(0, 1)
            result = portfolio.run(settings, bot, data, start, end, decisions=decisions)
            update(1, 1)
        run_id = save_run(engine, result, source="cli")
    if plot is not None:
        from jiritsu.backtest.plot import plot_equity

        plot_equity(result, plot)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "run_id": run_id,
                    "bot": result.bot,
                    "from": result.start_ms,
                    "to": result.end_ms,
                    "params": {k: float(v) for k, v in result.params.items()},
                    "metrics": result.metrics.as_dict(),
                    "gaps": gaps,
                    "replayed_decisions": len(decisions) if decisions is not None else None,
                    "portfolio": result.portfolio,
                    "breaker_trips": result.breaker_trips(),
                    "trades": result.trades(),
                },
                indent=2,
            )
        )
        return
    _show(result, run_id, gaps)
    if decisions is not None:
        console().print(
            f"advisor: {len(decisions)} recorded decisions replayed; the rule decided elsewhere"
        )
    if plot is not None:
        console().print(f"chart: {plot}", markup=False)


def _unknown(bot: str, names: list[str]) -> None:
    from jiritsu.errors import UsageError

    raise UsageError(f"no sub-bot named {bot!r} (known: {', '.join(names)})")


def _show_grid(found: list[Any], target: str, as_json: bool) -> None:
    from jiritsu.tune.walkforward import score

    rows = [(c, score(c.metrics, target) if c.metrics else None) for c in found]
    ranked = sorted(rows, key=lambda r: (r[1] is None, -(r[1] or 0.0), r[0].index))
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "params": {k: float(v) for k, v in c.params.items()},
                        "score": s,
                        "metrics": c.metrics.as_dict() if c.metrics else None,
                        "error": c.error,
                    }
                    for c, s in ranked
                ],
                indent=2,
            )
        )
        return
    from rich.table import Table

    table = Table(title=f"grid: {len(found)} runs, ranked by {target}")
    keys = sorted(found[0].params) if found else []
    for k in keys:
        table.add_column(k.split(".")[-1], justify="right")
    for col in ("return", "Sharpe", "max DD", "trades"):
        table.add_column(col, justify="right")
    for c, _s in ranked[:20]:
        m = c.metrics
        vals = [str(c.params[k]) for k in keys]
        if m is None:
            table.add_row(*vals, "error", "", "", "")
            continue
        table.add_row(
            *vals, f"{m.total_return:+.2%}", f"{m.sharpe_ratio:.3f}", f"{m.max_drawdown:.2%}",
            str(m.trade_count),
        )  # fmt: skip
    console().print(table)
