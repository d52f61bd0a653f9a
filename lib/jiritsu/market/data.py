"""The market-data service: "the closed bars of symbol S, timeframe T, as of clock time t".

One object answers every reader -- the bots (their timeframe's bars with indicators), the
breakers (1-minute bars), the paper exchange's fills (:attr:`MarketData.source`, a
:class:`~jiritsu.market.source.ReplaySource` over the same 1-minute bars) -- whatever the mode:

- the stored 1-minute candles (``jiritsu data import|synth|backfill``) are always the base;
- where the configuration asks for live prices (live trading; paper with ``price_source =
  "bybit"``) :meth:`MarketData.refresh` first tops the store up from Bybit's public klines (only
  what is newer than the newest stored bar; the first call fetches :meth:`history_days`). A
  failed top-up keeps the bars it had (they then stop closing, which health's candle age
  reports) and is returned, never raised;
- offline (replays, simulations, paper with ``price_source = "replay"``) nothing touches the
  network: there is no client to ask.

Only CLOSED bars are used: a bar of length ``L`` opened at ``ts`` exists at ``t`` once
``ts + L <= t``. A bot's timeframe is resampled once per loaded data into a
:class:`~jiritsu.strategy.contract.Bars` whose indicators and strategy signals are memoised over
the whole window -- exactly what the backtester computes -- and a step only looks up the newest
bar closed by ``t``. A value at bar ``k`` uses bars ``<= k`` only, so precomputing reveals
nothing early.

:func:`jiritsu.runtime.build_runtime` is the one place that builds it and decides whether it has a
client.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from jiritsu.clock import Clock, from_ms
from jiritsu.strategy.params import MINUTE_MS, P_TF_MS

if TYPE_CHECKING:
    import polars as pl

    from jiritsu.exchange.base import Exchange
    from jiritsu.market.source import Bar, ReplaySource
    from jiritsu.market.store import CandleStore
    from jiritsu.strategy.contract import Bars

LOOKBACK_BARS = 1000  # bars of the slowest bot a live top-up fetches history for
MAX_HISTORY_DAYS = 45.0
DAY_MS = 86_400_000


@dataclass(frozen=True)
class BotBars:
    """A bot's closed bars (numpy, oldest first); ``k`` = newest closed bar, ``series`` the same
    bars as the strategy sees them (memoised indicators and signals)."""

    ts: np.ndarray  # int64 bar opens (ms)
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    series: Bars
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
    """What a bot step and the breakers read (:class:`MarketData` is the implementation)."""

    def bot_bars(self, bot: Any, params: np.ndarray, t_ms: int) -> BotBars | None:
        """The bot's bars closed by ``t_ms`` (None: none yet)."""
        ...

    def minute_columns(self, symbol: str) -> dict[str, np.ndarray] | None:
        """Every 1-minute bar held for ``symbol`` as arrays (ts, open, high, low, close,
        volume), future ones included: for scanning ahead of the clock, never for deciding."""
        ...

    def minute_bars(self, symbol: str, category: str, t_ms: int, count: int) -> list[MinuteBar]:
        """The newest ``count`` 1-minute bars closed by ``t_ms``, oldest first."""
        ...

    def minute_window(self, symbol: str, t_ms: int, count: int) -> dict[str, np.ndarray]:
        """:meth:`minute_bars` as arrays (ts, open, high, low, close, volume; empty: none)."""
        ...


def _arrays(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    from jiritsu.market.frames import to_numpy

    cols = to_numpy(frame)
    return {
        "ts": np.asarray(cols["ts"], dtype=np.int64),
        **{k: np.ascontiguousarray(cols[k], dtype=np.float64) for k in cols if k != "ts"},
    }


def history_days(timeframes: Iterable[str], max_days: float = MAX_HISTORY_DAYS) -> float:
    """Days of 1-minute bars that give the slowest timeframe :data:`LOOKBACK_BARS` bars (at
    least 2, at most ``max_days``)."""
    from jiritsu.market.frames import interval_ms

    slowest = max((interval_ms(tf) for tf in timeframes), default=MINUTE_MS)
    return min(max_days, max(2.0, slowest * LOOKBACK_BARS / DAY_MS + 1))


class MarketData:
    """See the module docstring. ``days``: the window kept in memory (None: everything stored);
    ``client``: where live prices come from (None: offline). Without a ``store`` (tests, one-off
    runs) it serves what :meth:`add` gave it."""

    def __init__(
        self,
        store: CandleStore | None,
        clock: Clock,
        symbols: Iterable[str],
        *,
        days: float | None,
        client: Exchange | None = None,
    ) -> None:
        from jiritsu.market.source import ReplaySource
        from jiritsu.market.symbols import normalize_symbol

        self.store = store
        self.clock = clock
        self.symbols = sorted({normalize_symbol(s) for s in symbols})
        self.days = days
        self.client = client
        self.source: ReplaySource = ReplaySource(clock)
        self.bar_ms = self.source.bar_ms  # the paper exchange fills on 1-minute bars
        self._frames: dict[str, pl.DataFrame] = {}
        self._minutes: dict[str, dict[str, np.ndarray]] = {}
        self._series: dict[tuple[str, str], tuple[pl.DataFrame, np.ndarray]] = {}  # _held's
        self._resampled: dict[tuple[str, str], tuple[pl.DataFrame, np.ndarray]] = {}
        # the indicator cache: (symbol, timeframe) -> (bar arrays, Bars with their memo)
        self._bots: dict[tuple[str, str], tuple[dict[str, np.ndarray], Bars]] = {}
        self._loaded = False
        self._refreshed_minute = -1

    @property
    def live(self) -> bool:
        """True when :meth:`refresh` asks the network for new bars."""
        return self.client is not None

    def frames(self) -> dict[str, pl.DataFrame]:
        """The 1-minute bars held, per symbol (loads the store on first use)."""
        self._ensure()
        return dict(self._frames)

    def _ensure(self, now_ms: int | None = None) -> None:
        """Loaded, and live, topped up once per minute of clock (the paper exchange asks through
        :meth:`prepare` before it locks its ledger, so no network call happens inside it)."""
        t = self.clock.now_ms() if now_ms is None else int(now_ms)
        live = self.client is not None and self.store is not None  # bars to fetch and keep
        if live and t // MINUTE_MS > self._refreshed_minute:
            self.refresh(t)
        elif not self._loaded:
            self._load(t)

    def _load(self, t_ms: int) -> None:
        self._loaded = True
        if self.store is None:
            return
        start = None if self.days is None else t_ms - int(self.days * DAY_MS)
        for symbol in self.symbols:
            self.add(symbol, self.store.load(symbol, "1", start_ms=start))

    def add(self, symbol: str, frame: pl.DataFrame) -> None:
        """Serve ``frame`` (canonical 1-minute candles) for ``symbol`` (replacing what it had)."""
        from jiritsu.market.symbols import normalize_symbol

        symbol = normalize_symbol(symbol)
        self.source.add(symbol, frame)
        self._frames[symbol] = frame
        self._minutes[symbol] = _arrays(frame)
        if symbol not in self.symbols:
            self.symbols = sorted({*self.symbols, symbol})
        self._bots = {k: v for k, v in self._bots.items() if k[0] != symbol}
        self._resampled = {k: v for k, v in self._resampled.items() if k[0] != symbol}

    def refresh(self, t_ms: int | None = None) -> Exception | None:
        """Top the store up to ``t_ms`` (live only) and (re)load the window; the error of a
        failed top-up is returned (the bars loaded stay)."""
        from jiritsu.exchange.errors import ExchangeError
        from jiritsu.market.backfill import backfill

        t = self.clock.now_ms() if t_ms is None else int(t_ms)
        if self.client is None or self.store is None:
            self._ensure()
            return None
        self._refreshed_minute = t // MINUTE_MS
        error: Exception | None = None
        days = self.days if self.days is not None else MAX_HISTORY_DAYS
        for symbol in self.symbols:
            try:
                backfill(self.client, self.store, symbol, "1", days=days, now=from_ms(t))
            except ExchangeError as exc:
                error = exc
        self._load(t)
        return error

    # --- history: any stored interval, any window closed by the clock ------------------------

    def stored(
        self, symbol: str, interval: str, start_ms: int | None, end_ms: int | None
    ) -> pl.DataFrame:
        """The stored bars of ``interval`` with ``start_ms <= ts < end_ms`` that have closed by
        the clock (a backtest or tuning inside a simulation never sees its future). Without a
        store: the 1-minute bars :meth:`add` gave it. Holding the whole history
        (:attr:`holds_history`), a slice of the series read once."""
        import polars as pl

        from jiritsu.market.frames import interval_ms, normalize_interval
        from jiritsu.market.symbols import normalize_symbol

        symbol = normalize_symbol(symbol)
        closed_by = self.clock.now_ms() - interval_ms(interval) + 1  # ts + length <= now
        end = closed_by if end_ms is None else min(int(end_ms), closed_by)
        if self.holds_history:
            held, ts = self._held(symbol, normalize_interval(interval))
            lo = 0 if start_ms is None else int(np.searchsorted(ts, int(start_ms), side="left"))
            hi = int(np.searchsorted(ts, end, side="left"))
            return held.slice(lo, max(hi - lo, 0))
        if self.store is not None:
            return self.store.load(symbol, interval, start_ms, end)
        frame = self._frames.get(symbol) if interval == "1" else None
        if frame is None:
            from jiritsu.market.frames import empty_frame

            return empty_frame()
        keep = pl.col("ts") < end
        if start_ms is not None:
            keep &= pl.col("ts") >= int(start_ms)
        return frame.filter(keep)

    def newest_stored_ts(self, symbol: str, intervals: Iterable[str], before_ms: int) -> int | None:
        """The open of the newest stored bar of any of ``intervals`` before ``before_ms``."""
        if self.holds_history:
            from jiritsu.market.frames import normalize_interval
            from jiritsu.market.symbols import normalize_symbol

            found = []
            for interval in intervals:
                ts = self._held(normalize_symbol(symbol), normalize_interval(interval))[1]
                i = int(np.searchsorted(ts, int(before_ms), side="left"))
                if i > 0:
                    found.append(int(ts[i - 1]))
            return max(found, default=None)
        if self.store is None:
            return None
        return self.store.newest_ts(symbol, intervals, before_ms)

    @property
    def holds_history(self) -> bool:
        """Offline with every stored bar loaded (a replay, a simulation): nothing tops the store
        up under it, so each stored series is read once and the history questions
        (:meth:`stored`, :meth:`newest_stored_ts`) are answered from memory -- the same bars,
        without a read of the store (and its cache check) per question."""
        return self._loaded and self.store is not None and self.client is None and self.days is None

    def _held(self, symbol: str, interval: str) -> tuple[pl.DataFrame, np.ndarray]:
        """A stored series and its bar opens, read from the store on first use."""
        if interval == "1" and symbol in self._frames:
            return self._frames[symbol], self._minutes[symbol]["ts"]
        found = self._series.get((symbol, interval))
        if found is None:
            assert self.store is not None
            frame = self.store.load(symbol, interval)
            found = (frame, _arrays(frame)["ts"])
            self._series[(symbol, interval)] = found
        return found

    def top_up(self, symbol: str, interval: str, *, days: float) -> int:
        """Live only: store the last ``days`` of ``interval`` bars from the client (resumable;
        usually one page); the bars inserted. Offline (no client): 0, nothing asked."""
        from jiritsu.market.backfill import backfill

        if self.client is None or self.store is None:
            return 0
        now = self.clock.now()
        return backfill(self.client, self.store, symbol, interval, days=days, now=now).inserted

    # --- the paper exchange's prices (the MarketSource protocol) ----------------------------

    def prepare(self, symbols: Iterable[str], now_ms: int | None = None) -> None:
        """Called by the paper exchange before it locks its ledger (every symbol is served)."""
        self._ensure(now_ms)

    def bars_between(
        self, symbol: str, start_ms: int, end_ms: int, *, now_ms: int | None = None
    ) -> pl.DataFrame:
        self._ensure(now_ms)
        return self.source.bars_between(symbol, start_ms, end_ms, now_ms=now_ms)

    def last_closed_bar(self, symbol: str, now_ms: int | None = None) -> Bar | None:
        self._ensure(now_ms)
        return self.source.last_closed_bar(symbol, now_ms)

    def price(self, symbol: str, now_ms: int | None = None) -> float | None:
        self._ensure(now_ms)
        return self.source.price(symbol, now_ms)

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
        *,
        now_ms: int | None = None,
    ) -> pl.DataFrame:
        self._ensure(now_ms)
        return self.source.klines(symbol, interval, start_ms, end_ms, limit, now_ms=now_ms)

    # --- the feed -------------------------------------------------------------------------

    def resampled(self, symbol: str, timeframe: str) -> tuple[pl.DataFrame, np.ndarray]:
        """Every 1-minute bar held for ``symbol`` resampled to ``timeframe`` (once per loaded
        data) and the bars' opens, future ones included: a reader takes the bars closed by its
        time (each bar is made of its own minutes only, so a bar reveals nothing early)."""
        from jiritsu.market.frames import resample

        self._ensure()
        key = (symbol, timeframe)
        found = self._resampled.get(key)
        if found is None:
            frame = self._frames[symbol]
            bars = frame if timeframe == "1" else resample(frame, timeframe)
            found = (bars, _arrays(bars)["ts"])
            self._resampled[key] = found
        return found

    def series(self, bot: Any) -> tuple[dict[str, np.ndarray], Bars]:
        """(bar arrays, Bars) of the bot's timeframe over the loaded window."""
        from jiritsu.strategy.contract import Bars

        key = (bot.symbol, bot.timeframe)
        found = self._bots.get(key)
        if found is None:
            cols = _arrays(self.resampled(bot.symbol, bot.timeframe)[0])
            found = (cols, Bars.from_columns(cols))
            self._bots[key] = found
        return found

    def bot_bars(self, bot: Any, params: np.ndarray, t_ms: int) -> BotBars | None:
        cols, series = self.series(bot)
        tf_ms = int(params[P_TF_MS])
        k = int(np.searchsorted(cols["ts"], t_ms - tf_ms, side="right")) - 1
        if k < 0:
            return None
        return BotBars(
            ts=cols["ts"],
            open=cols["open"],
            high=cols["high"],
            low=cols["low"],
            close=cols["close"],
            volume=cols["volume"],
            series=series,
            k=k,
            tf_ms=tf_ms,
        )

    def minute_columns(self, symbol: str) -> dict[str, np.ndarray] | None:
        """Every 1-minute bar held for ``symbol`` as arrays (ts, open, high, low, close,
        volume), future ones included: for scanning ahead of the clock, never for deciding."""
        self._ensure()
        return self._minutes.get(symbol)

    def minute_window(self, symbol: str, t_ms: int, count: int) -> dict[str, np.ndarray]:
        self._ensure()
        cols = self._minutes.get(symbol)
        if cols is None:
            return {}
        hi = int(np.searchsorted(cols["ts"], t_ms - MINUTE_MS, side="right"))
        lo = max(0, hi - count)
        return {k: v[lo:hi] for k, v in cols.items()}

    def minute_bars(self, symbol: str, category: str, t_ms: int, count: int) -> list[MinuteBar]:
        cols = self.minute_window(symbol, t_ms, count)
        if not cols:
            return []
        return [
            MinuteBar(
                int(cols["ts"][i]),
                float(cols["open"][i]),
                float(cols["high"][i]),
                float(cols["low"][i]),
                float(cols["close"][i]),
            )
            for i in range(len(cols["ts"]))
        ]
