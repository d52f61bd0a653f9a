"""Simulation: the fill model shared by paper trading and the backtester (:mod:`.fills`), and the
clocks that drive replays (defined in :mod:`jiritsu.clock`). Light to import (no polars)."""

from __future__ import annotations

from jiritsu.clock import Clock, RealClock, SimClock, from_ms, to_ms
from jiritsu.sim.fills import (
    EXIT_NONE,
    EXIT_SL,
    EXIT_TP,
    VOL_WINDOW,
    atr_fraction,
    fee,
    limit_fill,
    market_fill_price,
    slippage_fraction,
    tp_sl_exit,
    tp_sl_fill,
)

__all__ = [
    "EXIT_NONE",
    "EXIT_SL",
    "EXIT_TP",
    "VOL_WINDOW",
    "Clock",
    "RealClock",
    "SimClock",
    "atr_fraction",
    "fee",
    "from_ms",
    "limit_fill",
    "market_fill_price",
    "slippage_fraction",
    "to_ms",
    "tp_sl_exit",
    "tp_sl_fill",
]
