"""The order rows the journal writes, column by column, through the real pybit client against
the loopback fake (SQLite and PostgreSQL).

The journal writes with plain statements (no ORM unit of work): these tests pin every column of
the rows of a submit that is answered, refused, lost and resumed, and that an answer which
changes nothing writes nothing (the row keeps its ``updated_at``, as a unit of work would).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.clock import SimClock
from jiritsu.db.models import Order
from jiritsu.exchange.errors import ExchangeUnavailable, InsufficientBalance
from jiritsu.exchange.ids import client_order_id
from jiritsu.exchange.journal import OrderJournal
from jiritsu.exchange.types import OrderRequest
from tests.exchange.bybit_env import BybitEnv, bybit_env

BOT = "SubBot-C"
CREATE = "/v5/order/create"
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
# the columns the exchange or the wall clock decide (checked for what they must be)
OWN = {"id", "exchange_order_id", "updated_at", "avg_price"}


@pytest.fixture
def env() -> Iterator[BybitEnv]:
    with bybit_env() as e:
        yield e


def _rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(Order).order_by(Order.id))]


def _request(key: str, **kw: Any) -> OrderRequest:
    return OrderRequest(client_order_id(BOT, key, 0), "BTCUSDT", "Buy", Decimal("0.01"), **kw)


def _expected(request: OrderRequest, **kw: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "client_order_id": request.client_order_id,
        "bot": BOT,
        "environment": "testnet",
        "symbol": "BTCUSDT",
        "category": "linear",
        "side": request.side,
        "order_type": request.order_type,
        "time_in_force": request.time_in_force,
        "qty": request.qty,
        "price": request.price,
        "filled_qty": Decimal(0),
        "fee": None,
        "status": "pending",
        "exchange_status": None,
        "reduce_only": request.reduce_only,
        "take_profit": request.take_profit,
        "stop_loss": request.stop_loss,
        "decision_id": None,
        "plan_id": None,
        "leg_index": None,
        "reason": None,
        "error": None,
        "created_at": T0,
        "sent_at": None,
    }
    row.update(kw)
    return row


def _own(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in OWN}


def test_submitted_rows_hold_every_column(env: BybitEnv, engine: Engine) -> None:
    clock = SimClock(T0)
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=clock)
    market = _request("bar-1", take_profit=Decimal("90000"), stop_loss=Decimal("20000.5"))
    limit = OrderRequest(
        client_order_id(BOT, "bar-1", 1), "BTCUSDT", "Buy", Decimal("0.005"), "Limit",
        Decimal("30000"), time_in_force="GTC",
    )  # fmt: skip
    filled = journal.submit(BOT, "linear", market, plan_id="p-1", leg_index=0, reason="ema up")
    clock.advance_to(T0 + timedelta(minutes=1))
    resting = journal.submit(BOT, "linear", limit, plan_id="p-1", leg_index=1, reason="ema up")
    first, second = _rows(engine)
    assert _own(first) == _own(
        _expected(market, status="filled", exchange_status="filled", filled_qty=Decimal("0.01"),
                  plan_id="p-1", leg_index=0, reason="ema up", sent_at=T0)
    )  # fmt: skip
    assert first["exchange_order_id"] == filled.exchange_order_id is not None
    assert first["avg_price"] == filled.avg_price > 0
    at = T0 + timedelta(minutes=1)
    assert _own(second) == _own(
        _expected(limit, status="new", exchange_status="new", plan_id="p-1", leg_index=1,
                  reason="ema up", created_at=at, sent_at=at)
    )  # fmt: skip
    assert second["exchange_order_id"] == resting.exchange_order_id is not None
    assert second["avg_price"] is None


def test_an_answer_that_changes_nothing_writes_nothing(env: BybitEnv, engine: Engine) -> None:
    clock = SimClock(T0)
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=clock)
    request = _request("bar-2")
    journal.submit(BOT, "linear", request)
    (before,) = _rows(engine)
    clock.advance_to(T0 + timedelta(minutes=5))
    again = journal.submit(BOT, "linear", request)  # answered before: asked, never resent
    assert again.exchange_order_id == before["exchange_order_id"]
    assert len(env.fake.orders) == 1
    assert _rows(engine) == [before]  # updated_at included


def test_refused_and_lost_orders_keep_their_reason(env: BybitEnv, engine: Engine) -> None:
    clock = SimClock(T0)
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=clock)
    refused, lost = _request("bar-3"), _request("bar-4")
    env.fake.inject(CREATE, "ret_code", ret_code=110007, ret_msg="ab not enough for new order")
    with pytest.raises(InsufficientBalance):
        journal.submit(BOT, "linear", refused, reason="rsi 28")
    env.fake.inject(CREATE, "accept_then_drop", times=None)
    with pytest.raises(ExchangeUnavailable):
        journal.submit(BOT, "linear", lost)
    env.fake.clear_faults()
    first, second = _rows(engine)
    assert "ab not enough" in first["error"]
    assert _own(first) == _own(
        _expected(refused, status="rejected", reason="rsi 28", sent_at=T0, error=first["error"])
    )
    assert first["exchange_order_id"] is None
    assert second["error"].startswith("ExchangeUnavailable: ")
    assert _own(second) == _own(
        _expected(lost, status="unknown", sent_at=T0, error=second["error"])
    )

    # the lost one is resumed with its client id: one order on the exchange, the error cleared
    clock.advance_to(T0 + timedelta(minutes=2))
    state = journal.submit(BOT, "linear", lost)
    assert [o.order_link_id for o in env.fake.orders].count(lost.client_order_id) == 1
    _, resumed = _rows(engine)
    assert _own(resumed) == _own(
        _expected(lost, status="filled", exchange_status="filled", filled_qty=Decimal("0.01"),
                  sent_at=T0 + timedelta(minutes=2))
    )  # fmt: skip
    assert resumed["exchange_order_id"] == state.exchange_order_id


def test_a_submit_reads_the_row_once(env: BybitEnv, engine: Engine) -> None:
    """The look-up before the INSERT is the only read: marking the row sent and storing the
    answer move its status, so they write without reading it first."""
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=SimClock(T0))
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        journal.submit(BOT, "linear", _request("bar-5"))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert seen == ["SELECT", "INSERT", "UPDATE", "UPDATE"]
    (row,) = _rows(engine)
    assert (row["status"], row["sent_at"], row["error"]) == ("filled", T0, None)


def test_submits_run_statements_built_once(env: BybitEnv, engine: Engine) -> None:
    """Every submit runs the same statement objects (built once, the client id a parameter):
    answered and refused orders, each on its own row."""
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=SimClock(T0))
    runs: list[list[int]] = []

    def seen(_conn: Any, statement: Any, *_args: Any) -> None:
        runs[-1].append(id(statement))

    sa.event.listen(engine, "before_execute", seen)
    try:
        for key in ("bar-6", "bar-7"):
            runs.append([])
            journal.submit(BOT, "linear", _request(key))
        env.fake.inject(CREATE, "ret_code", ret_code=110007, ret_msg="ab not enough", times=None)
        for key in ("bar-8", "bar-9"):
            runs.append([])
            with pytest.raises(InsufficientBalance):
                journal.submit(BOT, "linear", _request(key))
    finally:
        sa.event.remove(engine, "before_execute", seen)
        env.fake.clear_faults()
    assert len(runs[0]) == 4
    assert runs[0] == runs[1]
    assert len(runs[2]) == 4
    assert runs[2] == runs[3]
    assert runs[2][:3] == runs[0][:3]  # the look-up, the INSERT, marking it sent
    assert [r["status"] for r in _rows(engine)] == ["filled", "filled", "rejected", "rejected"]


def test_a_stored_state_writes_only_what_differs(env: BybitEnv, engine: Engine) -> None:
    """store_state (a cancelled leg's answer) sets apply_state's columns on the row: a new
    status moves it (and its updated_at), the same answer again writes nothing."""
    clock = SimClock(T0)
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=clock)
    request = _request("bar-10", price=Decimal(20000), order_type="Limit")
    placed = journal.submit(BOT, "linear", request)
    assert placed.status == "new"
    (before,) = _rows(engine)
    cancelled = dataclasses.replace(placed, status="cancelled")
    journal.store_state(request.client_order_id, cancelled)
    (after,) = _rows(engine)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {"status", "exchange_status", "updated_at"}
    assert (after["status"], after["exchange_status"]) == ("cancelled", "cancelled")
    journal.store_state(request.client_order_id, cancelled)
    assert _rows(engine) == [after]  # updated_at included
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        journal.store_state(request.client_order_id, dataclasses.replace(placed, status="filled"))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert seen == ["SELECT", "UPDATE"]
    assert _rows(engine)[0]["status"] == "filled"
