"""Initial schema: trading, master layer, news, operations, backtesting and tuning.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Hand-checked against jiritsu.db.models (started from autogenerate). Column types come from
jiritsu.db.types (Money, UTCDateTime, JSONDoc); their storage format is frozen by this file.
The two views are written per dialect because SQLite and PostgreSQL spell JSON aggregation and
epoch conversion differently.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from jiritsu.db import types as jt

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id_type() -> sa.types.TypeEngine:
    # SQLite only auto-increments "INTEGER PRIMARY KEY"; PostgreSQL gets BIGINT (bigserial).
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _pk(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("id", _id_type(), autoincrement=True, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    ]


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, jt.UTCDateTime(), nullable=nullable)


def _money(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, jt.Money(), nullable=nullable)


def _str(name: str, length: int, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _text(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Text(), nullable=nullable)


def _json(name: str) -> sa.Column:
    return sa.Column(name, jt.JSONDoc(), nullable=True)


def _float(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Float(), nullable=nullable)


def _int(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _bool(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.Boolean(), nullable=nullable)


def _fk_col(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, _id_type(), nullable=nullable)


# op.f(): the name is final; without it the naming convention would prefix "ck_<table>_" again.
SIDE_CHECK = "side IN ('Buy', 'Sell')"

PORTFOLIO_WIDE_SQLITE = """
CREATE VIEW portfolio_history_wide AS
SELECT h.id AS id,
       h."timestamp" AS "timestamp",
       h.total_balance_usdt AS total_balance_usdt,
       h.profit_saved_balance AS profit_saved_balance,
       h.phase AS phase,
       (SELECT json_group_object(b.bot_name, json(b.balance))
          FROM (SELECT bot_name, balance
                  FROM portfolio_bot_balances
                 WHERE snapshot_id = h.id
                 ORDER BY bot_name) AS b) AS bot_balances
  FROM portfolio_history AS h
"""

PORTFOLIO_WIDE_POSTGRESQL = """
CREATE VIEW portfolio_history_wide AS
SELECT h.id AS id,
       h."timestamp" AS "timestamp",
       h.total_balance_usdt AS total_balance_usdt,
       h.profit_saved_balance AS profit_saved_balance,
       h.phase AS phase,
       COALESCE(
         (SELECT json_object_agg(b.bot_name, trim_scale(b.balance) ORDER BY b.bot_name)
            FROM portfolio_bot_balances AS b
           WHERE b.snapshot_id = h.id),
         '{}'::json) AS bot_balances
  FROM portfolio_history AS h
"""

# time_utc uses the same fixed-width text as UTCDateTime on SQLite, so it compares with it.
CANDLES_UTC_SQLITE = """
CREATE VIEW candles_utc AS
SELECT c.id AS id, c.symbol AS symbol, c."interval" AS "interval", c.ts AS ts,
       strftime('%Y-%m-%d %H:%M:%S', c.ts / 1000, 'unixepoch')
         || printf('.%06d', (c.ts % 1000) * 1000) || '+00:00' AS time_utc,
       c.open AS open, c.high AS high, c.low AS low, c.close AS close,
       c.volume AS volume, c.turnover AS turnover
  FROM candles AS c
"""

CANDLES_UTC_POSTGRESQL = """
CREATE VIEW candles_utc AS
SELECT c.id AS id, c.symbol AS symbol, c."interval" AS "interval", c.ts AS ts,
       to_timestamp(c.ts / 1000.0) AS time_utc,
       c.open AS open, c.high AS high, c.low AS low, c.close AS close,
       c.volume AS volume, c.turnover AS turnover
  FROM candles AS c
"""


def upgrade() -> None:
    # --- trading ---------------------------------------------------------------------------
    op.create_table(
        "decisions",
        *_pk("decisions"),
        _str("bot", 64),
        _ts("created_at"),
        _ts("bar_ts", nullable=True),
        _str("symbol", 32, nullable=True),
        _str("provider", 16),
        _str("model", 64, nullable=True),
        _str("prompt_hash", 64, nullable=True),
        _json("input_summary"),
        _str("action", 16, nullable=True),
        _str("outcome", 32, nullable=True),
        _float("confidence"),
        _text("reason"),
        _int("latency_ms"),
        _int("prompt_tokens"),
        _int("output_tokens"),
        _int("total_tokens"),
        _text("error"),
    )
    op.create_index("ix_decisions_bot_bar_ts", "decisions", ["bot", "bar_ts"])
    op.create_index("ix_decisions_bot_created_at", "decisions", ["bot", "created_at"])

    op.create_table(
        "orders",
        *_pk("orders"),
        _str("client_order_id", 36),
        _str("exchange_order_id", 64, nullable=True),
        _str("bot", 64),
        _str("environment", 16, nullable=True),
        _str("symbol", 32),
        _str("category", 16),
        _str("side", 4),
        _str("order_type", 16),
        _str("time_in_force", 16, nullable=True),
        _money("qty"),
        _money("price", nullable=True),
        _money("filled_qty"),
        _money("avg_price", nullable=True),
        _money("fee", nullable=True),
        _str("status", 20),
        _str("exchange_status", 32, nullable=True),
        _bool("reduce_only"),
        _money("take_profit", nullable=True),
        _money("stop_loss", nullable=True),
        _fk_col("decision_id"),
        _str("plan_id", 64, nullable=True),
        _int("leg_index"),
        _text("reason"),
        _text("error"),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("sent_at", nullable=True),
        sa.CheckConstraint(SIDE_CHECK, name=op.f("ck_orders_side")),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'new', 'partially_filled', 'filled', 'cancelled',"
            " 'rejected', 'unknown')",
            name=op.f("ck_orders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name="fk_orders_decision_id_decisions",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("client_order_id", name="uq_orders_client_order_id"),
    )
    op.create_index("ix_orders_bot_created_at", "orders", ["bot", "created_at"])
    op.create_index("ix_orders_decision_id", "orders", ["decision_id"])
    op.create_index("ix_orders_exchange_order_id", "orders", ["exchange_order_id"])
    op.create_index("ix_orders_plan_id", "orders", ["plan_id"])
    op.create_index("ix_orders_status", "orders", ["status"])

    op.create_table(
        "executions",
        *_pk("executions"),
        _str("exec_id", 64),
        _str("order_id", 64),
        _str("client_order_id", 36, nullable=True),
        _fk_col("order_row_id"),
        _str("bot", 64),
        _str("environment", 16, nullable=True),
        _str("symbol", 32),
        _str("side", 4),
        _money("price"),
        _money("qty"),
        _money("fee"),
        _str("fee_coin", 16, nullable=True),
        _money("fee_rate", nullable=True),
        _bool("is_maker", nullable=True),
        _str("exec_type", 16, nullable=True),
        _ts("exec_time"),
        _ts("recorded_at"),
        sa.CheckConstraint(SIDE_CHECK, name=op.f("ck_executions_side")),
        sa.ForeignKeyConstraint(
            ["order_row_id"],
            ["orders.id"],
            name="fk_executions_order_row_id_orders",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("exec_id", name="uq_executions_exec_id"),
    )
    op.create_index("ix_executions_bot_exec_time", "executions", ["bot", "exec_time"])
    op.create_index("ix_executions_client_order_id", "executions", ["client_order_id"])
    op.create_index("ix_executions_order_id", "executions", ["order_id"])
    op.create_index("ix_executions_order_row_id", "executions", ["order_row_id"])

    op.create_table(
        "trades",
        *_pk("trades"),
        _ts("timestamp"),
        _str("sub_bot_name", 64),
        _str("symbol", 32),
        _str("order_id", 64),
        _str("client_order_id", 36, nullable=True),
        _fk_col("order_row_id"),
        _str("exec_id", 64, nullable=True),
        _str("side", 4),
        _money("price"),
        _money("quantity"),
        _money("fee"),
        _str("fee_coin", 16, nullable=True),
        _money("pnl", nullable=True),
        _text("entry_reason"),
        _bool("is_maker", nullable=True),
        _str("position_effect", 8, nullable=True),
        _str("environment", 16, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(SIDE_CHECK, name=op.f("ck_trades_side")),
        sa.CheckConstraint(
            "position_effect IN ('open', 'close')", name=op.f("ck_trades_position_effect")
        ),
        sa.ForeignKeyConstraint(
            ["order_row_id"],
            ["orders.id"],
            name="fk_trades_order_row_id_orders",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint("exec_id", name="uq_trades_exec_id"),
        sa.UniqueConstraint("order_id", name="uq_trades_order_id"),
    )
    op.create_index("ix_trades_client_order_id", "trades", ["client_order_id"])
    op.create_index("ix_trades_order_row_id", "trades", ["order_row_id"])
    op.create_index("ix_trades_sub_bot_name_timestamp", "trades", ["sub_bot_name", "timestamp"])
    op.create_index("ix_trades_timestamp", "trades", ["timestamp"])

    op.create_table(
        "candles",
        *_pk("candles"),
        _str("symbol", 32),
        _str("interval", 8),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        _float("open", nullable=False),
        _float("high", nullable=False),
        _float("low", nullable=False),
        _float("close", nullable=False),
        _float("volume", nullable=False),
        _float("turnover"),
        sa.UniqueConstraint("symbol", "interval", "ts", name="uq_candles_symbol_interval_ts"),
    )

    # --- master layer ----------------------------------------------------------------------
    op.create_table(
        "transfers",
        *_pk("transfers"),
        _str("idempotency_key", 36),
        _str("kind", 16),
        _str("environment", 16, nullable=True),
        _str("from_account", 64),
        _str("to_account", 64),
        sa.Column("from_member_id", sa.BigInteger(), nullable=True),
        sa.Column("to_member_id", sa.BigInteger(), nullable=True),
        _str("from_account_type", 16, nullable=True),
        _str("to_account_type", 16, nullable=True),
        _str("coin", 16),
        _money("amount"),
        _str("status", 16),
        _str("exchange_status", 32, nullable=True),
        _text("error"),
        _text("reason"),
        _json("details"),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "kind IN ('rebalance', 'profit_save', 'manual')", name=op.f("ck_transfers_kind")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'success', 'failed', 'unknown')",
            name=op.f("ck_transfers_status"),
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_transfers_idempotency_key"),
    )
    op.create_index("ix_transfers_created_at", "transfers", ["created_at"])
    op.create_index("ix_transfers_status", "transfers", ["status"])

    op.create_table(
        "controls",
        *_pk("controls"),
        _str("scope", 64),
        _bool("halted"),
        _text("reason"),
        _ts("halted_at", nullable=True),
        _str("halted_by", 64, nullable=True),
        _ts("resumed_at", nullable=True),
        _ts("cooldown_until", nullable=True),
        _ts("updated_at"),
        sa.UniqueConstraint("scope", name="uq_controls_scope"),
    )

    op.create_table(
        "portfolio_history",
        *_pk("portfolio_history"),
        _ts("timestamp"),
        _money("total_balance_usdt"),
        _money("profit_saved_balance", nullable=True),
        _str("phase", 16, nullable=True),
        _str("environment", 16, nullable=True),
    )
    op.create_index("ix_portfolio_history_timestamp", "portfolio_history", ["timestamp"])

    op.create_table(
        "portfolio_bot_balances",
        *_pk("portfolio_bot_balances"),
        _fk_col("snapshot_id", nullable=False),
        _str("bot_name", 64),
        _money("balance"),
        _money("available_balance", nullable=True),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["portfolio_history.id"],
            name="fk_portfolio_bot_balances_snapshot_id_portfolio_history",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "snapshot_id", "bot_name", name="uq_portfolio_bot_balances_snapshot_id_bot_name"
        ),
    )

    op.create_table(
        "market_phases",
        *_pk("market_phases"),
        _ts("ts"),
        _str("symbol", 32),
        _str("phase", 16),
        _str("indicator", 32, nullable=True),
        _float("value"),
        _json("details"),
    )
    op.create_index("ix_market_phases_symbol_ts", "market_phases", ["symbol", "ts"])

    # --- news and operations ---------------------------------------------------------------
    op.create_table(
        "sentiment_scores",
        *_pk("sentiment_scores"),
        _ts("timestamp"),
        _ts("fetched_at"),
        _str("source", 64),
        _text("url"),
        _text("guid"),
        _str("item_key", 128),
        _str("keyword", 64, nullable=True),
        _float("score"),
        _text("headline", nullable=False),
        _str("scorer", 32, nullable=True),
        _str("model", 64, nullable=True),
        _ts("scored_at", nullable=True),
        sa.UniqueConstraint("item_key", name="uq_sentiment_scores_item_key"),
    )
    op.create_index(
        "ix_sentiment_scores_keyword_timestamp", "sentiment_scores", ["keyword", "timestamp"]
    )
    op.create_index("ix_sentiment_scores_timestamp", "sentiment_scores", ["timestamp"])

    op.create_table(
        "system_events",
        *_pk("system_events"),
        _ts("timestamp"),
        _str("level", 10),
        _str("event_type", 64),
        _text("message", nullable=False),
        _json("details"),
        _str("bot", 64, nullable=True),
    )
    op.create_index(
        "ix_system_events_event_type_timestamp", "system_events", ["event_type", "timestamp"]
    )
    op.create_index("ix_system_events_level_timestamp", "system_events", ["level", "timestamp"])
    op.create_index("ix_system_events_timestamp", "system_events", ["timestamp"])

    op.create_table(
        "heartbeats",
        *_pk("heartbeats"),
        _str("component", 64),
        _ts("last_seen"),
        _ts("started_at", nullable=True),
        _int("pid"),
        _str("host", 255, nullable=True),
        _json("details"),
        sa.UniqueConstraint("component", name="uq_heartbeats_component"),
    )

    op.create_table(
        "health_checks",
        *_pk("health_checks"),
        _ts("ts"),
        _str("check_name", 64),
        _str("status", 16),
        _float("value"),
        _text("message"),
        _json("details"),
    )
    op.create_index("ix_health_checks_check_name_ts", "health_checks", ["check_name", "ts"])

    # --- backtesting and tuning ------------------------------------------------------------
    op.create_table(
        "tuning_runs",
        *_pk("tuning_runs"),
        _str("bot", 64),
        _ts("started_at"),
        _ts("finished_at", nullable=True),
        _str("status", 16),
        _str("target_metric", 32),
        _json("grid"),
        _json("current_params"),
        _json("best_params"),
        _float("current_in_sample_score"),
        _float("current_out_of_sample_score"),
        _float("in_sample_score"),
        _float("out_of_sample_score"),
        _ts("in_sample_from", nullable=True),
        _ts("in_sample_to", nullable=True),
        _ts("out_of_sample_from", nullable=True),
        _ts("out_of_sample_to", nullable=True),
        _bool("applied"),
        _ts("applied_at", nullable=True),
        _text("reason"),
        _text("error"),
        _json("details"),
    )
    op.create_index("ix_tuning_runs_bot_started_at", "tuning_runs", ["bot", "started_at"])

    op.create_table(
        "backtest_runs",
        *_pk("backtest_runs"),
        _ts("created_at"),
        _str("bot", 64),
        _str("strategy", 64, nullable=True),
        _str("symbol", 32, nullable=True),
        _str("interval", 8, nullable=True),
        _json("params"),
        _ts("period_from"),
        _ts("period_to"),
        _float("initial_equity"),
        _json("metrics"),
        _float("total_return"),
        _float("sharpe"),
        _float("sortino"),
        _float("max_drawdown"),
        _float("win_rate"),
        _float("profit_factor"),
        _int("trade_count"),
        _str("trades_sha256", 64, nullable=True),
        _str("source", 16),
        _str("sample", 16, nullable=True),
        _fk_col("tuning_run_id"),
        sa.ForeignKeyConstraint(
            ["tuning_run_id"],
            ["tuning_runs.id"],
            name="fk_backtest_runs_tuning_run_id_tuning_runs",
            ondelete="SET NULL",
        ),
    )
    op.create_index("ix_backtest_runs_bot_created_at", "backtest_runs", ["bot", "created_at"])
    op.create_index("ix_backtest_runs_tuning_run_id", "backtest_runs", ["tuning_run_id"])

    op.create_table(
        "backtest_equity",
        *_pk("backtest_equity"),
        _fk_col("run_id", nullable=False),
        _ts("ts"),
        _float("equity", nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["backtest_runs.id"],
            name="fk_backtest_equity_run_id_backtest_runs",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("run_id", "ts", name="uq_backtest_equity_run_id_ts"),
    )

    # --- views -----------------------------------------------------------------------------
    if op.get_context().dialect.name == "postgresql":
        op.execute(PORTFOLIO_WIDE_POSTGRESQL)
        op.execute(CANDLES_UTC_POSTGRESQL)
    else:
        op.execute(PORTFOLIO_WIDE_SQLITE)
        op.execute(CANDLES_UTC_SQLITE)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS candles_utc")
    op.execute("DROP VIEW IF EXISTS portfolio_history_wide")
    for table in (
        "backtest_equity",
        "backtest_runs",
        "tuning_runs",
        "health_checks",
        "heartbeats",
        "system_events",
        "sentiment_scores",
        "market_phases",
        "portfolio_bot_balances",
        "portfolio_history",
        "controls",
        "transfers",
        "candles",
        "trades",
        "executions",
        "orders",
        "decisions",
    ):
        op.drop_table(table)
