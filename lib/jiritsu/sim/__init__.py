"""Simulation: the fill model shared by paper trading and the backtester (:mod:`.fills`). Light to
import (no polars). The clocks that drive replays live in :mod:`jiritsu.clock`."""

from __future__ import annotations

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
    "atr_fraction",
    "fee",
    "limit_fill",
    "market_fill_price",
    "slippage_fraction",
    "tp_sl_exit",
    "tp_sl_fill",
]
