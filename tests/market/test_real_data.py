"""The importer and the gap report on the real Bitfinex files in ../shared/data must agree with
the figures SOURCE.md records for them (rows, missing minutes, gap events, longest gap)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from jiritsu.market.cache import CandleCache
from jiritsu.market.gaps import GapReport
from jiritsu.market.importer import read_candle_file

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

# From SOURCE.md: rows, missing minutes, gap events, longest gap (minutes).
SOURCE_FIGURES = {
    2017: (505_209, 20_391, 14_203, 37),
    2018: (520_499, 5_101, 3_992, 67),
    2019: (512_727, 12_873, 9_955, 197),
}


def _year_ms(year: int) -> int:
    return int(datetime(year, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


def _source(year: int) -> Path:
    path = DATA / f"bitfinex_BTCUSD_1m_{year}.csv.gz"
    assert path.exists(), f"{path} is missing: shared/data must sit beside the repository"
    return path


@pytest.mark.parametrize("year", sorted(SOURCE_FIGURES))
def test_real_year_matches_source_md(year: int) -> None:
    rows, missing, events, longest = SOURCE_FIGURES[year]
    result = read_candle_file(_source(year))
    assert result.bad_rows == []
    assert result.duplicates_dropped == 0
    frame = result.frame
    assert frame.height == rows
    # the files are clipped to the calendar year and start and end on its first/last minute,
    # so the missing minutes of the year are exactly the gaps between bars
    assert frame["ts"][0] == _year_ms(year)
    assert frame["ts"][-1] == _year_ms(year + 1) - 60_000
    report = GapReport.from_ts(frame["ts"], 60_000)
    assert report.missing_bars == missing
    assert report.count == events
    assert report.longest is not None
    assert report.longest.missing_bars == longest
    assert report.present + report.missing_bars == report.expected


def test_real_year_round_trips_through_the_cache(tmp_path: Path) -> None:
    frame = read_candle_file(_source(2018)).frame
    cache = CandleCache(tmp_path / "cache")
    assert cache.write("BTCUSD", "1", frame) == frame.height
    assert cache.load("BTCUSD", "1", _year_ms(2018), _year_ms(2019)).equals(frame)
    assert cache.write("BTCUSD", "1", frame) == 0
