"""Helpers shared by the advisor tests: a typical snapshot, a bot and a client for the fake."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from jiritsu.advisors.base import Decision, MarketSnapshot
from jiritsu.ai import Budget, GeminiClient
from jiritsu.config.bots import SubBot
from tests.fakes.gemini import FakeGemini

KEYS = ("gk-advisor-key-one-111", "gk-advisor-key-two-222", "gk-advisor-key-three-333")
MODEL = "gemini-2.5-flash"
BAR_TS = datetime(2026, 3, 2, 10, 5, tzinfo=timezone.utc)
GOOD_BUY = {"action": "BUY", "confidence": 0.8, "reason": "EMA 12 above EMA 26 and RSI 58."}
GOOD_HOLD = {"action": "HOLD", "confidence": 0.65, "reason": "ADX 14: no trend to follow."}


class Sleeps(list):
    """An injected sleep that records the back-off instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_bot(**overrides: Any) -> SubBot:
    raw: dict[str, Any] = {
        "name": "SubBot-C",
        "symbol": "BTCUSDT",
        "category": "linear",
        "timeframe": "5",
        "advisor": "gemini",
        "allow_short": True,
        "strategy_params": {"rule": "rsi_reversion", "min_confidence": 0.55},
    }
    raw.update(overrides)
    return SubBot.model_validate(raw)


def make_snapshot(**overrides: Any) -> MarketSnapshot:
    """A typical snapshot of a 5-minute BTC bot (numbers as the engine would compute them)."""
    snapshot = MarketSnapshot(
        bot="SubBot-C",
        profile="aggressive",
        symbol="BTCUSDT",
        timeframe="5",
        bar_ts=BAR_TS,
        price=64213.37,
        ohlcv={
            "closes": [63990.1, 64020.55, 64101.0, 64088.42, 64150.9, 64213.37],
            "return_1": 0.000973,
            "return_12": 0.00412,
            "return_48": -0.00731,
            "high_48": 64890.0,
            "low_48": 63522.18,
            "volume_last": 41.228,
            "volume_avg_48": 38.9017,
        },
        indicators={
            "ema_fast": 64120.4471,
            "ema_slow": 64002.113,
            "rsi": 58.3141,
            "atr": 112.567,
            "atr_pct": 0.0017531,
            "adx": 21.08,
            "plus_di": 24.9,
            "minus_di": 17.3,
        },
        position={"side": "", "size": 0, "avg_price": 0, "unrealised_pnl": 0},
        sentiment=0.1834,
        sentiment_count=17,
    )
    return replace(snapshot, **overrides)


def make_client(
    fake: FakeGemini,
    keys: tuple[str, ...] = KEYS,
    *,
    retry_attempts: int = 2,
    timeout: float = 10,
    budget: Budget | None = None,
    sleeps: Sleeps | None = None,
    base_url: str | None = None,
) -> GeminiClient:
    """The real shared client (real google-genai over HTTP) pointed at the loopback fake."""
    return GeminiClient(
        keys,
        model=MODEL,
        timeout_seconds=timeout,
        retry_attempts=retry_attempts,
        base_url=base_url or fake.base_url,
        budget=budget,
        sleep=sleeps if sleeps is not None else Sleeps(),
    )


def acts(decision: Decision) -> bool:
    """Would the engine act on it: a successful BUY or SELL (a failure never is one)."""
    return decision.outcome == "ok" and decision.action in ("BUY", "SELL")
