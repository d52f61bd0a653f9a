"""``jiritsu data``: candles in and out of the store (database + Parquet cache)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, new_app, progress_bar, state

if TYPE_CHECKING:
    from collections.abc import Iterator

    from jiritsu.market.store import CandleStore

app = new_app("Market data: backfill, import, synthesise, inspect and export candles.")

SymbolOpt = Annotated[
    str | None,
    typer.Option("--symbol", "-s", help="Symbol, e.g. BTCUSDT or BTC/USDT (default: index)."),
]
IntervalOpt = Annotated[str, typer.Option("--interval", "-i", help="Bybit interval (1, 5, 60…).")]


@contextmanager
def _store(ctx: typer.Context, *, create: bool = True) -> Iterator[tuple[CandleStore, Any]]:
    from jiritsu.db.migrate import open_database
    from jiritsu.market.store import CandleStore, cache_root

    loaded = state(ctx).loaded()
    with open_database(loaded, create=create) as engine:
        yield CandleStore(engine, cache_root(loaded.settings.general.data_dir)), loaded


def _symbol(symbol: str | None, loaded: Any) -> str:
    from jiritsu.market.symbols import normalize_symbol

    return normalize_symbol(symbol or loaded.settings.master_bot.index_symbol)


def _ms(text: str | None) -> int | None:
    if not text:
        return None
    from jiritsu.clock import parse_time, to_ms

    return to_ms(parse_time(text, "date"))


def _report(stored: Any, gaps: Any, source: str) -> None:
    out = console()
    out.print(
        f"{source}: [bold]{stored.inserted:,}[/] new bars stored, "
        f"{stored.already_stored:,} already present"
    )
    if gaps is not None:
        out.print(f"gaps: {gaps.summary()}", markup=False)


@app.command("import")
@handle_errors
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV (optionally .gz) or Parquet file.")],
    symbol: SymbolOpt = None,
    interval: IntervalOpt = "1",
    skip_bad: Annotated[
        bool, typer.Option("--skip-bad", help="Import the good rows of a file with bad rows.")
    ] = False,
) -> None:
    """Import candles (ts,open,high,low,close,volume; ts in UTC ms or ISO 8601)."""
    from jiritsu.market.frames import bucket_offset_ms, interval_ms
    from jiritsu.market.gaps import GapReport
    from jiritsu.market.importer import read_candle_file

    bar_ms, offset_ms = interval_ms(interval), bucket_offset_ms(interval)
    with _store(ctx) as (store, loaded):
        result = read_candle_file(file, skip_bad=skip_bad, bar_ms=bar_ms, offset_ms=offset_ms)
        if result.bad_rows:
            console(stderr=True).print(
                f"skipped {len(result.bad_rows)} bad rows (first: line {result.bad_rows[0].line}:"
                f" {result.bad_rows[0].reason})",
                markup=False,
            )
        with progress_bar("storing") as progress:
            stats = store.write(_symbol(symbol, loaded), interval, result.frame, progress=progress)
        gaps = GapReport.from_ts(result.frame["ts"].to_numpy(), bar_ms)
        _report(stats, gaps, str(file))


@app.command()
@handle_errors
def synth(
    ctx: typer.Context,
    symbol: SymbolOpt = None,
    days: Annotated[int, typer.Option("--days", min=1, max=3660, help="Days of bars.")] = 30,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, same market.")] = 42,
    start: Annotated[
        str | None, typer.Option("--start", help="First bar (UTC date), default 2024-01-01.")
    ] = None,
) -> None:
    """Generate deterministic synthetic 1-minute candles (trends, ranges, crashes)."""
    from jiritsu.market.synth import synth_candles

    start_ms = _ms(start)
    when = None if start_ms is None else datetime.fromtimestamp(start_ms / 1000, tz=timezone.utc)
    with _store(ctx) as (store, loaded):
        frame = synth_candles(days=days, seed=seed, start=when)
        with progress_bar("storing") as progress:
            stats = store.write(_symbol(symbol, loaded), "1", frame, progress=progress)
        _report(stats, None, f"synthetic (seed {seed}, {days} days)")


@app.command()
@handle_errors
def info(
    ctx: typer.Context,
    gaps: Annotated[bool, typer.Option("--gaps/--no-gaps", help="Compute gap reports.")] = True,
) -> None:
    """Stored candles per symbol and interval, with their gaps."""
    from rich.table import Table

    with _store(ctx, create=False) as (store, _):
        series = store.info(with_gaps=gaps)
    if not series:
        console().print("no candles stored yet: try `jiritsu data synth` or `jiritsu data import`")
        return
    table = Table(title="Stored candles", title_justify="left")
    for col in ("symbol", "interval", "bars", "first (UTC)", "last (UTC)", "cached", "gaps"):
        table.add_column(col)

    def fmt(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")

    for s in series:
        gap_text = "-" if s.gaps is None else f"{s.gaps.count:,} ({s.gaps.missing_bars:,} bars)"
        if s.problem:
            gap_text = f"bad data: {s.problem}"
        table.add_row(
            s.symbol, s.interval, f"{s.rows:,}", fmt(s.first_ts), fmt(s.last_ts),
            f"{s.cached_rows:,}", gap_text,
        )  # fmt: skip
    console().print(table)


@app.command()
@handle_errors
def export(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Target .csv, .csv.gz or .parquet file.")],
    symbol: SymbolOpt = None,
    interval: IntervalOpt = "1",
    from_: Annotated[str | None, typer.Option("--from", help="First bar (UTC).")] = None,
    to: Annotated[str | None, typer.Option("--to", help="End (UTC, exclusive).")] = None,
) -> None:
    """Export stored candles to a file."""
    with _store(ctx, create=False) as (store, loaded):
        rows = store.export(
            _symbol(symbol, loaded), interval, file, start_ms=_ms(from_), end_ms=_ms(to)
        )
    console().print(f"wrote {rows:,} bars to {file}", markup=False)


@app.command()
@handle_errors
def backfill(
    ctx: typer.Context,
    symbol: SymbolOpt = None,
    interval: IntervalOpt = "1",
    days: Annotated[float, typer.Option("--days", min=0.001, max=3660, help="Days back.")] = 30,
    category: Annotated[
        str, typer.Option("--category", help="linear or spot market data.")
    ] = "linear",
) -> None:
    """Download candles from Bybit's public API; resumes an interrupted run."""
    from jiritsu.errors import UsageError
    from jiritsu.exchange.types import CATEGORIES, one_of
    from jiritsu.market.backfill import backfill as run_backfill
    from jiritsu.runtime import public_client

    try:
        market = one_of(category, CATEGORIES, "category")
    except ValueError:
        raise UsageError(f"--category must be linear or spot, not {category!r}") from None
    with _store(ctx) as (store, loaded):
        exchange = public_client(loaded)
        try:
            with progress_bar("backfilling") as progress:
                result = run_backfill(
                    exchange, store, _symbol(symbol, loaded), interval,
                    days=days, category=market, progress=progress,
                )  # fmt: skip
        finally:
            exchange.close()
    out = console()
    out.print(
        f"{result.symbol} {result.interval}: {result.pages} pages, [bold]{result.inserted:,}[/] "
        f"new bars, {result.already_stored:,} already stored"
    )
    out.print(f"gaps: {result.gaps.summary()}", markup=False)
