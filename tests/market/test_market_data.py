"""MarketData: without a candle store it serves what it was given, even when it has a client;
holding a replay's whole history it answers history questions as the store would, reading it
once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from jiritsu.clock import SimClock
from jiritsu.market.data import MarketData
from jiritsu.market.frames import resample
from jiritsu.market.store import CandleStore
from jiritsu.market.synth import synth_candles


class _Untouchable:
    """A client that must never be asked: there is no store to keep what it would return."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the client was asked for {name}")


def test_a_client_without_a_store_never_loops_or_fetches() -> None:
    frame = synth_candles(days=1, seed=3)
    last_ts = int(frame["ts"][-1])
    clock = SimClock(last_ts + 60_000)  # the last bar has just closed
    market = MarketData(None, clock, ["BTCUSDT"], days=1, client=_Untouchable())
    market.add("BTCUSDT", frame)

    assert market.refresh() is None  # used to recurse until RecursionError
    assert market.price("BTCUSDT") == float(frame["close"][-1])


class _CountingStore(CandleStore):
    """The real store, counting its reads."""

    def __init__(self, engine: Engine, cache_dir: Path) -> None:
        super().__init__(engine, cache_dir)
        self.loads: list[tuple[str, str]] = []

    def load(self, symbol: str, interval: str, *args: Any, **kwargs: Any) -> pl.DataFrame:
        self.loads.append((symbol, interval))
        return super().load(symbol, interval, *args, **kwargs)


def test_holding_the_whole_history_answers_as_the_store_reading_it_once(
    sqlite_engine: Engine, tmp_path: Path
) -> None:
    minutes = synth_candles(days=3, seed=5)
    minutes = minutes.filter((pl.col("ts") // 60_000) % 97 != 13)  # holes, as real data has
    t0 = int(minutes["ts"][0])
    hours = resample(minutes.filter(pl.col("ts") < t0 + 30 * 3_600_000), "60")
    store = _CountingStore(sqlite_engine, tmp_path / "cache")
    store.write("BTCUSDT", "1", minutes)
    store.write("BTCUSDT", "60", hours)
    clock = SimClock(t0)
    held = MarketData(store, clock, ["BTCUSDT"], days=None)
    reading = MarketData(CandleStore(sqlite_engine, tmp_path / "cache"), clock, ["BTCUSDT"],
                         days=None)  # fmt: skip
    assert not held.holds_history
    held.frames()  # a replay or simulation loads every stored bar first
    assert held.holds_history
    assert not reading.holds_history
    store.loads.clear()

    for now in range(t0, t0 + 3 * 86_400_000 + 7_200_000, 3_600_000 * 9 + 7 * 60_000):
        clock.advance_to(now)
        for interval in ("1", "60"):
            for start in (None, t0 - 86_400_000, now - 12 * 3_600_000, now + 60_000):
                for end in (None, now - 3_600_000, now, now + 86_400_000):
                    got = held.stored("BTCUSDT", interval, start, end)
                    assert got.equals(reading.stored("BTCUSDT", interval, start, end))
        for intervals in (("60", "1"), ("1",), ("60",)):
            for before in (now, now - 1, t0, t0 + 90 * 60_000):
                assert held.newest_stored_ts("BTCUSDT", intervals, before) == (
                    reading.newest_stored_ts("BTCUSDT", intervals, before)
                )
    assert store.loads == [("BTCUSDT", "60")]  # the minutes were loaded already; the hours once
