"""Build the kernel's input arrays from 1-minute candles, and run a bot over them.

:func:`prepare` is the ONE way to turn candles and a bot's settings into what
:func:`jiritsu.strategy.kernel.simulate` reads -- the same resampling and indicator functions the
live :class:`~jiritsu.market.data.MarketData` uses -- and :func:`run` calls it. A backtest, a
tuning grid (change ``inputs.params`` or rebuild from ``settings.with_params(...)``) and the
parity test all go through here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from jiritsu.strategy import kernel as K
from jiritsu.strategy.params import (
    P_RSI_LOWER,
    P_RSI_UPPER,
    P_RULE,
    P_TF_MS,
    P_VOL_FACTOR,
    build_params,
)

if TYPE_CHECKING:
    import polars as pl

    from jiritsu.exchange.types import Instrument


@dataclass(frozen=True)
class SimInputs:
    ts: np.ndarray  # 1-minute bar opens (ms, float64)
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    vol: np.ndarray  # slippage volatility per 1-minute bar (zeros without a vol factor)
    tf_ts: np.ndarray  # the bot's timeframe bars: opens (ms, float64) ...
    tf_close_ms: np.ndarray  # ... and close times (open + timeframe)
    tf_close: np.ndarray
    tf_atr: np.ndarray
    sig: np.ndarray  # the rule's action per timeframe bar (float64: -1, 0, 1)
    conf: np.ndarray
    params: np.ndarray

    def with_params(self, params: np.ndarray, candles_1m: pl.DataFrame | None = None) -> Any:
        """The same candles with another parameter record (indicators recomputed when a
        period changed, which needs the candles again)."""
        if candles_1m is not None:
            return _build(candles_1m, params)
        return replace(self, params=params)


@dataclass(frozen=True)
class SimResult:
    acts: np.ndarray  # kernel.NACT columns
    fills: np.ndarray  # kernel.F_* columns
    equity: np.ndarray  # per 1-minute bar (empty when not asked for)
    state: np.ndarray
    account: np.ndarray

    @property
    def closing_pnl(self) -> np.ndarray:
        """PnL of every closing fill (after fees), in order."""
        closing = self.fills[:, K.F_PNL] != 0.0
        return np.asarray(self.fills[closing, K.F_PNL])


def _build(candles: pl.DataFrame, params: np.ndarray, ns: Any = None) -> SimInputs:
    from jiritsu.market.frames import INTERVALS, resample, to_numpy
    from jiritsu.strategy.rules import indicator_arrays, rule_signals

    tf_ms = int(params[P_TF_MS])
    interval = {ms: name for name, ms in INTERVALS.items()}[tf_ms]
    bars = candles if tf_ms == 60_000 else resample(candles, interval)
    m = to_numpy(candles)
    b = to_numpy(bars)
    ind = indicator_arrays(b["high"], b["low"], b["close"], params, ns)
    tf_close = np.ascontiguousarray(b["close"], dtype=np.float64)
    sig, conf = rule_signals(
        int(params[P_RULE]), tf_close, ind.ema_fast, ind.ema_slow, ind.rsi, ind.atr,
        float(params[P_RSI_LOWER]), float(params[P_RSI_UPPER]),
    )  # fmt: skip
    ts = np.asarray(m["ts"], dtype=np.float64)
    tf_ts = np.asarray(b["ts"], dtype=np.float64)
    vol = np.zeros(ts.shape[0])
    if params[P_VOL_FACTOR] > 0:
        from jiritsu.sim.fills import VOL_WINDOW

        vol = K.slippage_vol(ts, tf_ts, b["high"], b["low"], tf_close, float(tf_ms), VOL_WINDOW)
    return SimInputs(
        ts=ts,
        open=np.ascontiguousarray(m["open"], dtype=np.float64),
        high=np.ascontiguousarray(m["high"], dtype=np.float64),
        low=np.ascontiguousarray(m["low"], dtype=np.float64),
        close=np.ascontiguousarray(m["close"], dtype=np.float64),
        vol=vol,
        tf_ts=tf_ts,
        tf_close_ms=tf_ts + tf_ms,
        tf_close=tf_close,
        tf_atr=np.ascontiguousarray(ind.atr, dtype=np.float64),
        sig=sig.astype(np.float64),
        conf=conf,
        params=params,
    )


def prepare(
    bot: Any,
    settings: Any,
    candles: pl.DataFrame,
    *,
    instrument: Instrument | None = None,
    ns: Any = None,
) -> SimInputs:
    """The kernel's inputs for ``bot`` over canonical 1-minute ``candles`` (the whole stored
    range, warm-up included: start the run later with ``start_ms``). ``ns``: an indicator
    namespace (``jiritsu.indicators.compiled()`` for long ranges)."""
    return _build(candles, build_params(bot, settings, instrument), ns)


def run(
    inputs: SimInputs,
    equity0: float,
    start_ms: float,
    end_ms: float,
    *,
    compiled: bool = False,
    keep_equity: bool = True,
    capacity: int = 100_000,
) -> SimResult:
    """:func:`jiritsu.strategy.kernel.simulate` over ``[start_ms, end_ms)`` (steps at the
    1-minute bar opens in that range), with output arrays grown until everything fits."""
    fn = K.compiled().simulate if compiled else K.simulate
    n = inputs.ts.shape[0]
    while True:
        acts = np.zeros((capacity, K.NACT))
        fills = np.zeros((capacity, K.NFILL))
        equity = np.zeros(n if keep_equity else 0)
        na, nf, state, account = fn(
            inputs.ts, inputs.open, inputs.high, inputs.low, inputs.close, inputs.vol,
            inputs.tf_close_ms, inputs.tf_close, inputs.tf_atr, inputs.sig, inputs.conf,
            inputs.params, float(equity0), float(start_ms), float(end_ms), acts, fills, equity,
        )  # fmt: skip
        if na <= capacity and nf <= capacity:
            return SimResult(acts[:na], fills[:nf], equity, state, account)
        capacity = 2 * max(na, nf)
