"""Paper trading on live prices: the paper exchange fed by Bybit's public klines (the fake)."""

from __future__ import annotations

import os
from decimal import Decimal

import pytest
import sqlalchemy as sa

from jiritsu.clock import SimClock
from jiritsu.config import load_config
from jiritsu.db import migrate
from jiritsu.db.models import Candle
from jiritsu.exchange.types import OrderRequest
from jiritsu.runtime import build_runtime
from tests.conftest import REPO
from tests.fakes.bybit import FakeBybit

MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z


def test_paper_orders_fill_on_prices_polled_from_bybit(isolated_env: object) -> None:
    rows = [
        (T0 + i * MIN, 50_000.0 + i, 50_010.0 + i, 49_990.0 + i, 50_005.0 + i, 1.0)
        for i in range(-3 * 1440, 60)
    ]
    with FakeBybit() as fake:
        fake.set_price_path("BTCUSDT", rows)
        fake.clock = T0
        env = {
            **os.environ,
            "JIRITSU_PAPER__PRICE_SOURCE": "bybit",
            "JIRITSU_EXCHANGE__BASE_URL": fake.endpoint,
            "JIRITSU_EXCHANGE__CA_FILE": str(fake.ca_path),
        }
        loaded = load_config(REPO / "config.toml", environ=env)
        migrate.upgrade(loaded.db_url)
        clock = SimClock(T0)
        with build_runtime(loaded, clock=clock) as rt:
            exchange = rt.exchange
            # The last CLOSED bar at T0 is the one that opened at T0 - 1 minute.
            assert exchange.ticker("BTCUSDT").last == Decimal("50004")
            first_pages = [r for r in fake.requests if r.path == "/v5/market/kline"]
            assert first_pages  # the first top-up fetched the history the fake has
            exchange.place_order(
                "SubBot-B", "linear", OrderRequest("live-px-1", "BTCUSDT", "Buy", Decimal("0.01"))
            )
            fake.clock = T0 + 2 * MIN
            clock.advance_to(T0 + 2 * MIN)
            exchange.step()
            (fill,) = exchange.executions("SubBot-B", "linear")
            # next bar's open (T0 -> 50000) plus 2 bps of slippage
            assert fill.price == Decimal("50010.0")
            later = [r for r in fake.requests if r.path == "/v5/market/kline"]
            assert len(later) - len(first_pages) <= 2  # only the new minutes were asked for
            with rt.db.connect() as conn:
                stored = conn.execute(sa.select(sa.func.count()).select_from(Candle)).scalar()
            assert stored == 3 * 1440 + 2  # what was fetched is in the candle store too


def test_unknown_price_source_is_a_config_error(isolated_env: object) -> None:
    from jiritsu.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        load_config(REPO / "config.toml", environ={"JIRITSU_PAPER__PRICE_SOURCE": "yahoo"})
    assert info.value.problems[0][0] == "paper.price_source"
