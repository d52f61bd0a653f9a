"""Dynamic position sizing: volatility bucket -> multiplier x base_lot, capped by capital.

Numba-compatible float functions (see :mod:`jiritsu.strategy.kernel`).

1. Volatility = ATR(``atr_period``) / close of the decision bar. Below ``volatility_thresholds.
   low`` is the *low* bucket, below ``medium`` the *medium* bucket, else *high* (an undefined
   ATR counts as high: the most careful size). ``dynamic_sizing.enabled = false``: multiplier 1.
2. Target notional = ``base_lot`` x the bucket's ``sizing_multipliers`` value (USDT).
3. Capital cap: the capital the master layer gives a bot is its sub-account; what it can still
   commit is the account's *available* balance (wallet minus margin in use minus funds held by
   open orders, as the exchange reports it). With :data:`CAP_FRACTION` of it kept as headroom
   for slippage and the move until the fill:

   - linear: ``notional * (1 / leverage + taker_fee) <= CAP_FRACTION * available``
     (the opening margin plus the fee must fit), so
     ``cap = CAP_FRACTION * available / (1 / leverage + taker_fee)``;
   - spot: a buy pays the notional (the fee comes out of the coins bought), so
     ``cap = CAP_FRACTION * available``.

   The notional is ``min(target, cap)``.
4. Quantity = notional / decision price, rounded DOWN to the instrument's ``qty_step``; a
   quantity below ``min_qty`` or a value below ``min_notional`` is 0 (no entry).

Example (hand-checked in the tests): base_lot 100, multipliers 1.2/1.0/0.6, thresholds
0.005/0.015, close 40000, ATR 400 (1 %) -> medium -> 100 USDT -> 0.0025 BTC -> step 0.001 ->
0.002 BTC.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from jiritsu.strategy.params import (
    P_BASE_LOT,
    P_LEVERAGE,
    P_MIN_NOTIONAL,
    P_MIN_QTY,
    P_MULT_HIGH,
    P_MULT_LOW,
    P_MULT_MEDIUM,
    P_QTY_STEP,
    P_SIZING,
    P_SPOT,
    P_TAKER_FEE,
    P_VOL_LOW,
    P_VOL_MEDIUM,
)

if TYPE_CHECKING:
    import numpy as np

BUCKET_LOW = 0
BUCKET_MEDIUM = 1
BUCKET_HIGH = 2
BUCKET_NAMES = ("low", "medium", "high")
CAP_FRACTION = 0.98
_STEP_EPS = 1e-9  # 2.9999999999 steps are 3 steps (float noise), 2.99 are 2


def floor_steps(x: float, step: float) -> float:
    """How many whole ``step``s fit in ``x`` (a float holding an integer, >= 0)."""
    if not (x > 0.0 and step > 0.0):
        return 0.0
    return float(math.floor(x / step + _STEP_EPS))


def floor_to_step(x: float, step: float) -> float:
    """``x`` rounded DOWN to a multiple of ``step``."""
    return floor_steps(x, step) * step


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


def capital_cap(available: float, spot: float, leverage: float, taker_fee: float) -> float:
    """The largest notional the available balance can carry (see the module docstring)."""
    if not available > 0.0:
        return 0.0
    if spot > 0.0:
        return CAP_FRACTION * available
    return CAP_FRACTION * available / (1.0 / leverage + taker_fee)


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
    notional = p[P_BASE_LOT] * mult
    cap = capital_cap(available, p[P_SPOT], p[P_LEVERAGE], p[P_TAKER_FEE])
    if cap < notional:
        notional = cap
    if not (price > 0.0 and notional > 0.0):
        return 0.0, bucket, mult, 0.0
    qty = floor_to_step(notional / price, p[P_QTY_STEP])
    if qty < p[P_MIN_QTY] or qty * price < p[P_MIN_NOTIONAL]:
        return 0.0, bucket, mult, notional
    return qty, bucket, mult, notional
