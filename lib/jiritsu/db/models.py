"""The one database schema: typed SQLAlchemy 2.0 models for every table Jiritsu writes.

Alembic migrations in ``migrations/versions`` are the only way this schema reaches a database;
``jiritsu db check`` (and a test) fail when these models and the migrations disagree.

Conventions the rest of the system relies on:

* money and quantities are :class:`~jiritsu.db.types.Money` (exact ``Decimal``), timestamps are
  :class:`~jiritsu.db.types.UTCDateTime` (aware UTC), documents are
  :class:`~jiritsu.db.types.JSONDoc`; backtest and market data (candles, equity curves, metrics)
  are plain floats because the numeric kernels use float64 anyway and no money moves on them;
* ``side`` uses Bybit's spelling (``"Buy"``/``"Sell"``), ``order_type`` too (``"Market"``,
  ``"Limit"``); lifecycle columns (order status, transfer status and kind, position effect) are
  CHECK-constrained to the tuples below, so a typo cannot slip into a real-money record;
* ``trades`` holds one aggregated row per exchange order (``order_id`` unique, as the design
  says); every single fill is kept in ``executions`` (``exec_id`` unique), so a partially filled
  order loses nothing;
* ``candles.ts`` is the bar's start in epoch milliseconds (Bybit's ``startTime``), not a datetime:
  the table is large and read in bulk; the view ``candles_utc`` adds an ISO-8601 time column;
* ``portfolio_history`` has one row per snapshot and ``portfolio_bot_balances`` one row per bot
  and snapshot (any number of bots); the view ``portfolio_history_wide`` gives the design's wide
  layout with ``bot_balances`` as a JSON object ``{bot: balance}``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jiritsu.db.types import JSONDoc, Money, UTCDateTime, utc_now

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SIDES = ("Buy", "Sell")
ORDER_STATUSES = (
    "pending",  # recorded, not yet sent
    "sent",  # request sent, no acknowledgement yet
    "new",
    "partially_filled",
    "filled",
    "cancelled",
    "rejected",
    "unknown",  # answer lost: look it up by client_order_id before doing anything else
)
OPEN_ORDER_STATUSES = ("pending", "sent", "new", "partially_filled", "unknown")
POSITION_EFFECTS = ("open", "close")
TRANSFER_KINDS = ("rebalance", "profit_save", "manual")
TRANSFER_STATUSES = ("pending", "sent", "success", "failed", "unknown")
DECISION_PROVIDERS = ("rules", "gemini", "hybrid")
EVENT_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
GLOBAL_SCOPE = "global"

VIEW_NAMES: tuple[str, ...] = ("portfolio_history_wide", "candles_utc")

# SQLite only turns "INTEGER PRIMARY KEY" into an auto-incrementing rowid; PostgreSQL gets BIGINT.
IdType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    """SQL for a CHECK that ``column`` holds one of ``values`` (NULL passes, as in SQL)."""
    quoted = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    """Declarative base; the naming convention makes constraint names identical everywhere."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> Mapped[int]:
    return mapped_column(IdType, primary_key=True, autoincrement=True)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utc_now, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utc_now, onupdate=utc_now, nullable=False)


# --- trading ------------------------------------------------------------------------------


class Decision(Base):
    """Every advisor answer (or failure to answer), replayable: what it saw and what it said."""

    __tablename__ = "decisions"
    __table_args__ = (
        sa.Index("ix_decisions_bot_bar_ts", "bot", "bar_ts"),
        sa.Index("ix_decisions_bot_created_at", "bot", "created_at"),
        sa.Index("ix_decisions_created_at", "created_at"),  # 0004: newest first, all bots
    )

    id: Mapped[int] = _id()
    bot: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = _created()
    bar_ts: Mapped[datetime | None] = mapped_column(UTCDateTime())
    symbol: Mapped[str | None] = mapped_column(sa.String(32))
    provider: Mapped[str] = mapped_column(sa.String(16))
    model: Mapped[str | None] = mapped_column(sa.String(64))
    prompt_hash: Mapped[str | None] = mapped_column(sa.String(64))
    input_summary: Mapped[Any | None] = mapped_column(JSONDoc())
    action: Mapped[str | None] = mapped_column(sa.String(16))
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    confidence: Mapped[float | None] = mapped_column(sa.Float())
    reason: Mapped[str | None] = mapped_column(sa.Text())
    latency_ms: Mapped[int | None] = mapped_column(sa.Integer())
    prompt_tokens: Mapped[int | None] = mapped_column(sa.Integer())
    output_tokens: Mapped[int | None] = mapped_column(sa.Integer())
    total_tokens: Mapped[int | None] = mapped_column(sa.Integer())
    error: Mapped[str | None] = mapped_column(sa.Text())


class Order(Base):
    """Our record of an order, written BEFORE it is sent (status "pending").

    ``client_order_id`` is Bybit's ``orderLinkId`` (at most 36 characters) and the idempotency
    key: after a lost answer the order is looked up by it, never re-sent with a new one.
    """

    __tablename__ = "orders"
    __table_args__ = (
        sa.CheckConstraint(_one_of("side", SIDES), name="side"),
        sa.CheckConstraint(_one_of("status", ORDER_STATUSES), name="status"),
        sa.Index("ix_orders_bot_created_at", "bot", "created_at"),
        sa.Index("ix_orders_status", "status"),
    )

    id: Mapped[int] = _id()
    client_order_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    exchange_order_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    bot: Mapped[str] = mapped_column(sa.String(64))
    environment: Mapped[str | None] = mapped_column(sa.String(16))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    category: Mapped[str] = mapped_column(sa.String(16))
    side: Mapped[str] = mapped_column(sa.String(4))
    order_type: Mapped[str] = mapped_column(sa.String(16))
    time_in_force: Mapped[str | None] = mapped_column(sa.String(16))
    qty: Mapped[Decimal] = mapped_column(Money())
    price: Mapped[Decimal | None] = mapped_column(Money())
    filled_qty: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    avg_price: Mapped[Decimal | None] = mapped_column(Money())
    fee: Mapped[Decimal | None] = mapped_column(Money())
    status: Mapped[str] = mapped_column(sa.String(20), default="pending")
    exchange_status: Mapped[str | None] = mapped_column(sa.String(32))
    reduce_only: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    take_profit: Mapped[Decimal | None] = mapped_column(Money())
    stop_loss: Mapped[Decimal | None] = mapped_column(Money())
    decision_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("decisions.id", ondelete="SET NULL"), index=True
    )
    plan_id: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    leg_index: Mapped[int | None] = mapped_column(sa.Integer())
    reason: Mapped[str | None] = mapped_column(sa.Text())
    error: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Execution(Base):
    """One fill as the exchange reports it (``/v5/execution/list``), deduplicated by execId."""

    __tablename__ = "executions"
    __table_args__ = (
        sa.CheckConstraint(_one_of("side", SIDES), name="side"),
        sa.Index("ix_executions_bot_exec_time", "bot", "exec_time"),
    )

    id: Mapped[int] = _id()
    exec_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    order_id: Mapped[str] = mapped_column(sa.String(64), index=True)  # exchange orderId
    client_order_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    order_row_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    bot: Mapped[str] = mapped_column(sa.String(64))
    environment: Mapped[str | None] = mapped_column(sa.String(16))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    side: Mapped[str] = mapped_column(sa.String(4))
    price: Mapped[Decimal] = mapped_column(Money())
    qty: Mapped[Decimal] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    fee_coin: Mapped[str | None] = mapped_column(sa.String(16))
    fee_rate: Mapped[Decimal | None] = mapped_column(Money())
    is_maker: Mapped[bool | None] = mapped_column(sa.Boolean())
    exec_type: Mapped[str | None] = mapped_column(sa.String(16))
    exec_time: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_at: Mapped[datetime] = _created()


class Trade(Base):
    """The design's trade record: one row per exchange order, aggregated over its fills."""

    __tablename__ = "trades"
    __table_args__ = (
        sa.CheckConstraint(_one_of("side", SIDES), name="side"),
        sa.CheckConstraint(_one_of("position_effect", POSITION_EFFECTS), name="position_effect"),
        sa.Index("ix_trades_sub_bot_name_timestamp", "sub_bot_name", "timestamp"),
    )

    id: Mapped[int] = _id()
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    sub_bot_name: Mapped[str] = mapped_column(sa.String(64))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)  # exchange orderId
    client_order_id: Mapped[str | None] = mapped_column(sa.String(36), index=True)
    order_row_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("orders.id", ondelete="SET NULL"), index=True
    )
    exec_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    side: Mapped[str] = mapped_column(sa.String(4))
    price: Mapped[Decimal] = mapped_column(Money())
    quantity: Mapped[Decimal] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    fee_coin: Mapped[str | None] = mapped_column(sa.String(16))
    pnl: Mapped[Decimal | None] = mapped_column(Money())
    entry_reason: Mapped[str | None] = mapped_column(sa.Text())
    is_maker: Mapped[bool | None] = mapped_column(sa.Boolean())
    position_effect: Mapped[str | None] = mapped_column(sa.String(8))
    environment: Mapped[str | None] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Candle(Base):
    """OHLCV bars. ``ts`` = bar start in epoch ms; prices are float64 market data, not money."""

    __tablename__ = "candles"
    __table_args__ = (sa.UniqueConstraint("symbol", "interval", "ts"),)

    id: Mapped[int] = _id()
    symbol: Mapped[str] = mapped_column(sa.String(32))
    interval: Mapped[str] = mapped_column(sa.String(8))
    ts: Mapped[int] = mapped_column(sa.BigInteger())
    open: Mapped[float] = mapped_column(sa.Float())
    high: Mapped[float] = mapped_column(sa.Float())
    low: Mapped[float] = mapped_column(sa.Float())
    close: Mapped[float] = mapped_column(sa.Float())
    volume: Mapped[float] = mapped_column(sa.Float())
    turnover: Mapped[float | None] = mapped_column(sa.Float())


# --- master layer -------------------------------------------------------------------------


class Transfer(Base):
    """A capital move between accounts; ``idempotency_key`` is Bybit's ``transferId`` (UUID)."""

    __tablename__ = "transfers"
    __table_args__ = (
        sa.CheckConstraint(_one_of("kind", TRANSFER_KINDS), name="kind"),
        sa.CheckConstraint(_one_of("status", TRANSFER_STATUSES), name="status"),
        sa.Index("ix_transfers_status", "status"),
        sa.Index("ix_transfers_created_at", "created_at"),
    )

    id: Mapped[int] = _id()
    idempotency_key: Mapped[str] = mapped_column(sa.String(36), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    environment: Mapped[str | None] = mapped_column(sa.String(16))
    from_account: Mapped[str] = mapped_column(sa.String(64))
    to_account: Mapped[str] = mapped_column(sa.String(64))
    from_member_id: Mapped[int | None] = mapped_column(sa.BigInteger())
    to_member_id: Mapped[int | None] = mapped_column(sa.BigInteger())
    from_account_type: Mapped[str | None] = mapped_column(sa.String(16))
    to_account_type: Mapped[str | None] = mapped_column(sa.String(16))
    coin: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[Decimal] = mapped_column(Money())
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    exchange_status: Mapped[str | None] = mapped_column(sa.String(32))
    error: Mapped[str | None] = mapped_column(sa.Text())
    reason: Mapped[str | None] = mapped_column(sa.Text())
    details: Mapped[Any | None] = mapped_column(JSONDoc())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Control(Base):
    """Halt switches: one row for ``scope="global"`` and one per bot name."""

    __tablename__ = "controls"

    id: Mapped[int] = _id()
    scope: Mapped[str] = mapped_column(sa.String(64), unique=True)
    halted: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    reason: Mapped[str | None] = mapped_column(sa.Text())
    halted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    halted_by: Mapped[str | None] = mapped_column(sa.String(64))
    resumed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cooldown_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = _updated()


class PortfolioSnapshot(Base):
    """The design's ``portfolio_history``; per-bot balances live in ``portfolio_bot_balances``."""

    __tablename__ = "portfolio_history"

    id: Mapped[int] = _id()
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    total_balance_usdt: Mapped[Decimal] = mapped_column(Money())
    profit_saved_balance: Mapped[Decimal | None] = mapped_column(Money())
    phase: Mapped[str | None] = mapped_column(sa.String(16))
    environment: Mapped[str | None] = mapped_column(sa.String(16))


class PortfolioBotBalance(Base):
    """One bot's balance in one snapshot (deleted with its snapshot)."""

    __tablename__ = "portfolio_bot_balances"
    __table_args__ = (sa.UniqueConstraint("snapshot_id", "bot_name"),)

    id: Mapped[int] = _id()
    snapshot_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("portfolio_history.id", ondelete="CASCADE")
    )
    bot_name: Mapped[str] = mapped_column(sa.String(64))
    balance: Mapped[Decimal] = mapped_column(Money())
    available_balance: Mapped[Decimal | None] = mapped_column(Money())


class MarketPhase(Base):
    """The market phase (e.g. bull/bear/range) over time, for the phase chart."""

    __tablename__ = "market_phases"
    __table_args__ = (
        sa.Index("ix_market_phases_symbol_ts", "symbol", "ts"),
        sa.UniqueConstraint("symbol", "indicator", "ts"),  # one row per reading (0008)
    )

    id: Mapped[int] = _id()
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    symbol: Mapped[str] = mapped_column(sa.String(32))
    phase: Mapped[str] = mapped_column(sa.String(16))
    indicator: Mapped[str] = mapped_column(sa.String(32))
    value: Mapped[float | None] = mapped_column(sa.Float())
    details: Mapped[Any | None] = mapped_column(JSONDoc())


# --- news and operations ------------------------------------------------------------------


class SentimentScore(Base):
    """A news item and its sentiment; ``item_key`` (e.g. sha256 of source + guid) dedupes it."""

    __tablename__ = "sentiment_scores"
    __table_args__ = (sa.Index("ix_sentiment_scores_keyword_timestamp", "keyword", "timestamp"),)

    id: Mapped[int] = _id()
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    fetched_at: Mapped[datetime] = _created()
    source: Mapped[str] = mapped_column(sa.String(64))
    url: Mapped[str | None] = mapped_column(sa.Text())
    guid: Mapped[str | None] = mapped_column(sa.Text())
    item_key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    keyword: Mapped[str | None] = mapped_column(sa.String(64))
    score: Mapped[float | None] = mapped_column(sa.Float())
    headline: Mapped[str] = mapped_column(sa.Text())
    scorer: Mapped[str | None] = mapped_column(sa.String(32))
    model: Mapped[str | None] = mapped_column(sa.String(64))
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Added by migration 0003 (news sentiment): the feed the item came from (URL or file path;
    # ``source`` is its short label), the bounded text the scorer reads (so an item left
    # unscored is scored by a later run without refetching), the scorer's label, and how many
    # times scoring this item failed with its last reason (retries stop at a limit).
    feed_url: Mapped[str | None] = mapped_column(sa.Text())
    content: Mapped[str | None] = mapped_column(sa.Text())
    label: Mapped[str | None] = mapped_column(sa.String(16))
    score_attempts: Mapped[int] = mapped_column(sa.Integer(), default=0, server_default="0")
    score_error: Mapped[str | None] = mapped_column(sa.Text())


class SystemEvent(Base):
    """Operational events; written by :func:`jiritsu.events.record_event` with the log line."""

    __tablename__ = "system_events"
    __table_args__ = (
        sa.Index("ix_system_events_level_timestamp", "level", "timestamp"),
        sa.Index("ix_system_events_event_type_timestamp", "event_type", "timestamp"),
    )

    id: Mapped[int] = _id()
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now, index=True)
    level: Mapped[str] = mapped_column(sa.String(10))
    event_type: Mapped[str] = mapped_column(sa.String(64))
    message: Mapped[str] = mapped_column(sa.Text())
    details: Mapped[Any | None] = mapped_column(JSONDoc())
    bot: Mapped[str | None] = mapped_column(sa.String(64))


class Heartbeat(Base):
    """Last sign of life of each long-running component (``component`` e.g. "trade-loop")."""

    __tablename__ = "heartbeats"

    id: Mapped[int] = _id()
    component: Mapped[str] = mapped_column(sa.String(64), unique=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pid: Mapped[int | None] = mapped_column(sa.Integer())
    host: Mapped[str | None] = mapped_column(sa.String(255))
    details: Mapped[Any | None] = mapped_column(JSONDoc())


class Meta(Base):
    """Facts about this installation, one row per key, each written once (e.g. ``install_id``,
    which makes the weekly saving's transfer ids unique per database)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = _created()


class HealthCheck(Base):
    """One health-check result; alerting compares a check's latest status with the previous."""

    __tablename__ = "health_checks"
    __table_args__ = (sa.Index("ix_health_checks_check_name_ts", "check_name", "ts"),)

    id: Mapped[int] = _id()
    ts: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    check_name: Mapped[str] = mapped_column(sa.String(64))  # "check" is an SQL keyword
    status: Mapped[str] = mapped_column(sa.String(16))
    value: Mapped[float | None] = mapped_column(sa.Float())
    message: Mapped[str | None] = mapped_column(sa.Text())
    details: Mapped[Any | None] = mapped_column(JSONDoc())


# --- backtesting and tuning ---------------------------------------------------------------


class TuningRun(Base):
    """A monthly self-tuning run: the whole grid with scores and what was (not) applied."""

    __tablename__ = "tuning_runs"
    __table_args__ = (sa.Index("ix_tuning_runs_bot_started_at", "bot", "started_at"),)

    id: Mapped[int] = _id()
    bot: Mapped[str] = mapped_column(sa.String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(sa.String(16), default="running")
    target_metric: Mapped[str] = mapped_column(sa.String(32))
    grid: Mapped[Any | None] = mapped_column(JSONDoc())
    current_params: Mapped[Any | None] = mapped_column(JSONDoc())
    best_params: Mapped[Any | None] = mapped_column(JSONDoc())
    current_in_sample_score: Mapped[float | None] = mapped_column(sa.Float())
    current_out_of_sample_score: Mapped[float | None] = mapped_column(sa.Float())
    in_sample_score: Mapped[float | None] = mapped_column(sa.Float())
    out_of_sample_score: Mapped[float | None] = mapped_column(sa.Float())
    in_sample_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    in_sample_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    out_of_sample_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    out_of_sample_to: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(sa.Text())
    error: Mapped[str | None] = mapped_column(sa.Text())
    details: Mapped[Any | None] = mapped_column(JSONDoc())


class BacktestRun(Base):
    """One backtest: parameters, period, all metrics (JSON) plus the key ones as columns."""

    __tablename__ = "backtest_runs"
    __table_args__ = (sa.Index("ix_backtest_runs_bot_created_at", "bot", "created_at"),)

    id: Mapped[int] = _id()
    created_at: Mapped[datetime] = _created()
    bot: Mapped[str] = mapped_column(sa.String(64))
    strategy: Mapped[str | None] = mapped_column(sa.String(64))
    symbol: Mapped[str | None] = mapped_column(sa.String(32))
    interval: Mapped[str | None] = mapped_column(sa.String(8))
    params: Mapped[Any | None] = mapped_column(JSONDoc())
    period_from: Mapped[datetime] = mapped_column(UTCDateTime())
    period_to: Mapped[datetime] = mapped_column(UTCDateTime())
    initial_equity: Mapped[float | None] = mapped_column(sa.Float())
    metrics: Mapped[Any | None] = mapped_column(JSONDoc())
    total_return: Mapped[float | None] = mapped_column(sa.Float())
    sharpe: Mapped[float | None] = mapped_column(sa.Float())
    sortino: Mapped[float | None] = mapped_column(sa.Float())
    max_drawdown: Mapped[float | None] = mapped_column(sa.Float())
    win_rate: Mapped[float | None] = mapped_column(sa.Float())
    profit_factor: Mapped[float | None] = mapped_column(sa.Float())
    trade_count: Mapped[int | None] = mapped_column(sa.Integer())
    trades_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    source: Mapped[str] = mapped_column(sa.String(16), default="cli")
    sample: Mapped[str | None] = mapped_column(sa.String(16))  # "in_sample"/"out_of_sample"
    tuning_run_id: Mapped[int | None] = mapped_column(
        IdType, sa.ForeignKey("tuning_runs.id", ondelete="SET NULL"), index=True
    )


class BacktestEquity(Base):
    """A backtest's equity curve (deleted with its run)."""

    __tablename__ = "backtest_equity"
    __table_args__ = (sa.UniqueConstraint("run_id", "ts"),)

    id: Mapped[int] = _id()
    run_id: Mapped[int] = mapped_column(
        IdType, sa.ForeignKey("backtest_runs.id", ondelete="CASCADE")
    )
    ts: Mapped[datetime] = mapped_column(UTCDateTime())
    equity: Mapped[float] = mapped_column(sa.Float())


# --- paper trading ledger (migration 0002) ------------------------------------------------
# The simulated exchange's own books: what Bybit would hold for us in paper mode. These tables
# are the paper EXCHANGE's state, not our records of it (those stay in orders/executions/...).
# Times are the simulation clock's, so a replay writes the same rows whenever it runs (hence
# ``updated_at`` without ``onupdate``: the wall clock must not leak in).

PAPER_WALLETS = ("UNIFIED", "FUND")
PAPER_CATEGORIES = ("linear", "spot")
PAPER_ORDER_TYPES = ("Market", "Limit")
PAPER_ORDER_STATUSES = ("new", "partially_filled", "filled", "cancelled", "rejected")
PAPER_OPEN_ORDER_STATUSES = ("new", "partially_filled")
PAPER_EXEC_TYPES = ("Trade", "TakeProfit", "StopLoss")
PAPER_POSITION_SIDES = ("Buy", "Sell", "")


def _sim_updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utc_now, nullable=False)


class PaperAccount(Base):
    """One wallet of one paper account: ``account`` is a bot name or ``main``."""

    __tablename__ = "paper_accounts"
    __table_args__ = (
        sa.UniqueConstraint("account", "wallet", "coin"),
        sa.CheckConstraint(_one_of("wallet", PAPER_WALLETS), name="wallet"),
    )

    id: Mapped[int] = _id()
    account: Mapped[str] = mapped_column(sa.String(64))
    wallet: Mapped[str] = mapped_column(sa.String(8))
    coin: Mapped[str] = mapped_column(sa.String(16))
    balance: Mapped[Decimal] = mapped_column(Money())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _sim_updated()


class PaperOrder(Base):
    """The paper exchange's order book; ``client_order_id`` is unique per account (NULL for
    the market orders a TP/SL trigger sends, as on Bybit). ``reserved`` is the quote amount the
    open order holds back from the available balance; ``accepted_ms`` (clock time) decides the
    first bar the order can fill on."""

    __tablename__ = "paper_orders"
    __table_args__ = (
        sa.UniqueConstraint("account", "client_order_id"),
        sa.CheckConstraint(_one_of("side", SIDES), name="side"),
        sa.CheckConstraint(_one_of("category", PAPER_CATEGORIES), name="category"),
        sa.CheckConstraint(_one_of("order_type", PAPER_ORDER_TYPES), name="order_type"),
        sa.CheckConstraint(_one_of("status", PAPER_ORDER_STATUSES), name="status"),
        sa.Index("ix_paper_orders_status_account", "status", "account"),
    )

    id: Mapped[int] = _id()
    account: Mapped[str] = mapped_column(sa.String(64))
    category: Mapped[str] = mapped_column(sa.String(8))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    client_order_id: Mapped[str | None] = mapped_column(sa.String(36))
    exchange_order_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    side: Mapped[str] = mapped_column(sa.String(4))
    order_type: Mapped[str] = mapped_column(sa.String(8))
    time_in_force: Mapped[str | None] = mapped_column(sa.String(16))
    qty: Mapped[Decimal] = mapped_column(Money())
    price: Mapped[Decimal | None] = mapped_column(Money())
    reduce_only: Mapped[bool] = mapped_column(sa.Boolean(), default=False)
    take_profit: Mapped[Decimal | None] = mapped_column(Money())
    stop_loss: Mapped[Decimal | None] = mapped_column(Money())
    status: Mapped[str] = mapped_column(sa.String(20))
    filled_qty: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    avg_price: Mapped[Decimal | None] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    reserved: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    fill_count: Mapped[int] = mapped_column(sa.Integer(), default=0)
    reject_reason: Mapped[str | None] = mapped_column(sa.Text())
    accepted_ms: Mapped[int] = mapped_column(sa.BigInteger())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _sim_updated()


class PaperFill(Base):
    """One simulated execution; ``exec_id`` is deterministic (a replay reproduces it).
    ``realised_pnl`` is the gross PnL of the part of the fill that closed a position."""

    __tablename__ = "paper_fills"
    __table_args__ = (
        sa.CheckConstraint(_one_of("side", SIDES), name="side"),
        sa.CheckConstraint(_one_of("exec_type", PAPER_EXEC_TYPES), name="exec_type"),
        sa.Index("ix_paper_fills_account_exec_ms", "account", "exec_ms"),
    )

    id: Mapped[int] = _id()
    exec_id: Mapped[str] = mapped_column(sa.String(64), unique=True)
    account: Mapped[str] = mapped_column(sa.String(64))
    category: Mapped[str] = mapped_column(sa.String(8))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    exchange_order_id: Mapped[str] = mapped_column(sa.String(64), index=True)
    client_order_id: Mapped[str | None] = mapped_column(sa.String(36))
    side: Mapped[str] = mapped_column(sa.String(4))
    price: Mapped[Decimal] = mapped_column(Money())
    qty: Mapped[Decimal] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money())
    fee_coin: Mapped[str] = mapped_column(sa.String(16))
    fee_rate: Mapped[Decimal] = mapped_column(Money())
    is_maker: Mapped[bool] = mapped_column(sa.Boolean())
    exec_type: Mapped[str] = mapped_column(sa.String(16))
    realised_pnl: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    exec_ms: Mapped[int] = mapped_column(sa.BigInteger())
    exec_time: Mapped[datetime] = mapped_column(UTCDateTime())


class PaperPosition(Base):
    """One market (account, category, symbol): the position (spot: the base-coin holding, always
    "Buy") and ``next_bar_ms``, the first bar not yet worked for this market."""

    __tablename__ = "paper_positions"
    __table_args__ = (
        sa.UniqueConstraint("account", "category", "symbol"),
        sa.CheckConstraint(_one_of("side", PAPER_POSITION_SIDES), name="side"),
        sa.CheckConstraint(_one_of("category", PAPER_CATEGORIES), name="category"),
    )

    id: Mapped[int] = _id()
    account: Mapped[str] = mapped_column(sa.String(64))
    category: Mapped[str] = mapped_column(sa.String(8))
    symbol: Mapped[str] = mapped_column(sa.String(32))
    side: Mapped[str] = mapped_column(sa.String(4), default="")
    size: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    avg_price: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    leverage: Mapped[int] = mapped_column(sa.Integer(), default=1)
    take_profit: Mapped[Decimal | None] = mapped_column(Money())
    stop_loss: Mapped[Decimal | None] = mapped_column(Money())
    tpsl_from_ms: Mapped[int | None] = mapped_column(sa.BigInteger())
    realised_pnl: Mapped[Decimal] = mapped_column(Money(), default=Decimal(0))
    next_bar_ms: Mapped[int] = mapped_column(sa.BigInteger())
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _sim_updated()


class PaperTransfer(Base):
    """A paper transfer between ledger wallets, idempotent by ``transfer_id``."""

    __tablename__ = "paper_transfers"

    id: Mapped[int] = _id()
    transfer_id: Mapped[str] = mapped_column(sa.String(36), unique=True)
    coin: Mapped[str] = mapped_column(sa.String(16))
    amount: Mapped[Decimal] = mapped_column(Money())
    from_account: Mapped[str] = mapped_column(sa.String(64))
    from_wallet: Mapped[str] = mapped_column(sa.String(8))
    to_account: Mapped[str] = mapped_column(sa.String(64))
    to_wallet: Mapped[str] = mapped_column(sa.String(8))
    status: Mapped[str] = mapped_column(sa.String(16))
    detail: Mapped[str | None] = mapped_column(sa.Text())
    created_at: Mapped[datetime] = _created()


# --- news sentiment and API usage (migration 0003) ----------------------------------------
# ``api_usage``: what each provider (Gemini) spent per UTC day, shared by every process so that
# the daily request/token budget holds across the trade loop and timer-started jobs.
# ``sentiment_moving_average`` (view, defined per dialect in 0003): per hour bucket that holds
# scored items, the average score of the items published in the 24 hours ending with that
# bucket's end, (end - 24 h, end]. The window of the view is fixed at 24 h; the configured
# ``news_sentiment.moving_average_period_hours`` is applied by
# :func:`jiritsu.news.sentiment.sentiment_average`, which the advisors use.

VIEW_NAMES = (*VIEW_NAMES, "sentiment_moving_average")


class ApiUsage(Base):
    """Requests and tokens one provider used on one UTC day (incremented in SQL, atomically)."""

    __tablename__ = "api_usage"
    __table_args__ = (sa.UniqueConstraint("day", "provider"),)

    id: Mapped[int] = _id()
    day: Mapped[date] = mapped_column(sa.Date())
    provider: Mapped[str] = mapped_column(sa.String(32))
    requests: Mapped[int] = mapped_column(sa.Integer(), default=0)
    prompt_tokens: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    output_tokens: Mapped[int] = mapped_column(sa.BigInteger(), default=0)
    updated_at: Mapped[datetime] = _updated()


# --- dashboard views (migrations 0004, 0005 and 0007) ------------------------------------
# Read by the Datasette dashboard (jiritsu.dashboard); defined per dialect in 0004, which
# documents each: daily realised PnL per bot, performance per bot and overall (win rate, profit
# factor, daily PnL ratio: named so by 0007), end-of-day portfolio and per-bot equity, daily
# sentiment with a 7-day average, the newest result of each health check and the Summary page's
# one row.

DASHBOARD_VIEW_NAMES = (
    "trade_pnl_daily",
    "performance",
    "portfolio_daily",
    "equity_daily",
    "sentiment_daily",
    "health_latest",
    "dashboard_summary",
    # migration 0005: the money tables with numbers as numbers, and the data's clock
    "trade_history",
    "fill_history",
    "order_history",
    "transfer_history",
    "data_clock",
)
VIEW_NAMES = (*VIEW_NAMES, *DASHBOARD_VIEW_NAMES)
