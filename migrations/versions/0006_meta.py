"""The installation's own facts: table ``meta`` (key, value, created_at), one row per key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

Hand-written against ``jiritsu.db.models.Meta``; checked by ``jiritsu.db.migrate.check``. The
rows are written by the code that needs them, once (``jiritsu.db.meta.install_id``), so a
migration rendered offline (``--sql``) carries no value that two databases would share.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jiritsu.db import types as jt

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", jt.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )


def downgrade() -> None:
    op.drop_table("meta")
