"""build_runtime: the one place that picks paper or Bybit, which Bybit host, and whether the
market data may touch the network."""

from __future__ import annotations

import pytest

from jiritsu.errors import ConfigError
from jiritsu.exchange.bybit import BybitExchange
from jiritsu.runtime import build_runtime
from tests.exchange.bybit_env import BybitEnv, bybit_env


@pytest.fixture
def env():
    with bybit_env() as e:
        yield e


def test_testnet_with_a_base_url_talks_to_it(env: BybitEnv):
    with build_runtime(env.loaded(), verify=str(env.fake.ca_path), sleep=env.sleeps.append) as rt:
        ex = rt.exchange
        assert isinstance(ex, BybitExchange)
        assert ex.endpoint == env.fake.endpoint
        assert ex.balance("SubBot-C").wallet_balance == 1000


@pytest.mark.parametrize(
    ("environment", "host"),
    [
        ("testnet", "https://api-testnet.bybit.com"),
        ("demo", "https://api-demo.bybit.com"),
        ("production", "https://api.bybit.com"),
    ],
)
def test_each_environment_gets_its_official_host(env: BybitEnv, environment: str, host: str):
    loaded = env.loaded(
        {"JIRITSU_GENERAL__ENVIRONMENT": environment, "JIRITSU_EXCHANGE__BASE_URL": ""}
    )
    with build_runtime(loaded) as rt:
        assert isinstance(rt.exchange, BybitExchange)
        assert rt.exchange.endpoint == host
        assert rt.market.client is not None  # live trading tops its candles up from Bybit
    assert env.fake.requests == []  # building connects to nothing


def test_plain_http_to_a_remote_host_is_refused_by_the_config(env: BybitEnv):
    with pytest.raises(ConfigError, match="https"):
        env.loaded({"JIRITSU_EXCHANGE__BASE_URL": "http://api.example.com"})


def test_paper_never_builds_bybit(env: BybitEnv):
    with build_runtime(env.loaded({"JIRITSU_GENERAL__ENVIRONMENT": "paper"})) as rt:
        assert not isinstance(rt.exchange, BybitExchange)
        assert rt.exchange.name == "paper"
        assert rt.market.client is None  # price_source = "replay": offline
    assert env.fake.requests == []


def test_paper_config_is_what_the_paper_exchange_needs_from_the_settings() -> None:
    from decimal import Decimal

    from jiritsu.config import Settings
    from jiritsu.runtime import paper_config

    settings = Settings.model_validate(
        {
            "exchange": {"taker_fee": 0.001, "slippage_bps": 3, "leverage": 2},
            "paper": {"starting_balances": {"SubBot-A": 700}, "main_balance": 5},
        }
    )
    config = paper_config(settings)
    # every bot is an account; one without a starting balance starts at 0
    assert dict(config.starting_balances) == {
        "SubBot-A": Decimal(700),
        "SubBot-B": Decimal(0),
        "SubBot-C": Decimal(0),
    }
    assert config.volatility_intervals == {"SubBot-A": "60", "SubBot-B": "15", "SubBot-C": "5"}
    assert (config.symbols, config.quote_coin, config.main_balance) == (("BTCUSDT",), "USDT", 5)
    assert (config.taker_fee, config.slippage_bps, config.leverage) == (Decimal("0.001"), 3.0, 2)
