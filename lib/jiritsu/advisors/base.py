"""The advisor contract: a market snapshot in, a decision out.

Text from outside (model answers, news) is data: an advisor may only pick one of
``snapshot.allowed_actions``, which the risk layer fills before asking. It can never size an
order, skip a breaker or move money; the engine treats any other answer as invalid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Action = Literal["BUY", "SELL", "HOLD"]
ACTIONS: tuple[Action, ...] = ("BUY", "SELL", "HOLD")
# ok: a judgement; skipped: no call was made (budget spent, every key rate-limited, rule did not
# fire for hybrid...); invalid: the answer broke the schema; error: the call failed.
Outcome = Literal["ok", "skipped", "invalid", "error"]


@dataclass(frozen=True)
class MarketSnapshot:
    """Everything an advisor may look at, built from our own numbers only."""

    bot: str
    profile: str  # stable | balanced | aggressive
    symbol: str
    timeframe: str
    bar_ts: datetime  # open time of the last CLOSED bar the snapshot describes
    price: float  # close of that bar
    ohlcv: dict[str, Any]  # summary: recent closes, returns over windows, range, volume
    indicators: dict[
        str, float | None
    ]  # ema_fast, ema_slow, rsi, atr, atr_pct, adx, plus_di, minus_di
    position: dict[str, Any]  # side ("Buy" | "Sell" | ""), size, avg_price, unrealised_pnl
    sentiment: float | None = None  # news moving average in [-1, 1], None when unknown
    sentiment_count: int = 0
    rule_signal: tuple[Action, float, str] | None = None  # the rule's view, for hybrid
    allowed_actions: tuple[Action, ...] = ACTIONS


@dataclass(frozen=True)
class Decision:
    action: Action | None  # None when no judgement was made (outcome != "ok")
    confidence: float
    reason: str
    provider: str  # rules | gemini | hybrid
    outcome: Outcome = "ok"
    model: str | None = None
    latency_ms: int | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    decision_id: int | None = None  # the ``decisions`` row, once recorded
    extra: dict[str, Any] = field(default_factory=dict)


class Advisor(Protocol):
    provider: str

    def decide(self, snapshot: MarketSnapshot) -> Decision:
        """Judge the snapshot. Never raises for a bad or missing answer: returns a Decision
        whose outcome says what happened."""
        ...
