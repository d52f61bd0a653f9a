"""CandleStore: the database is the truth, the cache follows it, re-imports change nothing."""

from __future__ import annotations

import gzip
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from jiritsu.market.frames import empty_frame
from jiritsu.market.importer import read_candle_file
from jiritsu.market.store import CandleStore
from jiritsu.market.synth import synth_candles
from jiritsu_cli.main import app

T0 = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
MIN = 60_000


def _bars(minutes: list[int], price: float = 100.0) -> pl.DataFrame:
    rows = [(T0 + m * MIN, price, price + 1, price - 1, price + 0.5, 2.0) for m in minutes]
    return pl.DataFrame(rows, schema=empty_frame().schema, orient="row")


def test_write_is_idempotent_and_keeps_stored_bars(engine: Engine, tmp_path: Path) -> None:
    store = CandleStore(engine, tmp_path / "cache")
    first = store.write("BTC/USDT", "1", _bars([0, 1, 2, 5]))
    assert (first.inserted, first.already_stored) == (4, 0)
    again = store.write("BTCUSDT", "1", _bars([0, 1, 2, 5]))
    assert (again.inserted, again.already_stored) == (0, 4)
    # Overlapping import with different values for stored minutes: only new minutes land.
    overlap = store.write("BTCUSDT", "1", _bars([5, 6, 7], price=999.0))
    assert (overlap.inserted, overlap.already_stored) == (2, 1)
    loaded = store.load("BTCUSDT", "1")
    assert loaded["ts"].to_list() == [T0 + m * MIN for m in (0, 1, 2, 5, 6, 7)]
    assert loaded["open"].to_list() == [100.0, 100.0, 100.0, 100.0, 999.0, 999.0]
    assert store.count("BTCUSDT", "1") == 6


def test_cache_is_rebuilt_from_the_database(engine: Engine, tmp_path: Path) -> None:
    store = CandleStore(engine, tmp_path / "cache")
    store.write("BTCUSDT", "1", _bars(list(range(10))))
    store.cache.delete("BTCUSDT", "1")
    fresh = CandleStore(engine, tmp_path / "cache")
    frame = fresh.load("BTCUSDT", "1", T0 + 2 * MIN, T0 + 5 * MIN)
    assert frame["ts"].to_list() == [T0 + m * MIN for m in (2, 3, 4)]
    assert fresh.cache.info()[0].rows == 10


def test_info_reports_gaps_and_export_round_trips(engine: Engine, tmp_path: Path) -> None:
    store = CandleStore(engine, tmp_path / "cache")
    store.write("BTCUSDT", "1", _bars([0, 1, 2, 6, 7, 20]))
    (series,) = store.info()
    assert (series.symbol, series.interval, series.rows) == ("BTCUSDT", "1", 6)
    assert (series.first_ts, series.last_ts) == (T0, T0 + 20 * MIN)
    assert (series.gaps.count, series.gaps.missing_bars) == (2, 3 + 12)
    for name in ("out.csv", "out.csv.gz", "out.parquet"):
        target = tmp_path / name
        assert store.export("BTCUSDT", "1", target, start_ms=T0 + MIN, end_ms=T0 + 7 * MIN) == 3
        back = read_candle_file(target).frame
        assert back["ts"].to_list() == [T0 + MIN, T0 + 2 * MIN, T0 + 6 * MIN]
    with gzip.open(tmp_path / "out.csv.gz", "rt") as handle:
        assert handle.readline().strip() == "ts,open,high,low,close,volume"


runner = CliRunner()


def test_data_commands_end_to_end(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "ts,open,high,low,close,volume\n"
        f"{T0},100,101,99,100.5,1\n"
        f"{T0 + MIN},100,99,98,100.5,1\n"  # high below open: line 3
        f"{T0 + 2 * MIN},100,101,99,nan,1\n"  # NaN: line 4
    )
    result = runner.invoke(app, ["data", "import", str(bad)])
    assert result.exit_code == 2
    assert "line 3" in result.output
    assert "line 4" in result.output
    assert "Traceback" not in result.output
    info = runner.invoke(app, ["data", "info"])
    assert info.exit_code == 0
    assert "no candles stored yet" in info.output  # the rejected file imported nothing

    skipped = runner.invoke(app, ["data", "import", str(bad), "--skip-bad", "-s", "ETH/USDT"])
    assert skipped.exit_code == 0, skipped.output
    assert "1 new bars stored" in skipped.output

    synth = runner.invoke(app, ["data", "synth", "--days", "2", "--seed", "7"])
    assert synth.exit_code == 0, synth.output
    assert "2,880 new bars stored" in synth.output
    again = runner.invoke(app, ["data", "synth", "--days", "2", "--seed", "7"])
    assert "0 new bars stored, 2,880 already present" in again.output

    out = tmp_path / "export.parquet"
    exported = runner.invoke(app, ["data", "export", str(out), "--from", "2024-01-02"])
    assert exported.exit_code == 0, exported.output
    frame = pl.read_parquet(out)
    assert frame.height == 1440
    assert frame["ts"][0] == T0 + 1440 * MIN
    assert frame.equals(synth_candles(days=2, seed=7).slice(1440))

    missing = runner.invoke(app, ["data", "import", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    bad_date = runner.invoke(app, ["data", "export", str(out), "--from", "yesterday"])
    assert bad_date.exit_code == 2


REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.mark.slow
def test_import_a_real_year_twice(tmp_path: Path) -> None:
    path = REAL / "bitfinex_BTCUSD_1m_2019.csv.gz"
    first = runner.invoke(app, ["data", "import", str(path), "-s", "BTCUSD"])
    assert first.exit_code == 0, first.output
    assert "512,727 new bars stored" in first.output
    assert "9,955 gaps, 12,873 missing bars" in first.output
    second = runner.invoke(app, ["data", "import", str(path), "-s", "BTCUSD"])
    assert "0 new bars stored, 512,727 already present" in second.output


class _RacedStore(CandleStore):
    """A store whose read of the stored minutes is followed, before its insert, by another
    process's write of the same minutes (the interleaving of two concurrent top-ups)."""

    def __init__(self, engine: Engine, cache_dir: Path, other: CandleStore, bars: pl.DataFrame):
        super().__init__(engine, cache_dir)
        self.other, self.bars = other, bars

    def _stored_ts(self, symbol: str, interval: str, lo: int, hi: int):  # type: ignore[no-untyped-def]
        stored = super()._stored_ts(symbol, interval, lo, hi)
        self.other.write(symbol, interval, self.bars)
        return stored


def test_concurrent_top_ups_of_the_same_minutes_both_succeed(
    engine: Engine, tmp_path: Path
) -> None:
    other = CandleStore(engine, tmp_path / "cache")
    store = _RacedStore(engine, tmp_path / "cache", other, _bars([3, 4]))
    stats = store.write("BTCUSDT", "1", _bars([0, 1, 2, 3, 4]))
    assert (stats.inserted, stats.already_stored) == (3, 2)
    assert store.count("BTCUSDT", "1") == 5
    assert store.load("BTCUSDT", "1")["ts"].to_list() == [T0 + m * MIN for m in range(5)]
