"""The strategies Jiritsu ships, written against the public contract exactly as a user's are
(:mod:`jiritsu.strategy.contract`) and registered through the same registry."""

from __future__ import annotations

BUILTIN_MODULES = (
    "jiritsu.strategy.builtins.ema_cross",
    "jiritsu.strategy.builtins.rsi_reversion",
    "jiritsu.strategy.builtins.donchian_breakout",
)
