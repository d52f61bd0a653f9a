"""The composition root: the one place that turns a loaded configuration into wired objects.

``build_runtime(loaded, mode, clock)`` decides, once, what the process talks to::

    mode      exchange                    market data (store-backed)           clock
    live      Bybit (environment's host)  topped up from that host's klines    RealClock
    paper     paper ledger in the db      price_source "bybit": topped up from RealClock or the
                                          mainnet klines; "replay": offline    loop's step clock
    replay    paper ledger in the db      offline, whole stored range          SimClock
    simulate  paper ledger in the db      offline, whole stored range          SimClock

Everything else (commands, the trade loop, use-cases, the dashboard's buttons) asks the
:class:`Runtime` for its exchange, market data, journal, notifier and clock instead of building
them: this module is the only construction site of the paper exchange, the Bybit exchange and
the market-data service outside the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from jiritsu.clock import Clock, RealClock, SimClock
from jiritsu.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.config import LoadedConfig, Settings
    from jiritsu.exchange.base import Exchange
    from jiritsu.exchange.bybit import BybitExchange
    from jiritsu.exchange.journal import OrderJournal
    from jiritsu.exchange.paper_config import PaperConfig
    from jiritsu.market.data import MarketData
    from jiritsu.notify import Notifier

Mode = Literal["live", "paper", "replay", "simulate"]
MODES: tuple[str, ...] = ("live", "paper", "replay", "simulate")
OFFLINE_MODES = ("replay", "simulate")


def default_mode(loaded: LoadedConfig) -> Mode:
    """``live`` on a Bybit environment, ``paper`` in paper mode (replay and simulate are asked
    for explicitly: they need a simulated clock)."""
    return "paper" if loaded.settings.general.environment == "paper" else "live"


def live_prices(loaded: LoadedConfig, mode: str) -> bool:
    """Does this mode top its candles up from Bybit? The one place ``price_source`` is read."""
    if mode in OFFLINE_MODES:
        return False
    if mode == "paper":
        return loaded.settings.paper.price_source == "bybit"
    return True


@dataclass
class Runtime:
    """The wired objects of one process (see the module docstring); :meth:`close` releases
    what the runtime opened (also as a context manager)."""

    loaded: LoadedConfig
    mode: str
    clock: Clock
    db: Engine
    market: MarketData
    exchange: Exchange
    journal: OrderJournal
    notifier: Notifier | None
    owns_db: bool = True

    @property
    def settings(self) -> Any:
        return self.loaded.settings

    @property
    def environment(self) -> str:
        return str(self.loaded.settings.general.environment)

    @property
    def simulated(self) -> bool:
        """True when the exchange is the paper ledger (paper, replay, simulate)."""
        from jiritsu.exchange.base import Simulated

        return isinstance(self.exchange, Simulated)

    def exchange_for(self, bot: str) -> Exchange:
        """The exchange a bot trades on (one client serves every account today)."""
        return self.exchange

    def close(self) -> None:
        self.exchange.close()
        if self.market.client is not None:
            self.market.client.close()
        if self.owns_db:
            self.db.dispose()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_runtime(
    loaded: LoadedConfig,
    mode: str | None = None,
    clock: Clock | None = None,
    *,
    db: Engine | None = None,
    symbols: Iterable[str] | None = None,
    require_keys: bool = True,
    notify: bool = True,
    verify: str | bool | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Runtime:
    """Wire the objects of ``mode`` (default: :func:`default_mode`) on ``clock`` (default: the
    wall clock; replay and simulate need a SimClock).

    ``db``: an engine the caller owns (default: connect with the configured retries; the runtime
    then disposes of it). ``symbols``: the candles to serve (default: every bot's symbol and the
    index symbol). ``require_keys=False`` is for commands that only read market data;
    ``verify``/``sleep`` are for tests against the loopback fake.
    """
    from jiritsu.exchange.journal import OrderJournal
    from jiritsu.market.data import history_days

    settings = loaded.settings
    mode = mode or default_mode(loaded)
    if mode not in MODES:
        raise UsageError(f"unknown runtime mode {mode!r} (one of {', '.join(MODES)})")
    environment = settings.general.environment
    if (mode == "live") == (environment == "paper"):
        raise UsageError(f"mode {mode!r} does not run with environment = {environment!r}")
    if clock is None:
        if mode in OFFLINE_MODES:
            raise UsageError(f"mode {mode!r} needs a simulated clock")
        clock = RealClock()
    elif mode in OFFLINE_MODES and not isinstance(clock, SimClock):
        raise UsageError(f"mode {mode!r} needs a simulated clock")
    owns_db = db is None
    if db is None:
        from jiritsu.db.engine import connect_configured

        db = connect_configured(loaded)
    verify = verify if verify is not None else (settings.exchange.ca_file or None)
    client = (
        public_client(loaded, verify=verify, sleep=sleep) if live_prices(loaded, mode) else None
    )
    days = None if mode in OFFLINE_MODES else history_days(b.timeframe for b in settings.sub_bots)
    market = market_data(settings, db, clock, symbols=symbols, days=days, client=client)
    exchange: Exchange
    if mode == "live":
        from jiritsu.exchange.bybit import BybitExchange

        exchange = BybitExchange.from_config(
            loaded, require_keys=require_keys, verify=verify, sleep=sleep
        )
    else:
        from jiritsu.exchange.paper import PaperExchange

        own = mode in OFFLINE_MODES  # a replay's ledger: no other process writes it
        exchange = PaperExchange(db, paper_config(settings), market, clock, own_ledger=own)
    notifier = None
    if notify:
        from jiritsu.notify import notifier_from_config

        notifier = notifier_from_config(loaded)
    journal = OrderJournal(db, exchange, environment=environment, clock=clock)
    return Runtime(loaded, mode, clock, db, market, exchange, journal, notifier, owns_db)


def market_data(
    settings: Settings,
    db: Engine,
    clock: Clock,
    *,
    symbols: Iterable[str] | None = None,
    days: float | None = None,
    client: Exchange | None = None,
) -> MarketData:
    """The market-data service over the candle store (the only place it is built). On its own
    (no client, all history) it is what backtests, tuning and strategy checks read: stored bars
    closed by ``clock``, never a network call."""
    from jiritsu.market.data import MarketData
    from jiritsu.market.store import CandleStore, cache_root

    store = CandleStore(db, cache_root(settings.general.data_dir))
    wanted = _symbols(settings) if symbols is None else symbols
    return MarketData(store, clock, wanted, days=days, client=client)


def paper_config(settings: Settings) -> PaperConfig:
    """The paper exchange's accounts (the sub-bots), fee and slippage model, and prices: what it
    needs from ``[paper]``, ``[exchange]`` and the bots, so it never reads the configuration."""
    from jiritsu.exchange.paper_config import PaperConfig

    paper, ex, bots = settings.paper, settings.exchange, settings.sub_bots
    return PaperConfig(
        starting_balances={b.name: paper.starting_balances.get(b.name, Decimal(0)) for b in bots},
        symbols=tuple(sorted({b.symbol for b in bots})),
        quote_coin=paper.quote_coin,
        main_balance=paper.main_balance,
        maker_fee=ex.maker_fee,
        taker_fee=ex.taker_fee,
        slippage_bps=float(ex.slippage_bps),
        slippage_volatility_factor=float(ex.slippage_volatility_factor),
        leverage=ex.leverage,
        # the backtester measures a bot's slippage ATR on its decision bars: so does paper
        volatility_intervals={b.name: b.timeframe for b in bots},
    )


def public_client(
    loaded: LoadedConfig,
    *,
    verify: str | bool | None = None,
    sleep: Callable[[float], None] | None = None,
) -> Exchange:
    """Bybit's public market data (klines, tickers, instruments; no key): the environment's host,
    mainnet in paper mode (paper money, real candles), or ``exchange.base_url``. For the live
    top-up and for ``jiritsu data backfill``."""
    from jiritsu.exchange.bybit import BybitExchange

    verify = verify if verify is not None else (loaded.settings.exchange.ca_file or None)
    return BybitExchange.from_config(loaded, public=True, verify=verify, sleep=sleep)


def account_client(loaded: LoadedConfig, *, verify: str | bool | None = None) -> BybitExchange:
    """The environment's Bybit client with whichever keys are set (none required): for
    ``jiritsu doctor``, which reports the missing ones instead of refusing to start."""
    from jiritsu.exchange.bybit import BybitExchange

    verify = verify if verify is not None else (loaded.settings.exchange.ca_file or None)
    return BybitExchange.from_config(loaded, require_keys=False, verify=verify)


def _symbols(settings: Any) -> set[str]:
    return {b.symbol for b in settings.sub_bots} | {settings.master_bot.index_symbol}
