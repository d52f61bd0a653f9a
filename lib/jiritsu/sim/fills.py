"""The one fill model, shared by paper trading and the backtester.

Backtests that fill differently from paper (or live) trading are the classic reason a strategy
that "worked" loses money, so both simulators call these functions and nothing else decides a
fill price. They are plain functions on floats and ints (no Python objects, no Decimal, tuples
out), so the backtester can wrap them in ``numba.njit`` unchanged; the paper exchange converts
its Decimals to float at the call and back (quantized to 1e-8) afterwards.

Signs: ``side_sign`` is +1 for a buy and -1 for a sell; ``pos_sign`` is +1 for a long and -1 for a
short position. A price argument of ``0`` or ``NaN`` means "not set" where documented.

The bar protocol (what a simulator does with each bar, in this order):

1. Market orders accepted at or before the bar's open time fill at the bar's OPEN plus slippage
   (:func:`market_fill_price`), as taker. A decision made at the close of bar t therefore fills
   at the open of bar t+1: never at a price the decision already saw.
2. Take profit / stop loss of open positions (:func:`tp_sl_exit`, :func:`tp_sl_fill`), as taker.
   A position opened by a market order at this bar's open is already checked on this bar (the
   open is the bar's first trade, so its whole range comes after the entry).
3. Limit orders accepted at or before the bar's open time (:func:`limit_fill`), as maker. A
   position opened by a limit fill gets its TP/SL checked from the NEXT bar on (where in the bar
   the limit filled is unknown).

Paper trading runs this protocol on 1-minute bars; a backtest on coarser bars follows the same
steps per bar. Kernels get the numba-compiled versions from :func:`compiled`; paper trading calls
the plain functions. Both run the same IEEE arithmetic, so they agree to the last bit.
"""

from __future__ import annotations

import functools
import math
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

EXIT_NONE = 0
EXIT_TP = 1
EXIT_SL = 2

BPS = 1e-4  # one basis point as a fraction
VOL_WINDOW = 14  # bars in the volatility estimate that scales slippage


def slippage_fraction(slippage_bps: float, vol: float = 0.0, vol_factor: float = 0.0) -> float:
    """Adverse price move of a taker fill as a fraction of the price.

    ``slippage_bps * 1e-4 + vol_factor * vol``: a fixed part in basis points plus a part that
    grows with recent volatility, ``vol`` being a fraction of the price (ATR / close, see
    :func:`atr_fraction`). Example: 2 bps, vol 0.01 (1 % ATR), factor 0.1 -> 0.0002 + 0.001 =
    0.0012 (12 bps). Negative inputs count as zero: slippage never improves a fill.
    """
    fixed = slippage_bps if slippage_bps > 0.0 else 0.0
    extra = vol_factor * vol
    if not extra > 0.0:  # also catches NaN
        extra = 0.0
    return fixed * BPS + extra


def market_fill_price(
    ref_price: float,
    side_sign: int,
    slippage_bps: float,
    vol: float = 0.0,
    vol_factor: float = 0.0,
) -> float:
    """Fill price of a market (taker) order at ``ref_price`` (the next bar's open).

    ``ref_price * (1 + side_sign * slippage_fraction(...))``: a buy pays more, a sell receives
    less. Example: open 100, buy, 2 bps -> 100.02; sell -> 99.98.
    """
    return ref_price * (1.0 + side_sign * slippage_fraction(slippage_bps, vol, vol_factor))


def limit_fill(
    side_sign: int, limit_price: float, bar_open: float, bar_high: float, bar_low: float
) -> tuple[bool, float]:
    """Whether a resting limit order fills in this bar, and at what price.

    Conservative "trades through" rule: a touch is not enough (the queue ahead of us may have
    taken all the volume at that price). A buy fills when ``bar_low < limit``, a sell when
    ``bar_high > limit``. The price is the limit, or the bar's open when the bar opened beyond it
    (a gap: a buy limit at 100 with the bar opening at 98 fills at 98). ``bar_high`` is unused by
    a buy and ``bar_low`` by a sell; both are taken so the call is the same for either side.
    """
    if side_sign > 0:
        if bar_low < limit_price:
            return True, bar_open if bar_open < limit_price else limit_price
        return False, 0.0
    if bar_high > limit_price:
        return True, bar_open if bar_open > limit_price else limit_price
    return False, 0.0


def tp_sl_exit(
    pos_sign: int,
    tp: float,
    sl: float,
    bar_open: float,
    bar_high: float,
    bar_low: float,
) -> tuple[int, float]:
    """Which exit (if any) a position's take profit / stop loss triggers in this bar, and the
    trigger price before slippage.

    Returns ``(code, price)``: ``(EXIT_NONE, 0.0)``, ``(EXIT_TP, price)`` or ``(EXIT_SL, price)``.
    ``tp``/``sl`` of 0 or NaN are "not set". Triggers are on touch (Bybit's TP/SL are trigger
    orders on the last price): a long's SL when ``bar_low <= sl``, its TP when ``bar_high >= tp``;
    a short mirrored (SL when ``bar_high >= sl``, TP when ``bar_low <= tp``).

    - The open is checked first: a bar opening at or beyond the SL (long: ``open <= sl``) exits
      at the OPEN, worse than the stop; a bar opening at or beyond the TP exits at the open too.
    - Otherwise the exit is at the trigger price. When one bar touches both, the STOP is assumed
      first (the intrabar path is unknown; assuming the loss keeps backtests honest).
    """
    has_tp = tp > 0.0  # False for 0 and NaN
    has_sl = sl > 0.0
    if pos_sign == 0 or not (has_tp or has_sl):
        return EXIT_NONE, 0.0
    if pos_sign > 0:
        if has_sl and bar_open <= sl:
            return EXIT_SL, bar_open
        if has_tp and bar_open >= tp:
            return EXIT_TP, bar_open
        if has_sl and bar_low <= sl:
            return EXIT_SL, sl
        if has_tp and bar_high >= tp:
            return EXIT_TP, tp
        return EXIT_NONE, 0.0
    if has_sl and bar_open >= sl:
        return EXIT_SL, bar_open
    if has_tp and bar_open <= tp:
        return EXIT_TP, bar_open
    if has_sl and bar_high >= sl:
        return EXIT_SL, sl
    if has_tp and bar_low <= tp:
        return EXIT_TP, tp
    return EXIT_NONE, 0.0


def tp_sl_fill(
    pos_sign: int,
    tp: float,
    sl: float,
    bar_open: float,
    bar_high: float,
    bar_low: float,
    slippage_bps: float,
    vol: float = 0.0,
    vol_factor: float = 0.0,
) -> tuple[int, float]:
    """:func:`tp_sl_exit` plus the slippage of the market order the trigger sends.

    A triggered TP/SL closes the position with a market order on the opposite side, so the exit
    price is ``market_fill_price(trigger_price, -pos_sign, ...)``: a long's stop at 95 with 2 bps
    fills at 94.981. Returns ``(EXIT_NONE, 0.0)`` when nothing triggers.
    """
    code, price = tp_sl_exit(pos_sign, tp, sl, bar_open, bar_high, bar_low)
    if code == EXIT_NONE:
        return code, price
    return code, market_fill_price(price, -pos_sign, slippage_bps, vol, vol_factor)


def fee(notional: float, rate: float) -> float:
    """Exchange fee of a fill: ``|notional| * rate`` (notional = qty * price)."""
    return abs(notional) * rate


def round8(x: float) -> float:
    """``x`` rounded to 1e-8, half-even: the float of what the ledger's ``q8`` stores.

    The backtester's twin of the paper exchange's Decimal rounding of fees: a spot buy's fee is
    taken from the coins bought, so an unrounded fee leaves a holding that sells as 1.468372
    where the exchange holds (and sells) 1.468373, and every fee is booked to 1e-8. A float
    within 1e-7 units of a half counts as the half (``qty x rate`` of decimal inputs is a float
    a hair off one).
    """
    units = x * 1e8
    n = float(math.floor(units))
    frac = units - n
    if abs(frac - 0.5) < 1e-7:
        if n % 2.0 != 0.0:
            n += 1.0
    elif frac > 0.5:
        n += 1.0
    return n / 1e8


def atr_fraction(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> float:
    """Average true range of the given bars divided by the last close (0.0 with < 2 bars).

    True range of bar i (i >= 1) = max(high_i - low_i, |high_i - close_{i-1}|,
    |low_i - close_{i-1}|); the first bar only supplies the previous close. Callers pass the
    ``VOL_WINDOW + 1`` bars that CLOSED before the fill bar, so the estimate never sees the bar
    it prices. This is the ``vol`` of :func:`slippage_fraction`.
    """
    n = high.shape[0]
    if n < 2:
        return 0.0
    total = 0.0
    for i in range(1, n):
        prev = close[i - 1]
        tr = max(high[i] - low[i], abs(high[i] - prev), abs(low[i] - prev))
        total += tr
    last = close[n - 1]
    if not last > 0.0:
        return 0.0
    value = total / (n - 1) / last
    if math.isnan(value):
        return 0.0
    return value


# Dependency order: a function's callees come before it.
_JIT_ORDER = (
    "slippage_fraction",
    "market_fill_price",
    "limit_fill",
    "tp_sl_exit",
    "tp_sl_fill",
    "fee",
    "round8",
    "atr_fraction",
)


@functools.cache
def compiled(cache: bool = False) -> types.SimpleNamespace:
    """The functions above compiled with ``numba.njit``, for the backtester's kernels.

    numba resolves a callee through the caller's globals, so each function is cloned with
    globals in which its callees are already compiled (this module itself stays plain Python,
    and importing it never imports numba). Use the attributes as module-level globals of a
    kernel: ``market_fill_price = fills.compiled().market_fill_price``.
    """
    import numba

    jitted: dict[str, Any] = {}
    for name in _JIT_ORDER:
        fn = globals()[name]
        scope = {**globals(), **jitted}
        clone = types.FunctionType(fn.__code__, scope, name, fn.__defaults__, fn.__closure__)
        clone.__doc__ = fn.__doc__
        jitted[name] = numba.njit(cache=cache)(clone)
    return types.SimpleNamespace(**jitted)
