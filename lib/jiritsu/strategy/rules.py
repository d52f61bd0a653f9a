"""Signal rules: bar ``i`` of the bot's indicator arrays -> (action, confidence).

Plain functions over float64 arrays (numba-compatible; :mod:`jiritsu.strategy.kernel` compiles
them), evaluated on CLOSED bars of the bot's timeframe: bar ``i``'s values use bars ``<= i``
only, and the decision is made at bar ``i``'s close.

Actions are ints: :data:`A_BUY` (+1), :data:`A_SELL` (-1), :data:`A_HOLD` (0). A HOLD has
confidence 0. Confidence is in [0, 1] and is what ``strategy_params.min_confidence`` is held
against.

``ema_cross`` (an event): BUY on the bar where EMA(fast) crosses above EMA(slow)
(``fast[i-1] <= slow[i-1]`` and ``fast[i] > slow[i]``), SELL on the cross below. Confidence
grows with how far the close already stands on the new side of the slow EMA, in ATRs:
``d = side * (close - slow) / atr``, ``confidence = clip(0.5 + 0.25 * d, 0, 1)`` (a close one
ATR past the slow EMA gives 0.75; one on the wrong side gives less than 0.5).

``rsi_reversion`` (a state): BUY while RSI < ``rsi_lower``, SELL while RSI > ``rsi_upper``.
Confidence grows with the distance into the zone: ``0.5 + 0.5 * (lower - rsi) / lower`` for a
BUY, ``0.5 + 0.5 * (rsi - upper) / (100 - upper)`` for a SELL (RSI 20 with lower 25 -> 0.6).

Undefined indicators (the warm-up, NaN) give HOLD.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from jiritsu.strategy.params import (
    P_ATR_PERIOD,
    P_FAST,
    P_RSI_LOWER,
    P_RSI_PERIOD,
    P_RSI_UPPER,
    P_RULE,
    P_SLOW,
    RULE_EMA_CROSS,
)

A_HOLD = 0
A_BUY = 1
A_SELL = -1
ACTION_NAMES = {A_BUY: "BUY", A_SELL: "SELL", A_HOLD: "HOLD"}
ACTION_CODES = {"BUY": A_BUY, "SELL": A_SELL, "HOLD": A_HOLD}


def clip01(x: float) -> float:
    if x < 0.0:
        return 0.0
    if x > 1.0:
        return 1.0
    return x


def ema_cross_signal(
    i: int, close: np.ndarray, fast: np.ndarray, slow: np.ndarray, atr: np.ndarray
) -> tuple[int, float]:
    """EMA cross at bar ``i`` (see the module docstring)."""
    if i < 1:
        return 0, 0.0
    f0 = fast[i - 1]
    s0 = slow[i - 1]
    f1 = fast[i]
    s1 = slow[i]
    if not (f0 == f0 and s0 == s0 and f1 == f1 and s1 == s1):  # NaN: still warming up
        return 0, 0.0
    side = 0
    if f0 <= s0 and f1 > s1:
        side = 1
    elif f0 >= s0 and f1 < s1:
        side = -1
    else:
        return 0, 0.0
    a = atr[i]
    d = 0.0
    if a > 0.0:  # False for NaN too
        d = side * (close[i] - s1) / a
    return side, clip01(0.5 + 0.25 * d)


def rsi_reversion_signal(i: int, rsi: np.ndarray, lower: float, upper: float) -> tuple[int, float]:
    """RSI mean reversion at bar ``i`` (see the module docstring)."""
    r = rsi[i]
    if not r == r:
        return 0, 0.0
    if r < lower:
        return 1, clip01(0.5 + 0.5 * (lower - r) / lower)
    if r > upper:
        return -1, clip01(0.5 + 0.5 * (r - upper) / (100.0 - upper))
    return 0, 0.0


def rule_signal(
    rule: int,
    i: int,
    close: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    rsi: np.ndarray,
    atr: np.ndarray,
    lower: float,
    upper: float,
) -> tuple[int, float]:
    """The configured rule at bar ``i``: (action, confidence)."""
    if rule == RULE_EMA_CROSS:
        return ema_cross_signal(i, close, fast, slow, atr)
    return rsi_reversion_signal(i, rsi, lower, upper)


def rule_signals(
    rule: int,
    close: np.ndarray,
    fast: np.ndarray,
    slow: np.ndarray,
    rsi: np.ndarray,
    atr: np.ndarray,
    lower: float,
    upper: float,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rule_signal` for every bar: (actions int64, confidences float64)."""
    n = close.shape[0]
    actions = np.zeros(n, dtype=np.int64)
    confs = np.zeros(n, dtype=np.float64)
    for i in range(n):
        a, c = rule_signal(rule, i, close, fast, slow, rsi, atr, lower, upper)
        actions[i] = a
        confs[i] = c
    return actions, confs


# --- Python-side helpers (not compiled) ------------------------------------------------------


def indicator_arrays(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    params: np.ndarray,
    ns: Any = None,
) -> SimpleNamespace:
    """The arrays the rules and the kernel read: ema_fast, ema_slow, rsi, atr (ATR over
    ``dynamic_sizing.atr_period``, which sizing and TP/SL use too).

    ``ns`` is an indicator namespace (default :mod:`jiritsu.indicators`; pass
    ``jiritsu.indicators.compiled()`` for long arrays).
    """
    if ns is None:
        from jiritsu import indicators as ns
    high = np.ascontiguousarray(high, dtype=np.float64)
    low = np.ascontiguousarray(low, dtype=np.float64)
    close = np.ascontiguousarray(close, dtype=np.float64)
    return SimpleNamespace(
        ema_fast=ns.ema(close, int(params[P_FAST])),
        ema_slow=ns.ema(close, int(params[P_SLOW])),
        rsi=ns.rsi(close, int(params[P_RSI_PERIOD])),
        atr=ns.atr(high, low, close, int(params[P_ATR_PERIOD])),
    )


def signal_at(
    i: int, close: np.ndarray, ind: SimpleNamespace, params: np.ndarray
) -> tuple[int, float]:
    """:func:`rule_signal` with the arrays of :func:`indicator_arrays` and the record."""
    return rule_signal(
        int(params[P_RULE]),
        i,
        close,
        ind.ema_fast,
        ind.ema_slow,
        ind.rsi,
        ind.atr,
        float(params[P_RSI_LOWER]),
        float(params[P_RSI_UPPER]),
    )


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.6g}"


def explain(
    action: int, confidence: float, i: int, close: np.ndarray, ind: SimpleNamespace, params: Any
) -> str:
    """A one-line human reason for the rule's answer at bar ``i`` (becomes ``entry_reason``)."""
    rule = int(params[P_RULE])
    if rule == RULE_EMA_CROSS:
        fast, slow = ind.ema_fast[i], ind.ema_slow[i]
        head = (
            f"EMA{int(params[P_FAST])} {_fmt(fast)} vs EMA{int(params[P_SLOW])} {_fmt(slow)}, "
            f"close {_fmt(close[i])}, ATR {_fmt(ind.atr[i])}"
        )
        if action == A_BUY:
            return f"ema_cross BUY ({confidence:.2f}): fast crossed above slow; {head}"
        if action == A_SELL:
            return f"ema_cross SELL ({confidence:.2f}): fast crossed below slow; {head}"
        if not (np.isfinite(fast) and np.isfinite(slow)):
            return f"ema_cross HOLD: indicators warming up; {head}"
        return f"ema_cross HOLD: no cross; {head}"
    r = ind.rsi[i]
    lower, upper = float(params[P_RSI_LOWER]), float(params[P_RSI_UPPER])
    head = f"RSI{int(params[P_RSI_PERIOD])} {_fmt(r)} (zone {lower:g}/{upper:g})"
    if action == A_BUY:
        return f"rsi_reversion BUY ({confidence:.2f}): oversold; {head}"
    if action == A_SELL:
        return f"rsi_reversion SELL ({confidence:.2f}): overbought; {head}"
    if not np.isfinite(r):
        return f"rsi_reversion HOLD: RSI warming up; {head}"
    return f"rsi_reversion HOLD: inside the zone; {head}"
