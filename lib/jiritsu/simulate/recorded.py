"""What a simulation takes from the user's database besides candles: the decisions Gemini-backed
bots recorded live, and the stored news sentiment.

A language model knows the history, so asking it about old candles would be lookahead. A
``gemini``/``hybrid`` bot in a simulation therefore answers a bar with the decision recorded
for that bar live (its ``decisions`` row: action, confidence, reason, outcome -- skips and
errors included, since that is what the bot did) and every other bar with its rule; the
result counts both. News items (``sentiment_scores``) are copied with their timestamps, so
the advisors' snapshots see at time t only what had been published by t.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from jiritsu.clock import from_ms

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.advisors.base import Action, Advisor, Decision, MarketSnapshot, Outcome


@dataclass
class RecordedAdvisor:
    """Answers a bar from ``recorded`` (bar open time -> the decision made live), else asks
    ``rule``; ``used`` and ``ruled`` count the two."""

    recorded: dict[datetime, Decision]
    rule: Advisor
    provider: str = "rules"
    used: int = 0
    ruled: int = 0

    def decide(self, snapshot: MarketSnapshot) -> Decision:
        found = self.recorded.get(snapshot.bar_ts)
        if found is None:
            self.ruled += 1
            return self.rule.decide(snapshot)
        self.used += 1
        return found


def load_recorded(
    source: Engine, bots: list[str], lo_ms: int, hi_ms: int
) -> dict[str, dict[datetime, Decision]]:
    """Per bot, the newest non-rules decision recorded for each bar opened in
    ``[lo_ms, hi_ms)``."""
    import sqlalchemy as sa

    from jiritsu.advisors.base import Decision
    from jiritsu.db.models import Decision as Row

    query = (
        sa.select(Row.bot, Row.bar_ts, Row.provider, Row.action, Row.confidence, Row.reason,
                  Row.outcome, Row.model)
        .where(Row.bot.in_(bots), Row.provider != "rules", Row.bar_ts.is_not(None),
               Row.bar_ts >= from_ms(lo_ms), Row.bar_ts < from_ms(hi_ms))
        .order_by(Row.id)
    )  # fmt: skip
    out: dict[str, dict[datetime, Decision]] = {b: {} for b in bots}
    with source.connect() as conn:
        for bot, bar_ts, provider, action, confidence, reason, outcome, model in conn.execute(
            query
        ):
            assert bar_ts is not None  # (selected so)
            out[bot][bar_ts] = Decision(
                cast("Action", action) if outcome == "ok" else None, float(confidence or 0.0),
                reason or "", provider, outcome=cast("Outcome", outcome or "ok"), model=model,
                extra={"recorded": True},
            )  # fmt: skip
    return out


def copy_sentiment(source: Engine, target: Engine, lo_ms: int, hi_ms: int, hours: int) -> int:
    """Copy the news items published in ``[lo_ms - hours, hi_ms)`` (the first moving average
    needs the hours before the start); returns how many."""
    import sqlalchemy as sa

    from jiritsu.db.models import SentimentScore as S

    columns = [c for c in S.__table__.columns if c.name != "id"]
    since = from_ms(lo_ms) - timedelta(hours=hours)
    with source.connect() as conn:
        rows = conn.execute(
            sa.select(*columns).where(S.timestamp >= since, S.timestamp < from_ms(hi_ms))
        ).all()
    if rows:
        with target.begin() as conn:
            conn.execute(sa.insert(S), [dict(r._mapping) for r in rows])
    return len(rows)


def advisor_note(configured: str, advisor: Any) -> str:
    """What the report says about a Gemini-backed bot's decisions in the simulation."""
    if not isinstance(advisor, RecordedAdvisor):
        return f"{configured} advisor simulated by its rule (no lookahead)"
    return (
        f"{configured} advisor: {advisor.used} recorded decision(s) replayed, "
        f"{advisor.ruled} bar(s) decided by its rule (no recording; asking it now would be "
        "lookahead)"
    )
