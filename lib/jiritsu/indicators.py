"""Technical indicators: one implementation for live ticks, the phase classifier and backtests.

Plain loops over float64 arrays with no Python objects inside, so the same source runs as Python
(a live tick needs a few hundred bars) and compiled by numba (a backtest needs a year of minutes):
:func:`compiled` returns the numba versions. Values that are not defined yet (the warm-up) are NaN,
and a value at index ``i`` uses bars up to ``i`` only: no lookahead.

Definitions (the classic ones):
- EMA: seeded with the simple mean of the first ``period`` values, then
  ``ema[i] = ema[i-1] + (x[i] - ema[i-1]) * 2 / (period + 1)``.
- RSI, ATR, ADX: Wilder's smoothing (``avg[i] = (avg[i-1] * (n-1) + v[i]) / n``) seeded with the
  simple mean of the first ``n`` values.
"""

from __future__ import annotations

from functools import lru_cache
from types import FunctionType, SimpleNamespace

import numpy as np

NAN = np.nan


def ema(x: np.ndarray, period: int) -> np.ndarray:
    n = x.shape[0]
    out = np.full(n, NAN)
    if period < 1 or n < period:
        return out
    acc = 0.0
    for i in range(period):
        acc += x[i]
    prev = acc / period
    out[period - 1] = prev
    alpha = 2.0 / (period + 1.0)
    for i in range(period, n):
        prev = prev + (x[i] - prev) * alpha
        out[i] = prev
    return out


def rsi(close: np.ndarray, period: int) -> np.ndarray:
    n = close.shape[0]
    out = np.full(n, NAN)
    if period < 1 or n <= period:
        return out
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        d = close[i] - close[i - 1]
        if d > 0:
            gain += d
        else:
            loss -= d
    avg_gain = gain / period
    avg_loss = loss / period
    out[period] = 100.0 if avg_loss == 0.0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    for i in range(period + 1, n):
        d = close[i] - close[i - 1]
        g = d if d > 0 else 0.0
        lo = -d if d < 0 else 0.0
        avg_gain = (avg_gain * (period - 1) + g) / period
        avg_loss = (avg_loss * (period - 1) + lo) / period
        out[i] = 100.0 if avg_loss == 0.0 else 100.0 - 100.0 / (1.0 + avg_gain / avg_loss)
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    n = high.shape[0]
    out = np.full(n, NAN)
    if n == 0:
        return out
    out[0] = high[0] - low[0]
    for i in range(1, n):
        a = high[i] - low[i]
        b = abs(high[i] - close[i - 1])
        c = abs(low[i] - close[i - 1])
        out[i] = max(a, max(b, c))
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """Wilder's average true range; the first value is at index ``period`` (needs a prior close)."""
    n = high.shape[0]
    out = np.full(n, NAN)
    if period < 1 or n <= period:
        return out
    tr = true_range(high, low, close)
    acc = 0.0
    for i in range(1, period + 1):
        acc += tr[i]
    prev = acc / period
    out[period] = prev
    for i in range(period + 1, n):
        prev = (prev * (period - 1) + tr[i]) / period
        out[i] = prev
    return out


def adx(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wilder's ADX with +DI and -DI (each 0..100). +DI/-DI start at index ``period``, ADX at
    ``2 * period - 1``."""
    n = high.shape[0]
    adx_out = np.full(n, NAN)
    plus_di = np.full(n, NAN)
    minus_di = np.full(n, NAN)
    if period < 1 or n <= 2 * period - 1:
        return adx_out, plus_di, minus_di
    tr = true_range(high, low, close)
    sm_tr = 0.0
    sm_p = 0.0
    sm_m = 0.0
    dx_sum = 0.0
    prev_adx = 0.0
    for i in range(1, n):
        up = high[i] - high[i - 1]
        down = low[i - 1] - low[i]
        pdm = up if (up > down and up > 0) else 0.0
        mdm = down if (down > up and down > 0) else 0.0
        if i <= period:
            sm_tr += tr[i]
            sm_p += pdm
            sm_m += mdm
            if i < period:
                continue
        else:
            sm_tr = sm_tr - sm_tr / period + tr[i]
            sm_p = sm_p - sm_p / period + pdm
            sm_m = sm_m - sm_m / period + mdm
        p = 100.0 * sm_p / sm_tr if sm_tr > 0 else 0.0
        m = 100.0 * sm_m / sm_tr if sm_tr > 0 else 0.0
        plus_di[i] = p
        minus_di[i] = m
        dx = 100.0 * abs(p - m) / (p + m) if (p + m) > 0 else 0.0
        k = i - period  # 0 for the first DI value
        if k < period - 1:
            dx_sum += dx
        elif k == period - 1:
            dx_sum += dx
            prev_adx = dx_sum / period
            adx_out[i] = prev_adx
        else:
            prev_adx = (prev_adx * (period - 1) + dx) / period
            adx_out[i] = prev_adx
    return adx_out, plus_di, minus_di


@lru_cache(maxsize=2)
def compiled(cache: bool = True) -> SimpleNamespace:
    """numba-compiled versions of every indicator (compiled on first use; disk-cached)."""
    from numba import njit

    tr = njit(cache=cache)(true_range)
    ns = {"true_range": tr}
    glob = dict(globals())
    glob["true_range"] = tr  # atr/adx call true_range: they must see the compiled one
    for name, fn in (("ema", ema), ("rsi", rsi), ("atr", atr), ("adx", adx)):
        rebuilt = FunctionType(fn.__code__, glob, fn.__name__, fn.__defaults__, fn.__closure__)
        ns[name] = njit(cache=cache)(rebuilt)
    return SimpleNamespace(**ns)
