"""Pick the exchange implementation for the configured environment.

Everything that trades or reads account state calls :func:`build_exchange`, so the choice
between paper trading and a real Bybit host lives in exactly one place. Imports are lazy: pybit
and polars are heavy, and the CLI starts every minute.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig
    from jiritsu.exchange.base import Exchange


def build_exchange(
    loaded: LoadedConfig,
    *,
    require_keys: bool = True,
    verify: str | bool | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
) -> Exchange:
    """paper -> the simulated exchange; testnet/demo/production -> Bybit on that host (or on
    ``exchange.base_url``).

    ``require_keys=False`` is for commands that only read market data: a missing key is then
    reported when that account is first used instead of up front. ``verify``/``sleep``/``clock``
    are for tests against the loopback fake.
    """
    environment = loaded.settings.general.environment
    if environment == "paper":
        return _paper(loaded)
    from jiritsu.exchange.bybit import BybitExchange

    return BybitExchange.from_config(
        loaded,
        require_keys=require_keys,
        verify=_verify(loaded, verify),
        sleep=sleep,
        clock=clock,
    )


def _verify(loaded: LoadedConfig, verify: str | bool | None) -> str | bool | None:
    """An explicit ``verify`` wins; else ``exchange.ca_file`` when set; else the default."""
    if verify is not None:
        return verify
    return loaded.settings.exchange.ca_file or None


def _paper(loaded: LoadedConfig) -> Exchange:
    from jiritsu.exchange.paper import PaperExchange

    return PaperExchange.from_config(loaded)


def build_market_data_exchange(
    loaded: LoadedConfig,
    *,
    verify: str | bool | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Exchange:
    """Bybit's public market data (klines, tickers, instruments): no key needed.

    Paper mode trades against the simulator but its candles are real, so market data comes
    from mainnet (or ``exchange.base_url``); other environments read their own host.
    """
    from jiritsu.exchange.bybit import BybitExchange
    from jiritsu.exchange.retry import RetryPolicy

    settings = loaded.settings
    environment = settings.general.environment
    ex = settings.exchange
    return BybitExchange(
        environment="production" if environment == "paper" else environment,
        credentials={},
        missing_keys={},
        base_url=ex.base_url,
        member_ids={},
        leverage=ex.leverage,
        timeout=ex.request_timeout_seconds,
        recv_window_ms=ex.recv_window_ms,
        retry_policy=RetryPolicy(max_retries=ex.max_retries),
        sleep=sleep,
        verify=_verify(loaded, verify),
    )
