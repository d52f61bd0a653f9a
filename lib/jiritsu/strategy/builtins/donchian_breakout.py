"""``donchian_breakout``: follow a breakout of the Donchian channel while ADX says it trends.

The channel at bar ``i`` is the highest high and the lowest low of the ``channel_period`` bars
BEFORE ``i``. BUY while the close stands above the channel's top, SELL while it stands below its
bottom -- both only when ADX(``adx_period``) is at least ``adx_min`` (a breakout in a range
market is mostly noise). Confidence grows with the distance past the channel in ATRs:
``clip(0.5 + 0.25 * distance / atr, 0, 1)``. Repeated BUYs while long change nothing (the
kernel's risk gate only lets actions through that change the position); the SELL on the opposite
breakout is the exit. Warm-up (no full channel, no ADX yet) holds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from jiritsu.strategy.builtins.ema_cross import _fmt
from jiritsu.strategy.contract import (
    BUY,
    HOLD,
    SELL,
    Bars,
    Strategy,
    StrategyParams,
)

if TYPE_CHECKING:  # numpy only when signals are computed: config validation needs none
    import numpy as np


class DonchianBreakoutParams(StrategyParams):
    channel_period: int = Field(default=20, ge=2, le=1000)
    adx_period: int = Field(default=14, ge=2, le=200)
    adx_min: float = Field(default=20.0, ge=0, lt=100)
    atr_period: int = Field(default=14, ge=2, le=500)


def channel(bars: Bars, period: int) -> tuple[np.ndarray, np.ndarray]:
    """(top, bottom) of the Donchian channel of the ``period`` bars before each bar (NaN until
    there are that many)."""
    import numpy as np

    def compute() -> tuple[np.ndarray, np.ndarray]:
        n = len(bars)
        top = np.full(n, np.nan)
        bottom = np.full(n, np.nan)
        if n > period:
            windows_high = np.lib.stride_tricks.sliding_window_view(bars.high[:-1], period)
            windows_low = np.lib.stride_tricks.sliding_window_view(bars.low[:-1], period)
            top[period:] = windows_high.max(axis=1)
            bottom[period:] = windows_low.min(axis=1)
        return top, bottom

    return bars.memo(("donchian", int(period)), compute)


class DonchianBreakout(Strategy):
    name = "donchian_breakout"
    Params = DonchianBreakoutParams

    def signals(self, bars: Bars, params: DonchianBreakoutParams) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        top, bottom = channel(bars, params.channel_period)
        adx = bars.adx(params.adx_period)[0]
        atr = bars.atr(params.atr_period)
        close = bars.close
        trending = adx >= params.adx_min  # NaN compares False
        up = trending & (close > top)
        down = trending & (close < bottom)
        action = np.where(up, BUY, np.where(down, SELL, HOLD)).astype(np.int8)
        with np.errstate(invalid="ignore", divide="ignore"):
            distance = np.where(up, close - top, bottom - close)
            d = np.where(atr > 0.0, distance / atr, 0.0)
        confidence = np.where(action != HOLD, np.clip(0.5 + 0.25 * d, 0.0, 1.0), 0.0)
        return action, confidence

    def indicators(self, bars: Bars, params: DonchianBreakoutParams) -> dict[str, np.ndarray]:
        top, bottom = channel(bars, params.channel_period)
        return {"channel_top": top, "channel_bottom": bottom}

    def explain(self, bars: Bars, params: DonchianBreakoutParams, i: int) -> str:
        import numpy as np

        top, bottom = channel(bars, params.channel_period)
        adx = bars.adx(params.adx_period)[0][i]
        head = (
            f"close {_fmt(bars.close[i])}, channel{params.channel_period} "
            f"{_fmt(bottom[i])}..{_fmt(top[i])}, ADX{params.adx_period} {_fmt(adx)} "
            f"(min {params.adx_min:g})"
        )
        a, c = self.decision(bars, params, i)
        if a == BUY:
            return f"donchian_breakout BUY ({c:.2f}): close above the channel; {head}"
        if a == SELL:
            return f"donchian_breakout SELL ({c:.2f}): close below the channel; {head}"
        if not (np.isfinite(top[i]) and np.isfinite(adx)):
            return f"donchian_breakout HOLD: warming up; {head}"
        if not adx >= params.adx_min:
            return f"donchian_breakout HOLD: no trend; {head}"
        return f"donchian_breakout HOLD: inside the channel; {head}"
