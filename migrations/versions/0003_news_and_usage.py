"""News sentiment and API usage: sentiment_scores columns, api_usage, the moving-average view.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26

Hand-written against jiritsu.db.models (``SentimentScore`` and the "news sentiment and API
usage" section); checked by ``jiritsu.db.migrate.check``.

* ``sentiment_scores`` gains ``feed_url``, ``content``, ``label``, ``score_attempts`` and
  ``score_error`` (plain ADD COLUMN: nullable, or NOT NULL with a server default, so SQLite needs
  no table rebuild on the way up).
* ``api_usage``: requests and tokens per UTC day and provider, unique (day, provider).
* view ``sentiment_moving_average``: one row per hour bucket (``hour``, bucket start, UTC) that
  holds at least one scored item; ``average_score`` / ``item_count`` cover the scored items
  published in (``window_end`` - 24 h, ``window_end``], where ``window_end`` = ``hour`` + 1 h.
  The same half-open window as ``jiritsu.news.sentiment.sentiment_average`` (which takes the
  configured period; the view's is fixed at 24 h). SQLite compares the fixed-width UTC text
  that ``UTCDateTime`` stores; PostgreSQL truncates in UTC whatever the session time zone.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jiritsu.db import types as jt

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SENTIMENT_MA_SQLITE = """
CREATE VIEW sentiment_moving_average AS
WITH buckets AS (
  SELECT DISTINCT substr(s."timestamp", 1, 13) || ':00:00.000000+00:00' AS hour
    FROM sentiment_scores AS s
   WHERE s.score IS NOT NULL
)
SELECT b.hour AS hour,
       strftime('%Y-%m-%d %H:%M:%S', b.hour, '+1 hour') || '.000000+00:00' AS window_end,
       24 AS window_hours,
       avg(s.score) AS average_score,
       count(s.score) AS item_count
  FROM buckets AS b
  JOIN sentiment_scores AS s
    ON s.score IS NOT NULL
   AND s."timestamp" > strftime('%Y-%m-%d %H:%M:%S', b.hour, '-23 hours') || '.000000+00:00'
   AND s."timestamp" <= strftime('%Y-%m-%d %H:%M:%S', b.hour, '+1 hour') || '.000000+00:00'
 GROUP BY b.hour
"""

SENTIMENT_MA_POSTGRESQL = """
CREATE VIEW sentiment_moving_average AS
WITH buckets AS (
  SELECT DISTINCT date_trunc('hour', s."timestamp" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour
    FROM sentiment_scores AS s
   WHERE s.score IS NOT NULL
)
SELECT b.hour AS hour,
       b.hour + interval '1 hour' AS window_end,
       24 AS window_hours,
       avg(s.score) AS average_score,
       count(s.score) AS item_count
  FROM buckets AS b
  JOIN sentiment_scores AS s
    ON s.score IS NOT NULL
   AND s."timestamp" > b.hour - interval '23 hours'
   AND s."timestamp" <= b.hour + interval '1 hour'
 GROUP BY b.hour
"""

_NEW_COLUMNS = ("feed_url", "content", "label", "score_attempts", "score_error")


def upgrade() -> None:
    op.add_column("sentiment_scores", sa.Column("feed_url", sa.Text(), nullable=True))
    op.add_column("sentiment_scores", sa.Column("content", sa.Text(), nullable=True))
    op.add_column("sentiment_scores", sa.Column("label", sa.String(length=16), nullable=True))
    op.add_column(
        "sentiment_scores",
        sa.Column("score_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column("sentiment_scores", sa.Column("score_error", sa.Text(), nullable=True))

    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "api_usage",
        sa.Column("id", id_type, autoincrement=True, nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", jt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_usage"),
        sa.UniqueConstraint("day", "provider", name="uq_api_usage_day_provider"),
    )

    if op.get_context().dialect.name == "postgresql":
        op.execute(SENTIMENT_MA_POSTGRESQL)
    else:
        op.execute(SENTIMENT_MA_SQLITE)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS sentiment_moving_average")
    op.drop_table("api_usage")
    with op.batch_alter_table("sentiment_scores") as batch:
        for column in reversed(_NEW_COLUMNS):
            batch.drop_column(column)
