"""ReplaySource: stored candles revealed by a simulated clock, never a bar before it closed."""

from __future__ import annotations

import polars as pl
import pytest

from jiritsu.clock import SimClock
from jiritsu.errors import UsageError
from jiritsu.market.frames import CANDLE_SCHEMA
from jiritsu.market.source import Bar, MarketSource, ReplaySource

T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
M = 60_000


def frame(rows: list[tuple[int, float, float, float, float]]) -> pl.DataFrame:
    """Bars from (minute, open, high, low, close), volume 1."""
    return pl.DataFrame(
        [(T0 + m * M, o, h, lo, c, 1.0) for m, o, h, lo, c in rows],
        schema=CANDLE_SCHEMA,
        orient="row",
    )


def ten_minutes() -> pl.DataFrame:
    # minute m: open 100+m, high 101+m, low 99+m, close 100.5+m
    return frame([(m, 100.0 + m, 101.0 + m, 99.0 + m, 100.5 + m) for m in range(10)])


def test_only_closed_bars_are_visible() -> None:
    clock = SimClock(T0)
    source = ReplaySource(clock, {"BTCUSDT": ten_minutes()})
    assert isinstance(source, MarketSource)
    assert source.price("BTCUSDT") is None  # minute 0 is still forming
    assert source.last_closed_bar("BTCUSDT") is None
    clock.advance_to(T0 + M - 1)
    assert source.price("BTCUSDT") is None  # one millisecond before its close
    clock.advance_to(T0 + M)
    assert source.last_closed_bar("BTCUSDT") == Bar(T0, 100.0, 101.0, 99.0, 100.5, 1.0)
    clock.advance_to(T0 + 3 * M + 30_000)
    assert source.price("BTCUSDT") == 102.5  # close of minute 2
    assert source.price("BTCUSDT", now_ms=T0 + 2 * M) == 101.5  # an explicit earlier now


def test_bars_between_is_half_open_and_capped_at_now() -> None:
    clock = SimClock(T0 + 4 * M)
    source = ReplaySource(clock, {"btc/usdt": ten_minutes()})  # symbols are normalised
    got = source.bars_between("BTCUSDT", T0 + M, T0 + 100 * M)
    assert got["ts"].to_list() == [T0 + M, T0 + 2 * M, T0 + 3 * M]  # minute 4 not closed
    got = source.bars_between("BTCUSDT", T0 + M, T0 + 3 * M)
    assert got["ts"].to_list() == [T0 + M, T0 + 2 * M]
    assert source.bars_between("BTCUSDT", T0 + 5 * M, T0 + 9 * M).height == 0
    assert source.bars_between("ETHUSDT", T0, T0 + 9 * M).height == 0
    assert source.price("ETHUSDT") is None


def test_gaps_stay_gaps() -> None:
    gappy = frame([(0, 100, 101, 99, 100), (1, 100, 101, 99, 100.5), (5, 103, 104, 102, 103.5)])
    clock = SimClock(T0 + 5 * M)
    source = ReplaySource(clock, {"BTCUSDT": gappy})
    assert source.bars_between("BTCUSDT", T0 + 2 * M, T0 + 10 * M).height == 0
    assert source.price("BTCUSDT") == 100.5  # still minute 1's close
    clock.advance()
    assert source.bars_between("BTCUSDT", T0 + 2 * M, T0 + 10 * M)["ts"].to_list() == [T0 + 5 * M]


def test_klines_are_resampled_and_only_closed() -> None:
    clock = SimClock(T0 + 7 * M)
    source = ReplaySource(clock, {"BTCUSDT": ten_minutes()})
    five = source.klines("BTCUSDT", "5")
    # the 00:05 bucket is still open at 00:07: only 00:00, built from minutes 0..4
    assert five.rows() == [(T0, 100.0, 105.0, 99.0, 104.5, 5.0)]
    clock.advance_to(T0 + 10 * M)
    five = source.klines("BTCUSDT", "5")
    assert five["ts"].to_list() == [T0, T0 + 5 * M]
    assert five.row(1) == (T0 + 5 * M, 105.0, 110.0, 104.0, 109.5, 5.0)
    assert source.klines("BTCUSDT", "5", limit=1)["ts"].to_list() == [T0 + 5 * M]  # newest
    assert source.klines("BTCUSDT", "5", start_ms=T0 + M)["ts"].to_list() == [T0 + 5 * M]
    assert source.klines("BTCUSDT", "5", end_ms=T0 + 5 * M)["ts"].to_list() == [T0]
    ones = source.klines("BTCUSDT", "1", limit=3)
    assert ones["ts"].to_list() == [T0 + 7 * M, T0 + 8 * M, T0 + 9 * M]
    assert source.klines("BTCUSDT", "5", now_ms=T0 + 4 * M).height == 0
    assert source.klines("BTCUSDT", "60").height == 0  # the hour has not closed


def test_klines_finer_than_the_stored_bars_are_refused() -> None:
    source = ReplaySource(SimClock(T0), interval="5")
    assert source.bar_ms == 5 * M
    with pytest.raises(UsageError, match="multiple"):
        source.klines("BTCUSDT", "1")
