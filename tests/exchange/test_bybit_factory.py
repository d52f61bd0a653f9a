"""build_exchange: the one place that picks paper or Bybit, and which Bybit host."""

from __future__ import annotations

import pytest

from jiritsu.errors import ConfigError
from jiritsu.exchange.bybit import BybitExchange
from jiritsu.exchange.factory import build_exchange
from tests.exchange.bybit_env import BybitEnv, bybit_env


@pytest.fixture
def env():
    with bybit_env() as e:
        yield e


def test_testnet_with_a_base_url_talks_to_it(env: BybitEnv):
    ex = build_exchange(env.loaded(), verify=str(env.fake.ca_path), sleep=env.sleeps.append)
    assert isinstance(ex, BybitExchange)
    assert ex.endpoint == env.fake.endpoint
    assert ex.balance("SubBot-C").wallet_balance == 1000
    ex.close()


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
    ex = build_exchange(loaded)
    assert isinstance(ex, BybitExchange)
    assert ex.endpoint == host
    assert env.fake.requests == []  # building connects to nothing


def test_plain_http_to_a_remote_host_is_refused_by_the_config(env: BybitEnv):
    with pytest.raises(ConfigError, match="https"):
        env.loaded({"JIRITSU_EXCHANGE__BASE_URL": "http://api.example.com"})


def test_paper_never_builds_bybit(env: BybitEnv):
    ex = build_exchange(env.loaded({"JIRITSU_GENERAL__ENVIRONMENT": "paper"}))
    try:
        assert not isinstance(ex, BybitExchange)
        assert ex.name == "paper"
    finally:
        ex.close()
    assert env.fake.requests == []
