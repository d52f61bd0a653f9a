"""Paper trading ledger: the simulated exchange's wallets, orders, fills, positions, transfers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Hand-written against jiritsu.db.models (the "paper trading ledger" section); checked by
``jiritsu.db.migrate.check``. New tables only, so no batch mode is needed on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jiritsu.db import types as jt

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIDE_CHECK = "side IN ('Buy', 'Sell')"
CATEGORY_CHECK = "category IN ('linear', 'spot')"


def _pk(table: str) -> list[sa.SchemaItem]:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    return [
        sa.Column("id", id_type, autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _money(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, jt.Money(), nullable=nullable)


def _ts(name: str) -> sa.Column:
    return sa.Column(name, jt.UTCDateTime(), nullable=False)


def _ms(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "paper_accounts",
        *_pk("paper_accounts"),
        _str("account", 64),
        _str("wallet", 8),
        _str("coin", 16),
        _money("balance"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("wallet IN ('UNIFIED', 'FUND')", name=op.f("ck_paper_accounts_wallet")),
        sa.UniqueConstraint(
            "account", "wallet", "coin", name="uq_paper_accounts_account_wallet_coin"
        ),
    )

    op.create_table(
        "paper_orders",
        *_pk("paper_orders"),
        _str("account", 64),
        _str("category", 8),
        _str("symbol", 32),
        _str("client_order_id", 36, nullable=True),
        _str("exchange_order_id", 64),
        _str("side", 4),
        _str("order_type", 8),
        _str("time_in_force", 16, nullable=True),
        _money("qty"),
        _money("price", nullable=True),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        _money("take_profit", nullable=True),
        _money("stop_loss", nullable=True),
        _str("status", 20),
        _money("filled_qty"),
        _money("avg_price", nullable=True),
        _money("fee"),
        _money("reserved"),
        sa.Column("fill_count", sa.Integer(), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        _ms("accepted_ms"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(SIDE_CHECK, name=op.f("ck_paper_orders_side")),
        sa.CheckConstraint(CATEGORY_CHECK, name=op.f("ck_paper_orders_category")),
        sa.CheckConstraint(
            "order_type IN ('Market', 'Limit')", name=op.f("ck_paper_orders_order_type")
        ),
        sa.CheckConstraint(
            "status IN ('new', 'partially_filled', 'filled', 'cancelled', 'rejected')",
            name=op.f("ck_paper_orders_status"),
        ),
        sa.UniqueConstraint(
            "account", "client_order_id", name="uq_paper_orders_account_client_order_id"
        ),
        sa.UniqueConstraint("exchange_order_id", name="uq_paper_orders_exchange_order_id"),
    )
    op.create_index("ix_paper_orders_status_account", "paper_orders", ["status", "account"])

    op.create_table(
        "paper_fills",
        *_pk("paper_fills"),
        _str("exec_id", 64),
        _str("account", 64),
        _str("category", 8),
        _str("symbol", 32),
        _str("exchange_order_id", 64),
        _str("client_order_id", 36, nullable=True),
        _str("side", 4),
        _money("price"),
        _money("qty"),
        _money("fee"),
        _str("fee_coin", 16),
        _money("fee_rate"),
        sa.Column("is_maker", sa.Boolean(), nullable=False),
        _str("exec_type", 16),
        _money("realised_pnl"),
        _ms("exec_ms"),
        _ts("exec_time"),
        sa.CheckConstraint(SIDE_CHECK, name=op.f("ck_paper_fills_side")),
        sa.CheckConstraint(
            "exec_type IN ('Trade', 'TakeProfit', 'StopLoss')",
            name=op.f("ck_paper_fills_exec_type"),
        ),
        sa.UniqueConstraint("exec_id", name="uq_paper_fills_exec_id"),
    )
    op.create_index("ix_paper_fills_account_exec_ms", "paper_fills", ["account", "exec_ms"])
    op.create_index("ix_paper_fills_exchange_order_id", "paper_fills", ["exchange_order_id"])

    op.create_table(
        "paper_positions",
        *_pk("paper_positions"),
        _str("account", 64),
        _str("category", 8),
        _str("symbol", 32),
        _str("side", 4),
        _money("size"),
        _money("avg_price"),
        sa.Column("leverage", sa.Integer(), nullable=False),
        _money("take_profit", nullable=True),
        _money("stop_loss", nullable=True),
        _ms("tpsl_from_ms", nullable=True),
        _money("realised_pnl"),
        _ms("next_bar_ms"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("side IN ('Buy', 'Sell', '')", name=op.f("ck_paper_positions_side")),
        sa.CheckConstraint(CATEGORY_CHECK, name=op.f("ck_paper_positions_category")),
        sa.UniqueConstraint(
            "account", "category", "symbol", name="uq_paper_positions_account_category_symbol"
        ),
    )

    op.create_table(
        "paper_transfers",
        *_pk("paper_transfers"),
        _str("transfer_id", 36),
        _str("coin", 16),
        _money("amount"),
        _str("from_account", 64),
        _str("from_wallet", 8),
        _str("to_account", 64),
        _str("to_wallet", 8),
        _str("status", 16),
        sa.Column("detail", sa.Text(), nullable=True),
        _ts("created_at"),
        sa.UniqueConstraint("transfer_id", name="uq_paper_transfers_transfer_id"),
    )


def downgrade() -> None:
    for table in (
        "paper_transfers",
        "paper_positions",
        "paper_fills",
        "paper_orders",
        "paper_accounts",
    ):
        op.drop_table(table)
