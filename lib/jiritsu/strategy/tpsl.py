"""Take profit / stop loss: levels from the average entry and ATR, and who enforces them.

Numba-compatible float functions (see :mod:`jiritsu.strategy.step`).

Levels. For a position of side ``s`` (+1 long, -1 short) with average entry ``avg`` and the ATR
``atr`` of the entry's decision bar (ATR over ``dynamic_sizing.atr_period`` on the bot's
timeframe)::

    tp = round_to_tick(avg + s * tp_ratio * atr)
    sl = round_to_tick(avg - s * sl_ratio * atr)      (a stop at or below 0 is no stop)

The levels are a pure function of the CURRENT average entry: whenever the average changes (a leg
of a split entry fills) they move with it, so when the plan completes they are exactly the
levels of the recomputed average. ``strategy_params.tp_sl_enabled = false``: no levels at all.

Who enforces them:

- **linear** (exchange-side). The first leg carries provisional levels around the decision
  price ``ref`` (so the position is protected from its first fill); at every later step the
  levels of the current average are compared with the position's and set with
  ``set_trading_stop`` when they differ. The exchange triggers them intrabar: the paper exchange
  and the backtester check every 1-minute bar whose open is at or after the time they were set
  (a market fill: from its own bar), stop first, with :func:`jiritsu.sim.fills.tp_sl_fill`.
  If the new levels are already breached by the last price (the exchange would refuse them),
  the bot closes at market instead (:func:`levels_breached`).
- **spot** (bot-managed: spot has no position TP/SL here). At every step ``t`` that is a
  1-minute boundary, the bar that just closed (``[t - 1 min, t)``) is checked with
  :func:`jiritsu.sim.fills.tp_sl_exit` against the levels of the average entry held at ``t`` --
  touch triggers, the stop wins when both are touched -- provided the position was open at
  that bar's open (its first fill was at or before the bar's start). A trigger sends a market
  sell at ``t``, which fills at the open of the bar starting at ``t``. Nothing intrabar: the
  exit price is the next open (worse than the level after a gap, never better than it can be).
"""

from __future__ import annotations

from jiritsu.sim.fills import EXIT_NONE, EXIT_SL, EXIT_TP, tp_sl_exit
from jiritsu.strategy.split import round_to_tick


def tpsl_levels(
    avg: float, side: int, atr: float, tp_ratio: float, sl_ratio: float, tick: float
) -> tuple[float, float]:
    """(take profit, stop loss) around ``avg``; (0, 0) when ``atr`` or ``avg`` is not usable."""
    if not (avg > 0.0 and atr > 0.0) or side == 0:
        return 0.0, 0.0
    tp = round_to_tick(avg + side * tp_ratio * atr, tick)
    sl = round_to_tick(avg - side * sl_ratio * atr, tick)
    if tp <= 0.0:
        tp = 0.0
    if sl <= 0.0:
        sl = 0.0
    return tp, sl


def levels_breached(side: int, tp: float, sl: float, last: float) -> int:
    """EXIT_SL / EXIT_TP when the last price already stands at or beyond a level, else
    EXIT_NONE (stop first)."""
    if not last > 0.0 or side == 0:
        return EXIT_NONE
    if side > 0:
        if sl > 0.0 and last <= sl:
            return EXIT_SL
        if tp > 0.0 and last >= tp:
            return EXIT_TP
        return EXIT_NONE
    if sl > 0.0 and last >= sl:
        return EXIT_SL
    if tp > 0.0 and last <= tp:
        return EXIT_TP
    return EXIT_NONE


def spot_tpsl_trigger(
    tp: float, sl: float, bar_open: float, bar_high: float, bar_low: float
) -> int:
    """Whether a spot holding's levels fire on the 1-minute bar that just closed."""
    code, _price = tp_sl_exit(1, tp, sl, bar_open, bar_high, bar_low)
    return code


def same_level(a: float, b: float, tick: float) -> bool:
    """Two levels equal to within half a tick (0 means "none" and only equals 0)."""
    if a <= 0.0 or b <= 0.0:
        return a <= 0.0 and b <= 0.0
    return abs(a - b) < 0.5 * tick


__all__ = [
    "EXIT_NONE",
    "EXIT_SL",
    "EXIT_TP",
    "levels_breached",
    "same_level",
    "spot_tpsl_trigger",
    "tpsl_levels",
]
