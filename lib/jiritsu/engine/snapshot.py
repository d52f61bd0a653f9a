"""The :class:`~jiritsu.advisors.base.MarketSnapshot` an advisor sees: our own numbers only.

Built from the bot's CLOSED bars (the same arrays the strategy kernel reads), the position, the
news sentiment average and the strategy's own signal and indicators; ``allowed_actions`` comes
from the kernel's risk gate (:func:`jiritsu.strategy.step.allowed_mask`). ATR, RSI and ADX/DI
(period 14) are context for Gemini.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from jiritsu.advisors.base import Action, MarketSnapshot
from jiritsu.clock import from_ms
from jiritsu.strategy import step as K

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.market.data import BotBars

log = logging.getLogger("jiritsu.engine")

ADX_PERIOD = 14
ATR_PERIOD = 14
RSI_PERIOD = 14
SUMMARY_BARS = 48  # the window of the price summary
SENTIMENT_CACHE = timedelta(minutes=15)


def profile_of(bot: Any) -> str:
    """stable (spot), aggressive (shorts allowed or bars of 5 minutes or less), else balanced."""
    if bot.category == "spot":
        return "stable"
    if bot.allow_short or bot.timeframe in ("1", "3", "5"):
        return "aggressive"
    return "balanced"


def _f(x: float) -> float | None:
    x = float(x)
    return round(x, 10) if math.isfinite(x) else None


def _ret(now: float, then: float) -> float | None:
    if not then > 0:
        return None
    return _f(now / then - 1.0)


def ohlcv_summary(bars: BotBars) -> dict[str, Any]:
    """Recent closes, returns over 1/12/48 bars, the 48-bar range and volume."""
    # Python floats (the same IEEE doubles as numpy's, without a numpy scalar per operation);
    # the 48-bar mean is numpy's (its pairwise sum over the window), divided as numpy does
    k = bars.k
    lo = max(0, k - SUMMARY_BARS + 1)
    closes = bars.close[max(0, k - SUMMARY_BARS) : k + 1].tolist()
    now = closes[-1]
    volumes = bars.volume[lo : k + 1]
    return {
        "closes": [_f(x) for x in closes[-6:]],
        "return_1": _ret(now, closes[-2]) if k >= 1 else None,
        "return_12": _ret(now, closes[-13]) if k >= 12 else None,
        "return_48": _ret(now, closes[-49]) if k >= 48 else None,
        "high_48": _f(bars.high[lo : k + 1].max()),
        "low_48": _f(bars.low[lo : k + 1].min()),
        "volume_last": _f(volumes[-1]),
        "volume_avg_48": _f(np.add.reduce(volumes) / len(volumes)),
    }


def indicator_values(
    bars: BotBars, extra: dict[str, np.ndarray] | None = None
) -> dict[str, float | None]:
    """The numbers an advisor sees at bar ``k``: the strategy's own (``extra``, each with its
    previous value as ``NAME_prev``), ATR, RSI(14) and ADX/DI(14) for context."""
    k = bars.k
    series = bars.series
    out: dict[str, float | None] = {}
    for name, values in (extra or {}).items():
        out[name] = _f(values[k])
        out[f"{name}_prev"] = _f(values[k - 1]) if k >= 1 else None
    adx, plus, minus = series.adx(ADX_PERIOD)
    price = float(bars.close[k])
    atr = float(series.atr(ATR_PERIOD)[k])
    out.update(
        {
            "rsi": _f(series.rsi(RSI_PERIOD)[k]),
            "atr": _f(atr),
            "atr_pct": _f(atr / price) if price > 0 and math.isfinite(atr) else None,
            "adx": _f(adx[k]),
            "plus_di": _f(plus[k]),
            "minus_di": _f(minus[k]),
        }
    )
    return out


def allowed_actions(mask: int) -> tuple[Action, ...]:
    out: list[Action] = []
    if mask & K.ALLOW_BUY:
        out.append("BUY")
    if mask & K.ALLOW_SELL:
        out.append("SELL")
    out.append("HOLD")
    return tuple(out)


class SentimentCache:
    """``jiritsu.news.sentiment.sentiment_average``, asked at most every 5 minutes of step time;
    None when the news module or its data is missing."""

    def __init__(self, engine: Engine, period_hours: int, enabled: bool = True) -> None:
        self.engine = engine
        self.period_hours = period_hours
        self.enabled = enabled
        self._at: datetime | None = None
        self._value: tuple[float | None, int] = (None, 0)

    def get(self, now: datetime) -> tuple[float | None, int]:
        if not self.enabled:
            return None, 0
        if self._at is not None and self._at <= now < self._at + SENTIMENT_CACHE:
            return self._value
        try:
            from jiritsu.news.sentiment import sentiment_average

            avg = sentiment_average(self.engine, now=now, period_hours=self.period_hours)
            self._value = (avg.value, avg.count)
        except ImportError:
            self._value = (None, 0)
        except Exception as exc:  # noqa: BLE001 - sentiment is optional context, never fatal
            log.warning("sentiment average unavailable: %s", exc)
            self._value = (None, 0)
        self._at = now
        return self._value


def build_snapshot(
    bot: Any,
    bars: BotBars,
    *,
    position: dict[str, Any],
    allowed: tuple[Action, ...],
    rule_signal: tuple[Action, float, str] | None,
    sentiment: tuple[float | None, int] = (None, 0),
    indicators: dict[str, np.ndarray] | None = None,
) -> MarketSnapshot:
    """The snapshot of bar ``bars.k`` (its close is the price)."""
    return MarketSnapshot(
        bot=bot.name,
        profile=profile_of(bot),
        symbol=bot.symbol,
        timeframe=bot.timeframe,
        bar_ts=from_ms(bars.bar_ts),
        price=float(bars.close[bars.k]),
        ohlcv=ohlcv_summary(bars),
        indicators=indicator_values(bars, indicators),
        position=position,
        sentiment=sentiment[0],
        sentiment_count=sentiment[1],
        rule_signal=rule_signal,
        allowed_actions=allowed,
    )
