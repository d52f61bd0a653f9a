"""``rsi_reversion``: buy oversold, sell overbought (a state, not an event).

BUY while RSI < ``rsi_lower``, SELL while RSI > ``rsi_upper``. Confidence grows with the
distance into the zone: ``0.5 + 0.5 * (lower - rsi) / lower`` for a BUY,
``0.5 + 0.5 * (rsi - upper) / (100 - upper)`` for a SELL (RSI 20 with lower 25 -> 0.6).
An undefined RSI (the warm-up) gives HOLD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, ValidationInfo, field_validator

from jiritsu.strategy.builtins.ema_cross import _fmt
from jiritsu.strategy.contract import (
    BUY,
    SELL,
    Bars,
    Strategy,
    StrategyParams,
)

if TYPE_CHECKING:  # numpy only when signals are computed: config validation needs none
    import numpy as np


class RsiReversionParams(StrategyParams):
    rsi_period: int = Field(default=14, ge=2, le=1000)
    rsi_lower: float = Field(default=30, gt=0, lt=100)
    rsi_upper: float = Field(default=70, gt=0, lt=100)

    @field_validator("rsi_upper")
    @classmethod
    def _above(cls, upper: float, info: ValidationInfo) -> float:
        lower = info.data.get("rsi_lower")
        if lower is not None and not lower < upper:
            raise ValueError(f"must be greater than rsi_lower ({lower})")
        return upper


class RsiReversion(Strategy):
    name = "rsi_reversion"
    Params = RsiReversionParams

    def signals(self, bars: Bars, params: RsiReversionParams) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        r = bars.rsi(params.rsi_period)
        lower, upper = float(params.rsi_lower), float(params.rsi_upper)
        buy = r < lower  # NaN compares False: the warm-up holds
        sell = r > upper
        action = np.where(buy, BUY, np.where(sell, SELL, 0)).astype(np.int8)
        conf_buy = np.clip(0.5 + 0.5 * (lower - r) / lower, 0.0, 1.0)
        conf_sell = np.clip(0.5 + 0.5 * (r - upper) / (100.0 - upper), 0.0, 1.0)
        confidence = np.where(buy, conf_buy, np.where(sell, conf_sell, 0.0))
        return action, confidence

    def indicators(self, bars: Bars, params: RsiReversionParams) -> dict[str, np.ndarray]:
        return {"rsi": bars.rsi(params.rsi_period)}

    def explain(self, bars: Bars, params: RsiReversionParams, i: int) -> str:
        import numpy as np

        r = bars.rsi(params.rsi_period)[i]
        lower, upper = float(params.rsi_lower), float(params.rsi_upper)
        head = f"RSI{params.rsi_period} {_fmt(r)} (zone {lower:g}/{upper:g})"
        a, c = self.decision(bars, params, i)
        if a == BUY:
            return f"rsi_reversion BUY ({c:.2f}): oversold; {head}"
        if a == SELL:
            return f"rsi_reversion SELL ({c:.2f}): overbought; {head}"
        if not np.isfinite(r):
            return f"rsi_reversion HOLD: RSI warming up; {head}"
        return f"rsi_reversion HOLD: inside the zone; {head}"
