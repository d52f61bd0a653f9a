"""The backtest's candles come through the market-data service: stored bars closed by its clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from jiritsu.backtest.runner import load_data
from jiritsu.clock import RealClock, SimClock
from jiritsu.config.settings import Settings
from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.market.store import CandleStore, cache_root
from jiritsu.market.synth import synth_candles
from jiritsu.runtime import market_data

DAY_MS = 86_400_000
MINUTE_MS = 60_000


@pytest.fixture
def stored(sqlite_url: str, isolated_env: Path) -> Iterator[tuple[Engine, Settings, int, int]]:
    """Six days of stored BTCUSDT minutes; yields (engine, settings, first ts, last ts)."""
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    settings = Settings.model_validate(
        {"general": {"data_dir": str(isolated_env)}}, context={"config_dir": isolated_env}
    )
    frame = synth_candles(days=6, seed=3)
    CandleStore(engine, cache_root(isolated_env)).write("BTCUSDT", "1", frame)
    yield engine, settings, int(frame["ts"][0]), int(frame["ts"][-1])
    engine.dispose()


def test_on_the_wall_clock_the_whole_stored_range_is_there(
    stored: tuple[Engine, Settings, int, int],
) -> None:
    engine, settings, first, last = stored
    market = market_data(settings, engine, RealClock())
    data, start, end = load_data(market, settings, "SubBot-B", None, None)
    assert (int(data.ts[0]), int(data.ts[-1])) == (first, last)
    assert start == (first // DAY_MS + 2) * DAY_MS  # two days kept for warm-up
    assert end == last + MINUTE_MS


def test_a_simulated_clock_hides_every_bar_not_closed_by_it(
    stored: tuple[Engine, Settings, int, int],
) -> None:
    """A backtest (or the tuner) inside a simulation at T never reads a candle of its future,
    whatever end it asks for."""
    engine, settings, first, last = stored
    now = first + 4 * DAY_MS + 30 * MINUTE_MS + 30_000  # half-way through a minute
    market = market_data(settings, engine, SimClock(now))
    data, _start, end = load_data(market, settings, "SubBot-B", None, last + MINUTE_MS)
    assert int(data.ts[-1]) + MINUTE_MS <= now  # the bar still open at ``now`` is not there
    assert int(data.ts[-1]) == now - 30_000 - MINUTE_MS
    assert end == int(data.ts[-1]) + MINUTE_MS
