"""``jiritsu strategies list|check``: the strategies a bot can name, and a lookahead check.

The library does the work (:mod:`jiritsu.strategy.registry`, :mod:`jiritsu.strategy.check`);
these commands load, call and render. Only typer is imported at module level.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from jiritsu_cli.common import console, fail, handle_errors, new_app, state

app = new_app("List the strategies bots can use and check one for lookahead.")

JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("list")
@handle_errors
def list_(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Every strategy (built-in, your files, installed packages): source and parameters."""
    from rich.table import Table

    from jiritsu.strategy.registry import describe, registry, strategy_paths

    settings = state(ctx).loaded().settings
    reg = registry(strategy_paths(settings))
    rows = describe(reg.all())
    broken = [{"where": b.where, "reason": b.reason} for b in reg.broken]
    if as_json:
        typer.echo(json.dumps({"strategies": rows, "broken": broken}, default=str, indent=2))
        return
    out = console()
    table = Table("name", "source", "parameters (default, bounds)")
    for row in rows:
        params = "\n".join(
            f"{p['name']} = {p['default']!r}" + (f"  ({p['bounds']})" if p["bounds"] else "")
            for p in row["params"]
        )
        table.add_row(row["name"], f"{row['origin']}: {row['source']}", params or "-")
    out.print(table)
    for b in broken:
        out.print(f"[bold red]failed to load[/] {b['where']}: {b['reason']}", markup=True)


@app.command("check")
@handle_errors
def check(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Strategy name (see `jiritsu strategies list`).")],
    bot: Annotated[
        str | None,
        typer.Option("--bot", "-b", help="Use this bot's symbol, timeframe and parameters."),
    ] = None,
    from_: Annotated[str | None, typer.Option("--from", help="Start (YYYY-MM-DD).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End, exclusive (YYYY-MM-DD).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Recompute a strategy on stored candles with the future deleted, altered and with less
    history; exit 1 naming the first bar whose decision moved."""
    from jiritsu.backtest.runner import load_data
    from jiritsu.clock import RealClock
    from jiritsu.errors import UsageError
    from jiritsu.market.data import LOOKBACK_BARS
    from jiritsu.runtime import market_data
    from jiritsu.strategy.check import check_strategy
    from jiritsu.strategy.registry import registry, resolve, strategy_paths
    from jiritsu_cli.backtest_cmd import _ms, open_engine

    loaded = state(ctx).loaded()
    settings = loaded.settings
    strategy = registry(strategy_paths(settings)).get(name).strategy
    chosen = _pick_bot(settings, name, bot)
    params = strategy.Params()
    if chosen.strategy_params.rule == name:
        params = resolve(settings, chosen)[1]
    with open_engine(loaded) as engine:
        market = market_data(settings, engine, RealClock())
        data, _start, _end = load_data(market, settings, chosen.name, _ms(from_), _ms(to))
    bars = data.bars(chosen.timeframe)
    if len(bars) < 3:
        raise UsageError("too few stored bars to check: load more candles first")
    report = check_strategy(strategy, params, bars, history=LOOKBACK_BARS)
    _render(report, chosen, params, as_json)
    first = report.first
    if first is not None:
        raise fail(
            f"{name}: bar {_when(first.ts)} (#{first.index}) decides "
            f"{_word(first.full)} over all the data but {_word(first.changed)} with the "
            f"{first.experiment} (cut at #{first.cut}); "
            f"{len(report.offending_bars())} bar(s) in all"
        )


def _pick_bot(settings: Any, name: str, bot: str | None) -> Any:
    from jiritsu.errors import UsageError

    if bot is not None:
        try:
            return settings.bot(bot)
        except KeyError:
            known = ", ".join(settings.bot_names)
            raise UsageError(f"no sub-bot named {bot!r} (known: {known})") from None
    users = [b for b in settings.sub_bots if b.strategy_params.rule == name]
    return (users or settings.enabled_bots or settings.sub_bots)[0]


def _when(ms: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _word(decision: tuple[int, float]) -> str:
    action, confidence = decision
    word = {1: "BUY", -1: "SELL", 0: "HOLD"}[action]
    return word if action == 0 else f"{word} {confidence:.3f}"


def _render(report: Any, bot: Any, params: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({
            "strategy": report.strategy, "bot": bot.name, "symbol": bot.symbol,
            "timeframe": bot.timeframe, "params": params.model_dump(), "bars": report.bars,
            "history": report.history, "cuts": report.cuts, "ok": report.ok,
            "offending_bars": [
                {"index": f.index, "ts": f.ts, "experiment": f.experiment, "cut": f.cut,
                 "full": list(f.full), "changed": list(f.changed)}
                for f in sorted(report.findings, key=lambda f: (f.index, f.experiment))
            ],
        }, indent=2))  # fmt: skip
        return
    out = console()
    out.print(
        f"{report.strategy} on {bot.symbol} {bot.timeframe} ({bot.name}'s bars): "
        f"{report.bars} bars, {len(report.cuts)} cut points, live history {report.history} bars"
    )
    if report.ok:
        out.print("[green]OK[/]: no decision depends on later bars or on the history loaded",
                  markup=True)  # fmt: skip
        return
    seen: set[int] = set()
    for f in sorted(report.findings, key=lambda f: f.index):
        if f.index in seen or len(seen) >= 20:
            continue
        seen.add(f.index)
        out.print(f"  bar #{f.index} {_when(f.ts)}: {_word(f.full)} -> {_word(f.changed)} "
                  f"({f.experiment}, cut #{f.cut})")  # fmt: skip
