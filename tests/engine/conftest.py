"""Set-up for the engine tests: a migrated SQLite database, hand-made candles in the store, the
paper exchange on a simulated clock, and the bots' runners -- the real code, no stand-ins."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy.engine import Engine

from jiritsu.clock import SimClock
from jiritsu.config import LoadedConfig, load_config
from jiritsu.engine.bot import BotRunner, EngineContext
from jiritsu.exchange.journal import OrderJournal
from jiritsu.exchange.paper import PaperExchange
from jiritsu.market.data import MarketData
from jiritsu.market.frames import CANDLE_SCHEMA
from jiritsu.runtime import paper_config
from tests.conftest import REPO

MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def frame(rows: Sequence[tuple[float, float, float, float]], start: int = T0) -> pl.DataFrame:
    """1-minute candles from (open, high, low, close) rows."""
    return pl.DataFrame(
        {
            "ts": [start + i * MIN for i in range(len(rows))],
            "open": [float(r[0]) for r in rows],
            "high": [float(r[1]) for r in rows],
            "low": [float(r[2]) for r in rows],
            "close": [float(r[3]) for r in rows],
            "volume": [1.0] * len(rows),
        },
        schema=CANDLE_SCHEMA,
    )


def flat(price: float, n: int) -> list[tuple[float, float, float, float]]:
    return [(price, price + 1, price - 1, price)] * n


def only_bot(name: str, **overrides: Any) -> dict[str, str]:
    """Environment overrides: every other shipped bot disabled, ``name``'s keys overridden
    (``{"split_entry__count": "3"}`` -> JIRITSU_SUB_BOTS__<NAME>__SPLIT_ENTRY__COUNT)."""
    env = {}
    for other in ("SubBot-A", "SubBot-B", "SubBot-C"):
        if other != name:
            env[f"JIRITSU_SUB_BOTS__{_stem(other)}__ENABLED"] = "false"
    for key, value in overrides.items():
        env[f"JIRITSU_SUB_BOTS__{_stem(name)}__{key.upper()}"] = str(value)
    return env


def _stem(name: str) -> str:
    return name.upper().replace("-", "_")


QUIET_BREAKERS = {  # the global breakers out of the way (tests that want one set it)
    "JIRITSU_RISK__CRASH_MOVE_PCT": "1",
    "JIRITSU_RISK__MAX_DRAWDOWN_PCT": "1",
    "JIRITSU_RISK__DAILY_LOSS_PCT": "1",
    "JIRITSU_NEWS_SENTIMENT__ENABLED": "false",
}
# Live paper trading tops candles up from Bybit's public API; tests never reach the internet:
# a closed loopback port refuses at once (the stored candles are then what there is).
OFFLINE = {"JIRITSU_EXCHANGE__BASE_URL": "http://127.0.0.1:9", "JIRITSU_EXCHANGE__MAX_RETRIES": "0"}


# The engine tests' hand-computed quantities are lots (risk sizing is the strategy tests').
LOT_SIZING = {f"JIRITSU_SUB_BOTS__{i}__SIZING": "lot" for i in range(3)}


def load(data_dir: Path, env: dict[str, str] | None = None) -> LoadedConfig:
    environ = {"JIRITSU_GENERAL__DATA_DIR": str(data_dir), **QUIET_BREAKERS, **OFFLINE,
               **LOT_SIZING, **(env or {})}  # fmt: skip
    return load_config(REPO / "config.toml", environ=environ)


@dataclass
class Paper:
    """A paper exchange over hand-made candles with the engine context around it."""

    loaded: LoadedConfig
    engine: Engine
    clock: SimClock
    exchange: PaperExchange
    ctx: EngineContext
    frames: dict[str, pl.DataFrame]

    def runner(self, name: str) -> BotRunner:
        return BotRunner(self.ctx, self.loaded.settings.bot(name))

    def at(self, t: int) -> None:
        self.clock.advance_to(t)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        import sqlalchemy as sa

        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).all())


def make_paper(loaded: LoadedConfig, candles: pl.DataFrame, start: int) -> Paper:
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine
    from jiritsu.engine.snapshot import SentimentCache

    migrate.upgrade(loaded.db_url)
    engine = make_engine(loaded.db_url)
    clock = SimClock(start)
    frames = {"BTCUSDT": candles}
    market = MarketData(None, clock, frames, days=None)
    market.add("BTCUSDT", candles)
    exchange = PaperExchange(engine, paper_config(loaded.settings), market, clock)
    settings = loaded.settings
    ctx = EngineContext(
        engine=engine,
        exchange=exchange,
        journal=OrderJournal(
            engine, exchange, environment=settings.general.environment, clock=clock
        ),
        feed=market,
        loaded=loaded,
        notifier=None,
        environment=settings.general.environment,
        sentiment=SentimentCache(engine, 24, enabled=False),
        probe_changes=False,
    )
    return Paper(loaded, engine, clock, exchange, ctx, frames)


@pytest.fixture
def paper_factory(isolated_env: Path) -> Iterator[Any]:
    made: list[Paper] = []

    def factory(candles: pl.DataFrame, start: int, env: dict[str, str] | None = None) -> Paper:
        paper = make_paper(load(isolated_env, env), candles, start)
        made.append(paper)
        return paper

    yield factory
    for paper in made:
        paper.engine.dispose()


def store_candles(loaded: LoadedConfig, candles: pl.DataFrame) -> None:
    """Put candles in the store (database + Parquet cache), as `jiritsu data import` does."""
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine
    from jiritsu.market.store import CandleStore, cache_root

    migrate.upgrade(loaded.db_url)
    engine = make_engine(loaded.db_url)
    try:
        CandleStore(engine, cache_root(loaded.settings.general.data_dir)).write(
            "BTCUSDT", "1", candles
        )
    finally:
        engine.dispose()
