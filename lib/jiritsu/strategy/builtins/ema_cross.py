"""``ema_cross``: trade the crossing of a fast EMA over a slow one (an event, not a state).

BUY on the bar where EMA(fast) crosses above EMA(slow) (``fast[i-1] <= slow[i-1]`` and
``fast[i] > slow[i]``), SELL on the cross below. Confidence grows with how far the close already
stands on the new side of the slow EMA, in ATRs: ``d = side * (close - slow) / atr``,
``confidence = clip(0.5 + 0.25 * d, 0, 1)`` (a close one ATR past the slow EMA gives 0.75; one on
the wrong side gives less than 0.5; an undefined ATR gives 0.5). Undefined EMAs (the warm-up)
give HOLD.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, ValidationInfo, field_validator

from jiritsu.strategy.contract import (
    BUY,
    SELL,
    Bars,
    Strategy,
    StrategyParams,
)

if TYPE_CHECKING:  # numpy only when signals are computed: config validation needs none
    import numpy as np


class EmaCrossParams(StrategyParams):
    fast_period: int = Field(default=12, ge=1, le=1000)
    slow_period: int = Field(default=26, ge=2, le=1000)
    atr_period: int = Field(default=14, ge=2, le=500)

    @field_validator("slow_period")
    @classmethod
    def _slower(cls, slow: int, info: ValidationInfo) -> int:
        fast = info.data.get("fast_period")
        if fast is not None and not fast < slow:
            raise ValueError(f"must be greater than fast_period ({fast})")
        return slow


class EmaCross(Strategy):
    name = "ema_cross"
    Params = EmaCrossParams

    def signals(self, bars: Bars, params: EmaCrossParams) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        fast, slow = bars.ema(params.fast_period), bars.ema(params.slow_period)
        n = len(bars)
        action = np.zeros(n, dtype=np.int8)
        confidence = np.zeros(n, dtype=np.float64)
        if n < 2:
            return action, confidence
        # a comparison with NaN is False, so the warm-up and any hole never cross
        up = fast[:-1] <= slow[:-1]  # fast[i-1] <= slow[i-1] ...
        up &= fast[1:] > slow[1:]  # ... and now above
        down = fast[:-1] >= slow[:-1]
        down &= fast[1:] < slow[1:]
        # BUY - SELL as 1/0 bytes (the two never hold at once): one pass, no masked writes
        np.subtract(up.view(np.int8), down.view(np.int8), out=action[1:])
        # confidence only where it fires: crosses are rare, the bars many
        i = np.flatnonzero(action != 0)  # via a bool mask: 5x faster than on int8
        side = action[i].astype(np.float64)
        a = bars.atr(params.atr_period)[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(a > 0.0, side * (bars.close[i] - slow[i]) / a, 0.0)
        confidence[i] = np.clip(0.5 + 0.25 * d, 0.0, 1.0)
        return action, confidence

    def indicators(self, bars: Bars, params: EmaCrossParams) -> dict[str, np.ndarray]:
        return {"ema_fast": bars.ema(params.fast_period), "ema_slow": bars.ema(params.slow_period)}

    def explain(self, bars: Bars, params: EmaCrossParams, i: int) -> str:
        import numpy as np

        fast, slow = bars.ema(params.fast_period)[i], bars.ema(params.slow_period)[i]
        head = (
            f"EMA{params.fast_period} {_fmt(fast)} vs EMA{params.slow_period} {_fmt(slow)}, "
            f"close {_fmt(bars.close[i])}, ATR {_fmt(bars.atr(params.atr_period)[i])}"
        )
        a, c = self.decision(bars, params, i)
        if a == BUY:
            return f"ema_cross BUY ({c:.2f}): fast crossed above slow; {head}"
        if a == SELL:
            return f"ema_cross SELL ({c:.2f}): fast crossed below slow; {head}"
        if not (np.isfinite(fast) and np.isfinite(slow)):
            return f"ema_cross HOLD: indicators warming up; {head}"
        return f"ema_cross HOLD: no cross; {head}"


def _fmt(x: float) -> str:
    import numpy as np

    return "n/a" if not np.isfinite(x) else f"{x:.6g}"
