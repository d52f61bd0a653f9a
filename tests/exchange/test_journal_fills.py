"""The rows the journal writes for fills, column by column (SQLite and PostgreSQL).

``record_fills`` writes executions, one ``trades`` row per exchange order and its order row's
filled quantity with plain statements (no ORM unit of work). These tests feed it random fill
sequences -- partial fills, duplicates within a call and across calls, fills out of time order,
spot and linear orders, orders with and without a journal row -- and check every row against
what the rows must hold, worked out here from the fills alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.clock import SimClock
from jiritsu.db.models import Execution, Order, Trade
from jiritsu.exchange.ids import client_order_id
from jiritsu.exchange.journal import OrderJournal
from jiritsu.exchange.types import Fill, OrderRequest
from tests.exchange.bybit_env import BybitEnv, bybit_env

BOT = "SubBot-A"
T0 = datetime(2019, 1, 3, 12, 0, tzinfo=timezone.utc)
STAMPS = {"id", "created_at", "updated_at", "recorded_at"}  # decided by the database/wall clock


@pytest.fixture
def env() -> Iterator[BybitEnv]:
    with bybit_env() as e:
        yield e


def _rows(engine: Engine, entity: Any, order: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(entity).order_by(order))]


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in STAMPS} for row in rows]


def _record_orders(journal: OrderJournal, rng: random.Random, n: int) -> None:
    """``n`` journal rows: spot or linear, opening or closing, some already answered filled."""
    for i in range(n):
        spot = rng.random() < 0.4
        request = OrderRequest(
            client_order_id(BOT, f"bar-{i}", 0),
            "BTCUSDT",
            rng.choice(["Buy", "Sell"]),
            Decimal("0.05"),
            reduce_only=(not spot and rng.random() < 0.4),
        )
        journal.record(BOT, "spot" if spot else "linear", request, reason=f"rule {i}")
        if rng.random() < 0.3:  # answered filled before its fills are read
            journal._update(
                request.client_order_id,
                {"status": "filled", "filled_qty": Decimal("0.05"), "avg_price": Decimal(1)},
            )


def _fills(rng: random.Random, orders: list[dict[str, Any]]) -> list[Fill]:
    """One to four partial fills per order at random prices, fees and times."""
    fills = []
    for order in orders:
        for seq in range(rng.randint(1, 4)):
            fills.append(
                Fill(
                    exec_id=f"{order['exchange_order_id']}-{seq}",
                    exchange_order_id=order["exchange_order_id"],
                    client_order_id=order["cid"],
                    symbol=order["symbol"],
                    side=order["side"],
                    price=Decimal(rng.randint(300000, 400000)) / 100,
                    qty=Decimal(rng.randint(1, 3000)) / 100000,
                    fee=Decimal(rng.randint(0, 500)) / 10000,
                    time=T0 + timedelta(seconds=rng.randint(0, 3600)),
                    is_maker=rng.random() < 0.3,
                    fee_rate=rng.choice([None, Decimal("0.00055")]),
                    fee_currency=order["fee_coin"],
                )
            )
    return fills


def _expected(
    seen: list[Fill], orders_before: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The executions, trades and order rows the fills ``seen`` (first sightings, in order)
    must leave: one execution per fill; per exchange order one trade over its fills taken by
    time then arrival; the order row's filled quantity raised to the trade's."""
    row_ids = {o["client_order_id"]: o["id"] for o in orders_before}
    executions = [
        {
            "exec_id": f.exec_id,
            "order_id": f.exchange_order_id,
            "client_order_id": f.client_order_id,
            "order_row_id": row_ids.get(f.client_order_id),
            "bot": BOT,
            "environment": "testnet",
            "symbol": f.symbol,
            "side": f.side,
            "price": f.price,
            "qty": f.qty,
            "fee": f.fee,
            "fee_coin": f.fee_currency,
            "fee_rate": f.fee_rate,
            "is_maker": f.is_maker,
            "exec_type": None,
            "exec_time": f.time,
        }
        for f in seen
    ]
    by_order: dict[str, list[tuple[int, Fill]]] = {}
    for n, f in enumerate(seen):
        by_order.setdefault(f.exchange_order_id, []).append((n, f))
    order_rows = {o["id"]: dict(o) for o in orders_before}
    trades = []
    for exchange_order_id in sorted(by_order):
        group = [f for _, f in sorted(by_order[exchange_order_id], key=lambda p: (p[1].time, p[0]))]
        first = group[0]
        qty = sum((f.qty for f in group), Decimal(0))
        price = (sum((f.qty * f.price for f in group), Decimal(0)) / qty).quantize(Decimal("1e-10"))
        order = order_rows.get(row_ids.get(first.client_order_id))
        trades.append(
            {
                "timestamp": first.time,
                "sub_bot_name": BOT,
                "symbol": first.symbol,
                "order_id": exchange_order_id,
                "client_order_id": first.client_order_id,
                "order_row_id": order["id"] if order else None,
                "exec_id": first.exec_id if len(group) == 1 else None,
                "side": first.side,
                "price": price,
                "quantity": qty,
                "fee": sum((f.fee for f in group), Decimal(0)),
                "fee_coin": first.fee_currency,
                "pnl": None,
                "entry_reason": order["reason"] if order else None,
                "is_maker": all(f.is_maker for f in group),
                "position_effect": (
                    ("close" if order["reduce_only"] else "open") if order else None
                ),
                "environment": "testnet",
            }
        )
        if order is not None and order["filled_qty"] < qty:
            order.update(filled_qty=qty, avg_price=price)
    return executions, trades, [order_rows[k] for k in sorted(order_rows)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_fill_sequences_write_the_rows_they_must(
    env: BybitEnv, engine: Engine, seed: int
) -> None:
    rng = random.Random(seed)
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=SimClock(T0))
    _record_orders(journal, rng, 12)
    orders_before = _rows(engine, Order, Order.id)
    fills = _fills(rng, _exchange_orders(orders_before, rng))
    rng.shuffle(fills)  # out of time order, orders interleaved
    sent = fills + rng.sample(fills, len(fills) // 3)  # and a third of them again, later
    seen: list[Fill] = []
    while sent:
        size = rng.randint(1, 6)
        batch, sent = sent[:size], sent[size:]
        if rng.random() < 0.3:
            batch = batch + batch[:1]  # a duplicate within one call
        recorded = journal.record_fills(BOT, batch)
        fresh: list[Fill] = []
        for f in batch:
            if f.exec_id not in {s.exec_id for s in seen} | {g.exec_id for g in fresh}:
                fresh.append(f)
        assert [r.fill for r in recorded] == fresh
        assert all(r.adopted for r in recorded)
        seen += fresh
    executions, trades, orders = _expected(seen, orders_before)
    assert _plain(_rows(engine, Execution, Execution.id)) == _plain(executions)
    assert _plain(_rows(engine, Trade, Trade.order_id)) == _plain(trades)
    got_orders = _rows(engine, Order, Order.id)
    assert _plain(got_orders) == _plain(orders)
    assert any(
        o["filled_qty"] > b["filled_qty"] for o, b in zip(got_orders, orders_before, strict=True)
    )


def _exchange_orders(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """The exchange orders of the journal's rows plus two the exchange sent on its own."""
    orders = [
        {
            "exchange_order_id": f"ex-{r['id']:03d}",
            "cid": r["client_order_id"],
            "side": r["side"],
            "symbol": r["symbol"],
            "fee_coin": "BTC" if r["category"] == "spot" else "USDT",
        }
        for r in rows
    ]
    for i in range(2):
        side = rng.choice(["Buy", "Sell"])
        orders.append(
            {
                "exchange_order_id": f"exit-{i}",
                "cid": None,
                "side": side,
                "symbol": "BTCUSDT",
                "fee_coin": "USDT",
            }
        )
    return orders


def test_a_batch_of_fills_is_a_few_statements_in_one_transaction(
    env: BybitEnv, engine: Engine
) -> None:
    """However many fills and orders a call holds: one look-up of the known exec ids, one of
    their order rows, one INSERT, three reads for the roll-up and a write per changed row, all
    committed together; a call of known fills only reads."""
    rng = random.Random(7)
    journal = OrderJournal(engine, env.exchange(), environment="testnet", clock=SimClock(T0))
    _record_orders(journal, rng, 3)
    rows = _rows(engine, Order, Order.id)
    fills = _fills(random.Random(8), _exchange_orders(rows, rng))
    seen: list[str] = []
    commits: list[bool] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split()[0])

    sa.event.listen(engine, "before_cursor_execute", count)
    sa.event.listen(engine, "commit", lambda _conn: commits.append(True))
    journal.record_fills(BOT, fills[:1])
    first = (seen[:], len(commits))
    seen.clear()
    commits.clear()
    journal.record_fills(BOT, fills + fills[:2])
    many = (seen[:], len(commits))
    seen.clear()
    commits.clear()
    journal.record_fills(BOT, fills)
    again = (seen[:], len(commits))
    sa.event.remove(engine, "before_cursor_execute", count)
    reads = ["SELECT", "SELECT", "INSERT", "SELECT", "SELECT", "SELECT"]
    assert first == ([*reads, "UPDATE", "INSERT"], 1)  # raises its order row, adds its trade
    trades = len({f.exchange_order_id for f in fills})
    writes = many[0][len(reads) :]
    assert many[0][: len(reads)] == reads
    assert many[1] == 1
    assert writes.count("INSERT") == trades - 1  # one trade was added by the first call
    assert len(writes) <= trades + len(rows)
    assert again[0] == ["SELECT"]
