"""Shared set-up for the Bybit exchange tests: the loopback fake with four accounts, and
:class:`BybitExchange` built through the real configuration loader and the real pybit client.

Sleeps are recorded, never slept, so retry tests are instant and can assert every wait.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from pybit.unified_trading import HTTP

from jiritsu.config import LoadedConfig, load_config
from jiritsu.exchange.bybit import BybitExchange
from tests.conftest import REPO
from tests.fakes.bybit import FakeBybit, RequestRecord

MIN = 60_000
BOTS = ("SubBot-A", "SubBot-B", "SubBot-C")  # the shipped config: A spot BTC, C linear BTC
UIDS = {"main": 1001, "SubBot-A": 1002, "SubBot-B": 1003, "SubBot-C": 1004}
KEYS = {
    "main": ("MAINKEY7f3a9c21", "MAINSECRET0b8e2d41aa"),
    "SubBot-A": ("AKEY5e61d0b7", "ASECRET93c1f04e"),
    "SubBot-B": ("BKEY2a7f44c9", "BSECRET18d2b6e0"),
    "SubBot-C": ("CKEY9b03e5d1", "CSECRET6fa27c8d"),
}
ENV_NAMES = {
    "main": ("BYBIT_MASTER_API_KEY", "BYBIT_MASTER_API_SECRET"),
    "SubBot-A": ("BYBIT_SUBBOT_A_API_KEY", "BYBIT_SUBBOT_A_API_SECRET"),
    "SubBot-B": ("BYBIT_SUBBOT_B_API_KEY", "BYBIT_SUBBOT_B_API_SECRET"),
    "SubBot-C": ("BYBIT_SUBBOT_C_API_KEY", "BYBIT_SUBBOT_C_API_SECRET"),
}


def btc_rows(start: int, n: int = 600) -> list[tuple]:
    """A gentle up-trend: row i opens at 40000 + 10*i and closes 10 higher."""
    return [
        (start + i * MIN, 40000 + 10 * i, 40015 + 10 * i, 39995 + 10 * i, 40010 + 10 * i, 2)
        for i in range(n)
    ]


def flat_rows(start: int, price: float, n: int = 600) -> list[tuple]:
    return [(start + i * MIN, price, price + 1, price - 1, price, 1) for i in range(n)]


@dataclass
class BybitEnv:
    fake: FakeBybit
    t0: int  # the fake's pinned market clock at the start (epoch ms, a minute boundary)
    sleeps: list[float] = field(default_factory=list)

    def loaded(
        self,
        overrides: dict[str, str] | None = None,
        keys: dict[str, tuple[str, str] | None] | None = None,
    ) -> LoadedConfig:
        """The shipped config in testnet mode, pointed at the fake; ``keys`` replaces or (None)
        removes an account's key pair."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("BYBIT_")}
        env["JIRITSU_GENERAL__ENVIRONMENT"] = "testnet"
        env["JIRITSU_EXCHANGE__BASE_URL"] = self.fake.endpoint
        env["JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS"] = "3"
        pairs: dict[str, tuple[str, str] | None] = {**KEYS, **(keys or {})}
        for account, pair in pairs.items():
            if pair is not None:
                key_env, secret_env = ENV_NAMES[account]
                env[key_env], env[secret_env] = pair
        env.update(overrides or {})
        return load_config(REPO / "config.toml", environ=env)

    def exchange(
        self,
        overrides: dict[str, str] | None = None,
        keys: dict[str, tuple[str, str] | None] | None = None,
        **kw: object,
    ) -> BybitExchange:
        kw.setdefault("sleep", self.sleeps.append)
        kw.setdefault("verify", str(self.fake.ca_path))
        return BybitExchange.from_config(
            self.loaded(overrides, keys),
            random=lambda: 0.0,  # backoff = half of 0.5 * 2**n: 0.25, 0.5, 1.0
            **kw,  # type: ignore[arg-type]
        )

    def raw(self, account: str) -> HTTP:
        """A plain pybit session (test set-up only: bulk orders without our extra queries)."""
        key, secret = KEYS[account]
        s = HTTP(api_key=key, api_secret=secret, testnet=True, timeout=3, max_retries=1)
        s.endpoint = self.fake.endpoint
        s.client.verify = str(self.fake.ca_path)
        return s

    def calls(self, path: str) -> list[RequestRecord]:
        return [r for r in self.fake.requests if r.path == path]


@contextmanager
def bybit_env() -> Iterator[BybitEnv]:
    """The fake with the master (10000 USDT UNIFIED + 500 FUND) and three funded sub-accounts.

    The market clock is pinned a few minutes before real time, so that time windows computed
    from the real clock (execution history) line up with the fake's fills.
    """
    t0 = (int(time.time() * 1000) // MIN) * MIN - 5 * MIN
    with FakeBybit() as fake:
        fake.add_account(
            "main", UIDS["main"], *KEYS["main"], usdt=10000, master=True, fund_usdt=500
        )
        for bot in BOTS:
            fake.add_account(bot, UIDS[bot], *KEYS[bot], usdt=Decimal(1000))
        fake.set_price_path("BTCUSDT", btc_rows(t0 - 10 * MIN))
        fake.set_price_path("ETHUSDT", flat_rows(t0 - 10 * MIN, 2000))
        fake.clock = t0
        yield BybitEnv(fake, t0)
        assert fake.internal_errors == []
