"""The news sentiment the advisors read: one moving-average function, plus the latest scores.

:func:`sentiment_average` is the one definition of "the" sentiment: the plain mean of the scores
of items published in ``(now - period_hours, now]`` (each item counts once, unscored items not
at all; an item stamped with the fetch time counts at once). The SQL view
``sentiment_moving_average`` (migration 0003) uses the same half-open window with a fixed 24 h
period ending at each hour bucket's end, for the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class SentimentAverage:
    """Mean score over the window ending at ``as_of``; ``value`` None when nothing was scored."""

    value: float | None
    count: int
    period_hours: int
    as_of: datetime
    keyword: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "count": self.count,
            "period_hours": self.period_hours,
            "as_of": self.as_of.isoformat(),
            "keyword": self.keyword,
        }


@dataclass(frozen=True)
class ScoreRow:
    """One stored item for display."""

    timestamp: datetime
    source: str
    keyword: str | None
    score: float | None
    label: str | None
    headline: str
    scorer: str | None
    model: str | None


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return now.astimezone(timezone.utc)


def sentiment_average(
    engine: Engine, *, now: datetime, period_hours: int, keyword: str | None = None
) -> SentimentAverage:
    """Average score of items published in ``(now - period_hours, now]`` (optionally one
    keyword's). The advisors put this into their snapshot."""
    import sqlalchemy as sa

    from jiritsu.db.engine import retry_db
    from jiritsu.db.models import SentimentScore

    if period_hours <= 0:
        raise ValueError("period_hours must be > 0")
    end = _aware(now)
    start = end - timedelta(hours=period_hours)
    conditions = [
        SentimentScore.score.is_not(None),
        SentimentScore.timestamp > start,
        SentimentScore.timestamp <= end,
    ]
    if keyword is not None:
        conditions.append(SentimentScore.keyword == keyword)
    query = sa.select(sa.func.avg(SentimentScore.score), sa.func.count(SentimentScore.score)).where(
        *conditions
    )

    def read() -> tuple[float | None, int]:
        with engine.connect() as conn:
            avg, count = conn.execute(query).one()
        return (float(avg) if avg is not None else None), int(count or 0)

    value, count = retry_db(read, what="reading the sentiment average")
    return SentimentAverage(
        value=value, count=count, period_hours=period_hours, as_of=end, keyword=keyword
    )


def latest_scores(engine: Engine, *, limit: int = 20, scored_only: bool = False) -> list[ScoreRow]:
    """The newest items by published time (unscored ones too unless ``scored_only``)."""
    import sqlalchemy as sa

    from jiritsu.db.engine import retry_db
    from jiritsu.db.models import SentimentScore as S

    query = sa.select(
        S.timestamp, S.source, S.keyword, S.score, S.label, S.headline, S.scorer, S.model
    ).order_by(S.timestamp.desc(), S.id.desc())
    if scored_only:
        query = query.where(S.score.is_not(None))
    query = query.limit(max(0, limit))

    def read() -> list[ScoreRow]:
        with engine.connect() as conn:
            return [ScoreRow(*row) for row in conn.execute(query).all()]

    return retry_db(read, what="reading sentiment scores")
