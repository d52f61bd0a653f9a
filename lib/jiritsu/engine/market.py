"""Market data for a step: a bot's closed bars with indicators, and the 1-minute bars.

Two feeds serve the same questions, so the tick logic never knows which one it talks to:

- :class:`ExchangeFeed` asks the exchange (``klines``) at every step: live trading, on Bybit or
  on the paper exchange. Indicators are computed over the newest :data:`LOOKBACK_BARS` closed
  bars; EMA and Wilder averages forget their seed geometrically, so after 1000 bars the values
  equal those of an unbounded history to float precision for every period the configuration
  allows below ~100 (and are very close above).
- :class:`ReplayFeed` holds stored candles in memory (``trade-loop --replay``): each bot's
  timeframe is resampled and its indicators computed ONCE over the whole stored range -- exactly
  the arrays the backtester builds -- and a step only looks up the newest bar closed by ``t``.
  A value at bar ``k`` uses bars ``<= k`` only, so precomputing reveals nothing early.

Only CLOSED bars are used: a bar of length ``L`` opened at ``ts`` exists for a step at ``t`` once
``ts + L <= t`` (Bybit's newest kline is still forming and is dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from jiritsu.strategy.params import MINUTE_MS, P_TF_MS

if TYPE_CHECKING:
    import polars as pl

    from jiritsu.exchange.base import Exchange

LOOKBACK_BARS = 1000  # one Bybit klines page


@dataclass(frozen=True)
class BotBars:
    """A bot's closed bars (numpy, oldest first) with indicators; ``k`` = newest closed bar."""

    ts: np.ndarray  # int64 bar opens (ms)
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    ind: SimpleNamespace  # ema_fast, ema_slow, rsi, atr (see strategy.rules.indicator_arrays)
    k: int
    tf_ms: int

    @property
    def bar_ts(self) -> int:
        return int(self.ts[self.k])

    @property
    def close_ms(self) -> int:
        """When bar ``k`` closed (its open + the timeframe)."""
        return int(self.ts[self.k]) + self.tf_ms


@dataclass(frozen=True)
class MinuteBar:
    ts: int
    open: float
    high: float
    low: float
    close: float


class CandleFeed(Protocol):
    def bot_bars(self, bot: Any, params: np.ndarray, t_ms: int) -> BotBars | None:
        """The bot's bars closed by ``t_ms`` (None: none yet)."""
        ...

    def minute_bars(self, symbol: str, category: str, t_ms: int, count: int) -> list[MinuteBar]:
        """The newest ``count`` 1-minute bars closed by ``t_ms``, oldest first."""
        ...


def _arrays(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    from jiritsu.market.frames import to_numpy

    cols = to_numpy(frame)
    return {
        "ts": np.asarray(cols["ts"], dtype=np.int64),
        **{k: np.ascontiguousarray(cols[k], dtype=np.float64) for k in cols if k != "ts"},
    }


def _bot_bars(cols: dict[str, np.ndarray], k: int, params: np.ndarray, ind: Any) -> BotBars:
    return BotBars(
        ts=cols["ts"],
        open=cols["open"],
        high=cols["high"],
        low=cols["low"],
        close=cols["close"],
        volume=cols["volume"],
        ind=ind,
        k=k,
        tf_ms=int(params[P_TF_MS]),
    )


def _minute(row: tuple[Any, ...]) -> MinuteBar:
    return MinuteBar(int(row[0]), float(row[1]), float(row[2]), float(row[3]), float(row[4]))


class ExchangeFeed:
    """Bars from ``exchange.klines`` at every call (see the module docstring)."""

    def __init__(self, exchange: Exchange, *, lookback: int = LOOKBACK_BARS) -> None:
        self.exchange = exchange
        self.lookback = lookback

    def bot_bars(self, bot: Any, params: np.ndarray, t_ms: int) -> BotBars | None:
        from jiritsu.strategy.rules import indicator_arrays

        tf_ms = int(params[P_TF_MS])
        frame = self.exchange.klines(
            bot.symbol, bot.timeframe, category=bot.category, limit=self.lookback
        )
        frame = frame.filter(frame["ts"] + tf_ms <= t_ms)
        if frame.height == 0:
            return None
        cols = _arrays(frame)
        ind = indicator_arrays(cols["high"], cols["low"], cols["close"], params)
        return _bot_bars(cols, frame.height - 1, params, ind)

    def minute_bars(self, symbol: str, category: str, t_ms: int, count: int) -> list[MinuteBar]:
        frame = self.exchange.klines(symbol, "1", category=category, limit=min(count + 1, 1000))
        frame = frame.filter(frame["ts"] + MINUTE_MS <= t_ms)
        return [_minute(r) for r in frame.tail(count).iter_rows()]


class ReplayFeed:
    """Stored 1-minute candles in memory, resampled and indicated once per bot."""

    def __init__(self, frames: dict[str, pl.DataFrame]) -> None:
        from jiritsu.market.symbols import normalize_symbol

        self._minutes = {normalize_symbol(s): _arrays(f) for s, f in frames.items()}
        self._frames = {normalize_symbol(s): f for s, f in frames.items()}
        self._bots: dict[tuple[str, bytes], tuple[dict[str, np.ndarray], Any]] = {}

    def series(self, bot: Any, params: np.ndarray) -> tuple[dict[str, np.ndarray], Any]:
        """(bar arrays, indicators) of the bot's timeframe over the whole stored range."""
        from jiritsu.market.frames import resample
        from jiritsu.strategy.rules import indicator_arrays

        key = (bot.name, params.tobytes())
        found = self._bots.get(key)
        if found is None:
            frame = self._frames[bot.symbol]
            bars = frame if bot.timeframe == "1" else resample(frame, bot.timeframe)
            from jiritsu.indicators import adx

            cols = _arrays(bars)
            ind = indicator_arrays(cols["high"], cols["low"], cols["close"], params)
            ind.adx, ind.plus_di, ind.minus_di = adx(cols["high"], cols["low"], cols["close"], 14)
            found = (cols, ind)
            self._bots[key] = found
        return found

    def bot_bars(self, bot: Any, params: np.ndarray, t_ms: int) -> BotBars | None:
        cols, ind = self.series(bot, params)
        tf_ms = int(params[P_TF_MS])
        k = int(np.searchsorted(cols["ts"], t_ms - tf_ms, side="right")) - 1
        if k < 0:
            return None
        return _bot_bars(cols, k, params, ind)

    def minute_arrays(self, symbol: str) -> dict[str, np.ndarray]:
        return self._minutes[symbol]

    def minute_bars(self, symbol: str, category: str, t_ms: int, count: int) -> list[MinuteBar]:
        cols = self._minutes.get(symbol)
        if cols is None:
            return []
        hi = int(np.searchsorted(cols["ts"], t_ms - MINUTE_MS, side="right"))
        lo = max(0, hi - count)
        return [
            MinuteBar(
                int(cols["ts"][i]),
                float(cols["open"][i]),
                float(cols["high"][i]),
                float(cols["low"][i]),
                float(cols["close"][i]),
            )
            for i in range(lo, hi)
        ]


class LiveCandles:
    """Live paper trading's market: the candle store topped up from Bybit's public klines at
    every step (``jiritsu.market.backfill``: only what is newer than the newest stored bar), and
    the paper exchange's in-memory :class:`~jiritsu.market.source.ReplaySource` reloaded from it.

    The first refresh fetches enough history for :data:`LOOKBACK_BARS` bars of the slowest bot
    (at most ``max_days``). A failed refresh keeps the data it had (the bars then stop closing,
    which the health check's candle age reports) and returns the error.
    """

    def __init__(
        self,
        market_data: Exchange,
        store: Any,
        source: Any,
        symbols: list[str],
        *,
        days: float,
    ) -> None:
        self.market_data = market_data
        self.store = store
        self.source = source
        self.symbols = symbols
        self.days = days

    @staticmethod
    def history_days(bots: list[Any], max_days: float = 45.0) -> float:
        from jiritsu.market.frames import interval_ms

        slowest = max((interval_ms(b.timeframe) for b in bots), default=MINUTE_MS)
        return min(max_days, max(2.0, slowest * LOOKBACK_BARS / 86_400_000 + 1))

    def refresh(self, t_ms: int) -> Exception | None:
        from jiritsu.exchange.errors import ExchangeError
        from jiritsu.market.backfill import backfill
        from jiritsu.sim.clock import from_ms

        error: Exception | None = None
        for symbol in self.symbols:
            try:
                backfill(self.market_data, self.store, symbol, "1", days=self.days,
                         now=from_ms(t_ms))  # fmt: skip
            except ExchangeError as exc:
                error = exc
            frame = self.store.load(symbol, "1", start_ms=t_ms - int(self.days * 86_400_000))
            if frame.height:
                self.source.add(symbol, frame)
        return error
