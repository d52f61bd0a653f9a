"""The moving average over hand-made scores (computed by hand), function and view, both backends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.db.models import SentimentScore
from jiritsu.db.types import UTCDateTime
from jiritsu.news.sentiment import latest_scores, sentiment_average

UTC = timezone.utc
NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)

# (name, published, keyword, score)
ITEMS = [
    ("a", datetime(2026, 3, 1, 14, 59, 59, tzinfo=UTC), "bitcoin", 0.5),
    ("b", datetime(2026, 3, 1, 8, 30, tzinfo=UTC), "bitcoin", -0.25),
    ("c", datetime(2026, 2, 28, 15, 0, tzinfo=UTC), "bitcoin", 1.0),  # window start: out
    ("d", datetime(2026, 2, 28, 14, 59, 59, tzinfo=UTC), "bitcoin", -1.0),  # before: out
    ("e", datetime(2026, 3, 1, 15, 0, tzinfo=UTC), "bitcoin", 0.9),  # window end (now): in
    ("f", datetime(2026, 3, 1, 12, 0, tzinfo=UTC), "bitcoin", None),  # unscored: ignored
    ("g", datetime(2026, 3, 1, 10, 0, tzinfo=UTC), "ethereum", 0.2),
]


@pytest.fixture
def scored(engine: Engine) -> Engine:
    with Session(engine) as session:
        for name, published, keyword, score in ITEMS:
            session.add(
                SentimentScore(
                    timestamp=published,
                    fetched_at=NOW,
                    source="hand",
                    item_key=f"key-{name}",
                    keyword=keyword,
                    score=score,
                    headline=f"item {name}",
                    scorer="lexicon" if score is not None else None,
                )
            )
        session.commit()
    return engine


def test_average_over_the_configured_period(scored: Engine) -> None:
    avg = sentiment_average(scored, now=NOW, period_hours=24)
    # a, b, e, g are in (NOW - 24 h, NOW]: (0.5 - 0.25 + 0.9 + 0.2) / 4
    assert avg.count == 4
    assert avg.value == pytest.approx(1.35 / 4)
    assert (avg.period_hours, avg.as_of, avg.keyword) == (24, NOW, None)

    six = sentiment_average(scored, now=NOW, period_hours=6)
    # (09:00, 15:00]: a, e, g -> (0.5 + 0.9 + 0.2) / 3
    assert (six.count, six.value) == (3, pytest.approx(1.6 / 3))


def test_average_per_keyword_and_time_zones(scored: Engine) -> None:
    btc = sentiment_average(scored, now=NOW, period_hours=24, keyword="bitcoin")
    assert (btc.count, btc.value) == (3, pytest.approx((0.5 - 0.25 + 0.9) / 3))
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert sentiment_average(scored, now=tokyo, period_hours=24) == sentiment_average(
        scored, now=NOW, period_hours=24
    )


def test_no_scores_in_the_window_gives_none(scored: Engine) -> None:
    empty = sentiment_average(scored, now=NOW + timedelta(days=30), period_hours=24)
    assert (empty.value, empty.count) == (None, 0)
    with pytest.raises(ValueError, match="aware"):
        sentiment_average(scored, now=datetime(2026, 3, 1), period_hours=24)


def test_the_view_gives_the_24h_average_per_hour_bucket(scored: Engine) -> None:
    query = sa.text(
        "SELECT hour, window_end, window_hours, average_score, item_count"
        " FROM sentiment_moving_average ORDER BY hour"
    ).columns(hour=UTCDateTime(), window_end=UTCDateTime())
    with scored.connect() as conn:
        rows = conn.execute(query).all()

    hours = [r.hour for r in rows]
    assert hours == [
        datetime(2026, 2, 28, 14, tzinfo=UTC),  # d
        datetime(2026, 2, 28, 15, tzinfo=UTC),  # c
        datetime(2026, 3, 1, 8, tzinfo=UTC),  # b
        datetime(2026, 3, 1, 10, tzinfo=UTC),  # g
        datetime(2026, 3, 1, 14, tzinfo=UTC),  # a
        datetime(2026, 3, 1, 15, tzinfo=UTC),  # e
    ]
    by_hour = {r.hour: r for r in rows}
    at_14 = by_hour[datetime(2026, 3, 1, 14, tzinfo=UTC)]
    assert at_14.window_end == NOW
    assert (at_14.window_hours, at_14.item_count) == (24, 4)
    assert at_14.average_score == pytest.approx(1.35 / 4)  # the function's value at NOW
    at_15 = by_hour[datetime(2026, 3, 1, 15, tzinfo=UTC)]
    # (02-28 16:00, 03-01 16:00]: a, b, e, g again
    assert (at_15.item_count, at_15.average_score) == (4, pytest.approx(1.35 / 4))
    first = by_hour[datetime(2026, 2, 28, 14, tzinfo=UTC)]
    # (02-27 15:00, 02-28 15:00]: d and c (c sits exactly on the end) -> (-1.0 + 1.0) / 2
    assert (first.item_count, first.average_score) == (2, pytest.approx(0.0))
    for row in rows:  # the view and the function agree at every bucket end
        fn = sentiment_average(scored, now=row.window_end, period_hours=24)
        assert (row.item_count, row.average_score) == (fn.count, pytest.approx(fn.value))


def test_latest_scores_newest_first(scored: Engine) -> None:
    rows = latest_scores(scored, limit=3)
    assert [r.headline for r in rows] == ["item e", "item a", "item f"]
    assert rows[2].score is None
    only_scored = latest_scores(scored, limit=2, scored_only=True)
    assert [r.headline for r in only_scored] == ["item e", "item a"]
