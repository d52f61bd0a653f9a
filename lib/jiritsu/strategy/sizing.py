"""Position sizing: a lot or a risked fraction of equity, x a volatility multiplier, capped.

Numba-compatible float functions (see :mod:`jiritsu.strategy.step`).

Two modes (``sub_bots.sizing``):

- ``lot``: the target notional is ``base_lot`` USDT (steps 1-2 below).
- ``risk`` (the default): the target notional is the one that loses ``risk_per_trade`` of the
  bot's capital when the stop is hit: ``risk_per_trade x available / stop distance``, the stop
  distance being ``sl_ratio x ATR / price`` (one ATR when TP/SL is off). The capital is the
  available balance, which is the bot's equity whenever it is flat (when it enters). A lot does
  not grow with the account; a risked fraction does, so PnL means something at any size.

In both modes the volatility multiplier of step 2 applies on top, then the cap of step 3.

1. Volatility = ATR(``atr_period``) / close of the decision bar. Below ``volatility_thresholds.
   low`` is the *low* bucket, below ``medium`` the *medium* bucket, else *high* (an undefined
   ATR counts as high: the most careful size). ``dynamic_sizing.enabled = false``: multiplier 1.
2. Target notional = the mode's notional x the bucket's ``sizing_multipliers`` value (USDT).
3. Capital cap: the capital the master layer gives a bot is its sub-account; what it can still
   commit is the account's *available* balance (wallet minus margin in use minus funds held by
   open orders, as the exchange reports it). Only the fraction ``max_capital_pct`` (default
   0.98) of it may be committed; the rest is headroom for slippage and the move until the fill:

   - linear: ``notional * (1 / leverage + taker_fee) <= max_capital_pct * available``
     (the opening margin plus the fee must fit), so
     ``cap = max_capital_pct * available / (1 / leverage + taker_fee)``;
   - spot: a buy pays the notional (the fee comes out of the coins bought), so
     ``cap = max_capital_pct * available``.

   The notional is ``min(target, cap)``.
4. Quantity = notional / decision price, rounded DOWN to the instrument's ``qty_step``; a
   quantity below ``min_qty`` or a value below ``min_notional`` is 0 (no entry).

Example (lot mode, hand-checked in the tests): base_lot 100, multipliers 1.2/1.0/0.6, thresholds
0.005/0.015, close 40000, ATR 400 (1 %) -> medium -> 100 USDT -> 0.0025 BTC -> step 0.001 ->
0.002 BTC. Risk mode, same bar, available 4000, risk 0.01, sl_ratio 1: stop distance 400 / 40000
= 1 % -> 40 / 0.01 = 4000 USDT -> x 1.0 -> capped at 0.98 x 4000 / 1.00055 = 3917.85 -> 0.097 BTC.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from jiritsu.strategy.params import (
    P_BASE_LOT,
    P_CAP_PCT,
    P_LEVERAGE,
    P_MIN_NOTIONAL,
    P_MIN_QTY,
    P_MULT_HIGH,
    P_MULT_LOW,
    P_MULT_MEDIUM,
    P_QTY_STEP,
    P_RISK_PER_TRADE,
    P_SIZING,
    P_SIZING_MODE,
    P_SL_RATIO,
    P_SPOT,
    P_TAKER_FEE,
    P_TPSL,
    P_VOL_LOW,
    P_VOL_MEDIUM,
)

if TYPE_CHECKING:
    import numpy as np

BUCKET_LOW = 0
BUCKET_MEDIUM = 1
BUCKET_HIGH = 2
BUCKET_NAMES = ("low", "medium", "high")
_STEP_EPS = 1e-9  # 2.9999999999 steps are 3 steps (float noise), 2.99 are 2


def floor_steps(x: float, step: float) -> float:
    """How many whole ``step``s fit in ``x`` (a float holding an integer, >= 0)."""
    if not (x > 0.0 and step > 0.0):
        return 0.0
    return float(math.floor(x / step + _STEP_EPS))


def steps_value(n: float, step: float) -> float:
    """``n`` whole steps as the float nearest to the exact decimal ``n x step``.

    ``75962 * 0.1`` is 7596.200000000001, a different float from the 7596.2 the exchange's
    Decimal becomes, so a bar touching the level exactly would trigger in one simulator only.
    A step that is ``1/k`` (0.1, 0.01, 0.5, 1e-6) divides by the integer ``k`` instead: one
    correctly rounded operation, hence the nearest float to ``n / k``. Other steps multiply.
    """
    if 0.0 < step < 1.0:
        k = math.floor(1.0 / step + 0.5)
        if k > 0.0 and abs(k * step - 1.0) < 1e-12:
            return n / k
    return n * step


def floor_to_step(x: float, step: float) -> float:
    """``x`` rounded DOWN to a multiple of ``step`` (exact to the step, see :func:`steps_value`)."""
    return steps_value(floor_steps(x, step), step)


def vol_bucket(vol: float, low: float, medium: float) -> int:
    """0 low, 1 medium, 2 high (NaN: high)."""
    if not vol == vol:
        return BUCKET_HIGH
    if vol < low:
        return BUCKET_LOW
    if vol < medium:
        return BUCKET_MEDIUM
    return BUCKET_HIGH


def bucket_multiplier(params: np.ndarray, bucket: int) -> float:
    if bucket == BUCKET_LOW:
        return params[P_MULT_LOW]
    if bucket == BUCKET_MEDIUM:
        return params[P_MULT_MEDIUM]
    return params[P_MULT_HIGH]


def capital_cap(
    available: float, spot: float, leverage: float, taker_fee: float, cap_pct: float
) -> float:
    """The largest notional the available balance can carry (see the module docstring)."""
    if not available > 0.0:
        return 0.0
    if spot > 0.0:
        return cap_pct * available
    return cap_pct * available / (1.0 / leverage + taker_fee)


def risk_notional(price: float, atr: float, available: float, params: np.ndarray) -> float:
    """The notional that loses ``risk_per_trade`` of ``available`` at the stop (0: unknown)."""
    ratio = params[P_SL_RATIO] if params[P_TPSL] > 0.0 else 1.0
    if not (price > 0.0 and atr > 0.0 and ratio > 0.0 and available > 0.0):
        return 0.0
    distance = ratio * atr / price
    return params[P_RISK_PER_TRADE] * available / distance


def entry_size(
    price: float, atr: float, available: float, params: np.ndarray
) -> tuple[float, int, float, float]:
    """(quantity, bucket, multiplier, notional before rounding) of an entry at ``price``.

    The bucket is -1 when dynamic sizing is off. The quantity is 0.0 when nothing valid fits.
    """
    p = params
    bucket = -1
    mult = 1.0
    if p[P_SIZING] > 0.0:
        vol = atr / price if price > 0.0 else math.nan
        bucket = vol_bucket(vol, p[P_VOL_LOW], p[P_VOL_MEDIUM])
        mult = bucket_multiplier(p, bucket)
    if p[P_SIZING_MODE] > 0.0:
        notional = risk_notional(price, atr, available, p) * mult
    else:
        notional = p[P_BASE_LOT] * mult
    cap = capital_cap(available, p[P_SPOT], p[P_LEVERAGE], p[P_TAKER_FEE], p[P_CAP_PCT])
    if cap < notional:
        notional = cap
    if not (price > 0.0 and notional > 0.0):
        return 0.0, bucket, mult, 0.0
    qty = floor_to_step(notional / price, p[P_QTY_STEP])
    if qty < p[P_MIN_QTY] or qty * price < p[P_MIN_NOTIONAL]:
        return 0.0, bucket, mult, notional
    return qty, bucket, mult, notional
