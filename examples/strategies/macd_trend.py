"""An example strategy to copy: MACD crossing its signal line, in the direction of the trend.

Copy this file into your strategies directory (``[strategies] paths``, default ``strategies/``
next to config.toml), rename the class and ``name``, then point a bot at it::

    [sub_bots.strategy_params]
    rule = "macd_trend"
    fast = 12            # the parameters of Params below; the other keys
    slow = 26            # (tp_ratio, sl_ratio, min_confidence...) are the kernel's
    signal = 9
    trend = 200

Check it before trading it: ``jiritsu strategies check macd_trend --bot SubBot-B``.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from jiritsu.strategy import Bars, Strategy, StrategyParams


class Params(StrategyParams):
    """Every field needs a default and bounds: config.toml is validated against them (an error
    names the key, e.g. ``sub_bots[1].strategy_params.fast``) and the tuner grids the numeric
    ones (``optimizer.param_ranges`` key ``SubBot-B.strategy_params.fast``)."""

    fast: int = Field(default=12, ge=2, le=200)
    slow: int = Field(default=26, ge=3, le=500)
    signal: int = Field(default=9, ge=2, le=100)
    trend: int = Field(default=200, ge=10, le=1000)

    @field_validator("slow")
    @classmethod
    def _slower(cls, slow: int, info) -> int:
        if slow <= info.data.get("fast", 0):
            raise ValueError("must be greater than fast")
        return slow


class MacdTrend(Strategy):
    name = "macd_trend"  # what strategy_params.rule names
    Params = Params

    def signals(self, bars: Bars, params: Params) -> tuple[np.ndarray, np.ndarray]:
        """One decision per CLOSED bar; element i may only look at bars <= i.

        Whole arrays at once (numpy): fast enough for a year of minutes in a tuning grid.
        ``bars.ema(n)`` is computed once per period and shared by every grid combination.
        """
        macd = bars.ema(params.fast) - bars.ema(params.slow)
        # the signal line is an EMA of the MACD: memoise it like the built-in indicators
        line = bars.memo(("macd_signal", params.fast, params.slow, params.signal),
                         lambda: _ema(bars, macd, params.signal))  # fmt: skip
        hist = macd - line
        trend = bars.ema(params.trend)
        n = len(bars)
        action = np.zeros(n, dtype=np.int8)
        confidence = np.zeros(n, dtype=np.float64)
        prev, now = hist[:-1], hist[1:]  # bar i-1 and bar i: the past, never the future
        up = (prev <= 0) & (now > 0) & (bars.close[1:] > trend[1:])  # NaN compares False
        down = (prev >= 0) & (now < 0)  # leave a long whatever the trend
        action[1:] = np.where(up, 1, np.where(down, -1, 0))
        # confidence in [0, 1]: how far the close is above the trend, in percent (capped)
        with np.errstate(invalid="ignore"):
            strength = np.clip(0.6 + 10.0 * (bars.close / trend - 1.0), 0.0, 1.0)
        confidence[action != 0] = np.nan_to_num(strength[action != 0], nan=0.6)
        return action, confidence

    def explain(self, bars: Bars, params: Params, i: int) -> str:
        """The reason stored with the decision (the decisions table, Discord, Gemini's prompt).

        ``self.decision`` reads the signals already computed for these bars (memoised)."""
        action, _confidence = self.decision(bars, params, i)
        word = {1: "BUY", -1: "SELL", 0: "HOLD"}[action]
        return f"macd_trend {word}: close {bars.close[i]:.6g}, EMA{params.trend} " + (
            f"{bars.ema(params.trend)[i]:.6g}"
        )


def _ema(bars: Bars, x: np.ndarray, period: int) -> np.ndarray:
    """EMA of a series that starts with NaNs (the MACD's own warm-up)."""
    out = np.full(x.shape[0], np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if valid.size:
        start = int(valid[0])
        out[start:] = bars.indicators.ema(np.ascontiguousarray(x[start:]), period)
    return out
