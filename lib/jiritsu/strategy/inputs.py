"""Build the kernel's input arrays from 1-minute candles, and run a bot over them.

:func:`prepare` is the ONE way to turn candles and a bot's settings into what
:func:`jiritsu.strategy.driver.simulate` reads -- the same resampling and indicator functions the
live :class:`~jiritsu.market.data.MarketData` uses -- and :func:`run` calls it. A backtest, a
tuning grid (change ``inputs.params`` or rebuild from ``settings.with_params(...)``) and the
parity test all go through here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from jiritsu.strategy import book, driver
from jiritsu.strategy.jit import compiled as compiled_kernel
from jiritsu.strategy.params import P_ATR_PERIOD, P_TF_MS, P_VOL_FACTOR, build_params

if TYPE_CHECKING:
    import polars as pl

    from jiritsu.exchange.types import Instrument
    from jiritsu.strategy.contract import Bars, Strategy


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
    sig: np.ndarray  # the strategy's action per timeframe bar (int8: -1, 0, 1)
    conf: np.ndarray
    params: np.ndarray

    def with_params(self, params: np.ndarray) -> Any:
        """The same candles and signals with another kernel parameter record (sizing, TP/SL,
        split...; the strategy's own parameters change the signals: call :func:`prepare`)."""
        return replace(self, params=params)


def strategy_signals(strategy: Strategy, params: Any, bars: Bars) -> tuple[np.ndarray, np.ndarray]:
    """The strategy's (action, confidence) per bar as the kernel reads them (int8 actions,
    float64 confidences, both C-contiguous and writable: one compiled signature), checked
    against the contract and computed once per (strategy, params) for ``bars``."""
    from jiritsu.strategy.contract import checked_signals

    def for_kernel() -> tuple[np.ndarray, np.ndarray]:
        action, confidence = checked_signals(strategy, bars, params)
        return kernel_actions(action), np.require(confidence, np.float64, ["C", "W"])

    return bars.memo(("kernel signals", type(strategy), params), for_kernel)


def kernel_actions(action: Any) -> np.ndarray:
    """Actions as the kernel reads them: int8 (-1, 0, 1), C-contiguous, writable (a copy only
    when ``action`` is not that already)."""
    return np.require(action, np.int8, ["C", "W"])


@dataclass(frozen=True)
class SimResult:
    acts: np.ndarray  # driver.NACT columns
    fills: np.ndarray  # book.F_* columns
    equity: np.ndarray  # per 1-minute bar (empty when not asked for)
    state: np.ndarray
    account: np.ndarray


def _build(
    candles: pl.DataFrame, params: np.ndarray, strategy: Strategy, sparams: Any
) -> SimInputs:
    from jiritsu.market.frames import INTERVALS, resample, to_numpy
    from jiritsu.strategy.contract import Bars

    tf_ms = int(params[P_TF_MS])
    interval = {ms: name for name, ms in INTERVALS.items()}[tf_ms]
    frame = candles if tf_ms == 60_000 else resample(candles, interval)
    m = to_numpy(candles)
    bars = Bars.from_columns(to_numpy(frame))
    sig, conf = strategy_signals(strategy, sparams, bars)
    atr = bars.atr(int(params[P_ATR_PERIOD]))
    ts = np.asarray(m["ts"], dtype=np.float64)
    vol = np.zeros(ts.shape[0])
    if params[P_VOL_FACTOR] > 0:
        from jiritsu.sim.fills import VOL_WINDOW

        vol = driver.slippage_vol(
            ts, bars.ts, bars.high, bars.low, bars.close, float(tf_ms), VOL_WINDOW
        )
    return SimInputs(
        ts=ts,
        open=np.ascontiguousarray(m["open"], dtype=np.float64),
        high=np.ascontiguousarray(m["high"], dtype=np.float64),
        low=np.ascontiguousarray(m["low"], dtype=np.float64),
        close=np.ascontiguousarray(m["close"], dtype=np.float64),
        vol=vol,
        tf_ts=bars.ts,
        tf_close_ms=bars.ts + tf_ms,
        tf_close=bars.close,
        tf_atr=np.ascontiguousarray(atr, dtype=np.float64),
        sig=sig,
        conf=conf,
        params=params,
    )


def prepare(
    bot: Any,
    settings: Any,
    candles: pl.DataFrame,
    *,
    instrument: Instrument | None = None,
) -> SimInputs:
    """The kernel's inputs for ``bot`` over canonical 1-minute ``candles`` (the whole stored
    range, warm-up included: start the run later with ``start_ms``)."""
    from jiritsu.strategy.registry import resolve

    strategy, sparams = resolve(settings, bot)
    return _build(candles, build_params(bot, settings, instrument), strategy, sparams)


def run(
    inputs: SimInputs,
    equity0: float,
    start_ms: float,
    end_ms: float,
    *,
    compiled: bool = False,
    keep_equity: bool = True,
    capacity: int = 100_000,
    halts: np.ndarray | None = None,
) -> SimResult:
    """:func:`jiritsu.strategy.driver.simulate` over ``[start_ms, end_ms)`` (steps at the
    1-minute bar opens in that range), with output arrays grown until everything fits;
    ``halts``: the portfolio's global halts (see ``simulate``; None: never halted)."""
    fn = compiled_kernel().simulate if compiled else driver.simulate
    n = inputs.ts.shape[0]
    while True:
        acts = np.zeros((capacity, driver.NACT))
        fills = np.zeros((capacity, book.NFILL))
        equity = np.zeros(n if keep_equity else 0)
        na, nf, state, account = fn(
            inputs.ts, inputs.open, inputs.high, inputs.low, inputs.close, inputs.vol,
            inputs.tf_close_ms, inputs.tf_close, inputs.tf_atr, inputs.sig, inputs.conf,
            inputs.params, float(equity0), float(start_ms), float(end_ms), acts, fills, equity,
            driver.no_halts() if halts is None else halts,
        )  # fmt: skip
        if na <= capacity and nf <= capacity:
            return SimResult(acts[:na], fills[:nf], equity, state, account)
        capacity = 2 * max(na, nf)
