"""One ``market_phases`` row per reading: unique (symbol, indicator, ts), indicator required.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06

Two ``jiritsu phase`` runs at the same time each read "not stored yet" and both inserted the
same reading. Duplicates already stored are removed first (the oldest row of each key stays);
a reading without an indicator gets the empty one, since NULLs never collide in a unique key
on either database. The insert then relies on the key: ON CONFLICT DO NOTHING
(:func:`jiritsu.master.phase.record_readings`). SQLite changes the column in batch mode, copying
from the table as written below (0001's ``market_phases``), so ``--sql`` needs no database.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jiritsu.db import types as jt

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = "uq_market_phases_symbol_indicator_ts"
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # 0001's id: INTEGER on SQLite


def _table(*, keyed: bool) -> sa.Table:
    """``market_phases`` before (``keyed`` False) or after this migration."""
    return sa.Table(
        "market_phases",
        sa.MetaData(),
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("ts", jt.UTCDateTime(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("indicator", sa.String(length=32), nullable=not keyed),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("details", jt.JSONDoc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_market_phases"),
        sa.Index("ix_market_phases_symbol_ts", "symbol", "ts"),
        *([sa.UniqueConstraint("symbol", "indicator", "ts", name=KEY)] if keyed else []),
    )


def upgrade() -> None:
    op.execute("UPDATE market_phases SET indicator = '' WHERE indicator IS NULL")
    op.execute(
        "DELETE FROM market_phases WHERE id NOT IN "
        "(SELECT MIN(id) FROM market_phases GROUP BY symbol, indicator, ts)"
    )
    with op.batch_alter_table("market_phases", copy_from=_table(keyed=False)) as batch:
        batch.alter_column("indicator", existing_type=sa.String(length=32), nullable=False)
        batch.create_unique_constraint(KEY, ["symbol", "indicator", "ts"])


def downgrade() -> None:
    with op.batch_alter_table("market_phases", copy_from=_table(keyed=True)) as batch:
        batch.drop_constraint(KEY, type_="unique")
        batch.alter_column("indicator", existing_type=sa.String(length=32), nullable=True)
