"""Numeric views of the money tables for the dashboard, and the data's clock.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

SQLite keeps money as exact decimal text, so Datasette sorted and filtered it as text
(``pnl < -1`` matched '-0.2'). These views are what the dashboard's table pages point at: the
same rows with money as numbers (SQLite: CAST to REAL; PostgreSQL: NUMERIC cast to double
precision), times as 'YYYY-MM-DD HH:MM:SS' UTC text in columns named ``*_utc``, and the bot in a
column named ``bot`` everywhere. The tables keep the exact values; the views are for reading.

* ``trade_history`` (trades), ``fill_history`` (executions), ``order_history`` (orders),
  ``transfer_history`` (transfers).
* ``data_clock``: one row, ``now_utc``: the time of the newest portfolio snapshot, else of the
  newest event (a replay or simulation database lives on its own clock; "the last 30 days" of a
  chart count back from here).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Filled per dialect by _sql: {time_*} a UTC text timestamp, {<money column>} a float cast.
TRADE_HISTORY = """
CREATE VIEW trade_history AS
SELECT t.id AS id, {time_ts} AS time_utc, t.sub_bot_name AS bot, t.symbol AS symbol,
       t.side AS side, t.position_effect AS position_effect,
       {price} AS price, {quantity} AS quantity, {fee} AS fee, t.fee_coin AS fee_coin,
       {pnl} AS pnl, t.entry_reason AS entry_reason, t.is_maker AS is_maker,
       t.environment AS environment, t.client_order_id AS client_order_id,
       t.order_id AS order_id
  FROM trades AS t
"""

FILL_HISTORY = """
CREATE VIEW fill_history AS
SELECT e.id AS id, {time_exec_time} AS time_utc, e.bot AS bot, e.symbol AS symbol,
       e.side AS side, {price} AS price, {qty} AS qty, {fee} AS fee, e.fee_coin AS fee_coin,
       {fee_rate} AS fee_rate, e.is_maker AS is_maker, e.exec_type AS exec_type,
       e.environment AS environment, e.client_order_id AS client_order_id,
       e.order_id AS order_id, e.exec_id AS exec_id
  FROM executions AS e
"""

ORDER_HISTORY = """
CREATE VIEW order_history AS
SELECT o.id AS id, {time_created_at} AS created_utc, o.bot AS bot, o.symbol AS symbol,
       o.category AS category, o.side AS side, o.order_type AS order_type, o.status AS status,
       {qty} AS qty, {price} AS price, {filled_qty} AS filled_qty, {avg_price} AS avg_price,
       {fee} AS fee, {take_profit} AS take_profit, {stop_loss} AS stop_loss,
       o.reduce_only AS reduce_only, o.reason AS reason, o.error AS error,
       o.environment AS environment, o.client_order_id AS client_order_id,
       o.exchange_order_id AS exchange_order_id
  FROM orders AS o
"""

TRANSFER_HISTORY = """
CREATE VIEW transfer_history AS
SELECT x.id AS id, {time_created_at} AS created_utc, x.kind AS kind, x.status AS status,
       x.from_account AS from_account, x.to_account AS to_account, x.coin AS coin,
       {amount} AS amount, x.reason AS reason, x.error AS error,
       x.environment AS environment, x.idempotency_key AS idempotency_key
  FROM transfers AS x
"""

DATA_CLOCK = """
CREATE VIEW data_clock AS
SELECT COALESCE((SELECT {time_max} FROM portfolio_history),
                (SELECT {time_max} FROM system_events)) AS now_utc
"""

_ALIASES = {
    "trade_history": "t",
    "fill_history": "e",
    "order_history": "o",
    "transfer_history": "x",
}
_MONEY = ("price", "quantity", "qty", "fee", "fee_rate", "pnl", "filled_qty", "avg_price",
          "take_profit", "stop_loss", "amount")  # fmt: skip


def _sql(name: str, template: str, postgresql: bool) -> str:
    alias = _ALIASES.get(name, "")

    def ts(expr: str) -> str:
        if postgresql:
            return f"to_char({expr} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
        return f"substr({expr}, 1, 19)"

    def num(column: str) -> str:
        kind = "double precision" if postgresql else "REAL"
        return f"CAST({alias}.{column} AS {kind})"

    fields = {
        "time_ts": ts(f'{alias}."timestamp"'),
        "time_exec_time": ts(f"{alias}.exec_time"),
        "time_created_at": ts(f"{alias}.created_at"),
        "time_max": ts('MAX("timestamp")'),
    }
    fields.update({column: num(column) for column in _MONEY})
    return template.format(**fields)


VIEWS: tuple[tuple[str, str], ...] = (
    ("trade_history", TRADE_HISTORY),
    ("fill_history", FILL_HISTORY),
    ("order_history", ORDER_HISTORY),
    ("transfer_history", TRANSFER_HISTORY),
    ("data_clock", DATA_CLOCK),
)


def upgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for name, template in VIEWS:
        op.execute(_sql(name, template, postgresql))


def downgrade() -> None:
    for name, _template in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
