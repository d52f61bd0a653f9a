"""The order journal: every order is written to ``orders`` BEFORE it is sent.

This is what makes a crash harmless. The row (status "pending") carries the deterministic client
id; the exchange treats that id as the idempotency key. Whatever happens next -- the process dies
before sending, while sending, or before recording the answer -- the next run finds the row, asks
the exchange by client id (or simply sends again, which the exchange answers with the existing
order), and ends with exactly one order on the exchange and one row here.

Fills are recorded from the exchange's execution list, deduplicated by ``exec_id``, and rolled up
into the design's one-row-per-order ``trades`` table.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.exchange.errors import OrderRejected
from jiritsu.exchange.types import Category, Fill, OrderRequest, OrderState
from jiritsu.redact import redact

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from jiritsu.clock import Clock
    from jiritsu.db.models import Order
    from jiritsu.exchange.base import Exchange

log = logging.getLogger("jiritsu.orders")

# The exchange's lifecycle has two states the database does not distinguish.
_DB_STATUS = {"untriggered": "new", "deactivated": "cancelled"}
RESUMABLE = ("pending", "sent", "unknown")  # the answer never reached us: ask, or send again


def db_status(status: str) -> str:
    return _DB_STATUS.get(status, status)


def state_values(state: OrderState) -> dict[str, object]:
    """The columns of an order row that the exchange's view of it sets (an order id or an
    average price the view lacks leaves the row's own)."""
    values: dict[str, object] = {
        "status": db_status(state.status),
        "exchange_status": state.status,
        "filled_qty": state.filled_qty,
    }
    if state.exchange_order_id:
        values["exchange_order_id"] = state.exchange_order_id
    if state.avg_price:
        values["avg_price"] = state.avg_price
    return values


def apply_state(row: Order, state: OrderState) -> bool:
    """Copy the exchange's view of an order onto its row; True when anything changed."""
    changed = False
    for key, value in state_values(state).items():
        if getattr(row, key) != value:
            setattr(row, key, value)
            changed = True
    return changed


# The statements of a submit, built once with the client id as a parameter (``cid_key``): on the
# one-row look-ups and writes of an order, building a statement and its cache key cost about as
# much as running it.


@functools.cache
def _status_select() -> Any:
    import sqlalchemy as sa

    from jiritsu.db.models import Order

    return sa.select(Order.status).where(Order.client_order_id == sa.bindparam("cid_key"))


@functools.cache
def _columns_select(names: tuple[str, ...]) -> Any:
    """``SELECT <names> FROM orders WHERE client_order_id = :cid_key``."""
    import sqlalchemy as sa

    from jiritsu.db.models import Order

    columns = Order.__table__.c
    return sa.select(*(columns[k] for k in names)).where(
        columns.client_order_id == sa.bindparam("cid_key")
    )


@functools.cache
def _columns_update(names: tuple[str, ...]) -> Any:
    """``UPDATE orders SET <name> = :v_<name>, ... WHERE client_order_id = :cid_key`` (the
    ``updated_at`` stamp added as the column's own update default)."""
    import sqlalchemy as sa

    from jiritsu.db.models import Order

    columns = Order.__table__.c
    values = {k: sa.bindparam(f"v_{k}", type_=columns[k].type) for k in names}
    return sa.update(Order).where(columns.client_order_id == sa.bindparam("cid_key")).values(values)


@dataclass(frozen=True)
class _FillStatements:
    """The statements of recording fills, built once (building a statement and its cache key
    cost about as much as running it on these small lookups)."""

    known: Any  # the exec ids of :ids already stored
    order_row_ids: Any  # (client_order_id, id) of the order rows of :cids
    insert_executions: Any
    executions: Any  # the executions of the exchange orders :ids, oldest first
    trades: Any  # the trade rows of the exchange orders :ids
    orders: Any  # the order rows :ids, the columns a roll-up reads
    insert_trade: Any
    update_trade: Any  # SET the given columns of the trade row :row_id
    update_order: Any  # SET filled_qty, avg_price of the order row :row_id


@functools.cache
def _fill_statements() -> _FillStatements:
    import sqlalchemy as sa

    from jiritsu.db.models import Execution, Order, Trade

    def among(name: str) -> sa.BindParameter[Any]:
        return sa.bindparam(name, expanding=True)

    return _FillStatements(
        known=sa.select(Execution.exec_id).where(Execution.exec_id.in_(among("ids"))),
        order_row_ids=sa.select(Order.client_order_id, Order.id).where(
            Order.client_order_id.in_(among("cids"))
        ),
        insert_executions=sa.insert(Execution),
        executions=sa.select(Execution)
        .where(Execution.order_id.in_(among("ids")))
        .order_by(Execution.exec_time, Execution.id),
        trades=sa.select(Trade).where(Trade.order_id.in_(among("ids"))),
        orders=sa.select(
            Order.id, Order.reason, Order.reduce_only, Order.filled_qty, Order.avg_price
        ).where(Order.id.in_(among("ids"))),
        insert_trade=sa.insert(Trade),
        update_trade=sa.update(Trade).where(Trade.id == sa.bindparam("row_id")),
        update_order=sa.update(Order).where(Order.id == sa.bindparam("row_id")),
    )


@dataclass(frozen=True)
class RecordedFill:
    fill: Fill
    adopted: bool  # True when the fill was not known before (reconciliation found it)


class OrderJournal:
    """Place orders through an :class:`Exchange` with the write-ahead record kept here.

    Rows are stamped by ``clock`` (the runtime's: simulated in a replay, so a replay's order
    rows carry the step time like its fills and decisions)."""

    def __init__(
        self, engine: Engine, exchange: Exchange, *, environment: str, clock: Clock
    ) -> None:
        self.engine = engine
        self.exchange = exchange
        self.environment = environment
        self.clock = clock

    # --- placing ----------------------------------------------------------------------------

    def record(
        self,
        bot: str,
        category: Category,
        request: OrderRequest,
        *,
        decision_id: int | None = None,
        plan_id: str | None = None,
        leg_index: int | None = None,
        reason: str | None = None,
    ) -> tuple[bool, str]:
        """Write the order's row if it is not there yet; returns (created, current status).

        One transaction of two plain statements (a look-up by client id, the INSERT): the row
        an ORM unit of work would write, committed before anything is sent."""
        from jiritsu.db.models import Order
        from jiritsu.db.statements import insert_into

        cid = request.client_order_id
        with self.engine.begin() as conn:
            status = conn.execute(_status_select(), {"cid_key": cid}).scalar()
            if status is not None:
                return False, str(status)
            conn.execute(
                insert_into(Order),
                {
                    "client_order_id": cid,
                    "bot": bot,
                    "environment": self.environment,
                    "symbol": request.symbol,
                    "category": category,
                    "side": request.side,
                    "order_type": request.order_type,
                    "time_in_force": request.time_in_force,
                    "qty": request.qty,
                    "price": request.price,
                    "reduce_only": request.reduce_only,
                    "take_profit": request.take_profit,
                    "stop_loss": request.stop_loss,
                    "decision_id": decision_id,
                    "plan_id": plan_id,
                    "leg_index": leg_index,
                    "reason": redact(reason) if reason else None,
                    "status": "pending",
                    "created_at": self.clock.now(),
                },
            )
        return True, "pending"

    def _update(
        self, client_order_id: str, values: dict[str, object], *, status: str | None = None
    ) -> None:
        """Set ``values`` on the order's row, in one transaction, as a unit of work would: only
        the columns that differ are written, so an unchanged row keeps its ``updated_at``.
        ``status``: the row's status as this journal just wrote or read it; when ``values``
        move it to another one the row changes anyway and is written without being read."""
        key = {"cid_key": client_order_id}
        with self.engine.begin() as conn:
            if status is None or values.get("status", status) == status:
                row = conn.execute(_columns_select(tuple(values)), key).first()
                if row is not None:
                    pairs = zip(values.items(), row, strict=True)
                    values = {k: v for (k, v), old in pairs if old != v}
                    if not values:
                        return
            params = {f"v_{k}": v for k, v in values.items()}
            done = conn.execute(_columns_update(tuple(values)), {**key, **params}).rowcount
            if not done:  # pragma: no cover - the row was written before sending
                raise RuntimeError(f"order {client_order_id} vanished from the journal")

    def store_state(self, client_order_id: str, state: OrderState) -> None:
        """Store the exchange's view of an order on its row (:func:`apply_state`'s columns, only
        those that differ), in one transaction of two plain statements."""
        self._update(client_order_id, state_values(state))

    def submit(
        self,
        bot: str,
        category: Category,
        request: OrderRequest,
        *,
        decision_id: int | None = None,
        plan_id: str | None = None,
        leg_index: int | None = None,
        reason: str | None = None,
    ) -> OrderState:
        """Record, send and record the answer. Safe to call again with the same client id.

        A business refusal marks the row "rejected" and re-raises; any other failure (an
        unreachable exchange, an unclassified HTTP error, a refused key) marks it "unknown"
        with the reason -- the order may or may not have been placed -- and re-raises: the next
        call or reconciliation asks the exchange by client id and settles it. A row settled
        earlier is never sent again; its recorded state is returned when the exchange no
        longer knows it.
        """
        created, status = self.record(
            bot, category, request,
            decision_id=decision_id, plan_id=plan_id, leg_index=leg_index, reason=reason,
        )  # fmt: skip
        if status == "rejected":
            raise OrderRejected(f"order {request.client_order_id} was rejected earlier")
        if not created and status not in RESUMABLE:
            # Answered before: never send again; report what the exchange says now.
            known = self.exchange.get_order(bot, category, request.symbol, request.client_order_id)
            if known is None:  # settled here (e.g. it never reached the exchange): final
                return OrderState(
                    request.client_order_id, None, request.symbol, request.side,
                    request.order_type, request.qty, request.price, status,
                )  # fmt: skip
            self.store_state(request.client_order_id, known)
            return known
        cid = request.client_order_id
        self._update(cid, {"status": "sent", "sent_at": self.clock.now()}, status=status)
        try:
            state = self.exchange.place_order(bot, category, request)
        except OrderRejected as exc:
            self._update(cid, {"status": "rejected", "error": redact(str(exc))}, status="sent")
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._update(cid, {"status": "unknown", "error": redact(reason)}, status="sent")
            raise
        self._update(cid, {**state_values(state), "error": None}, status="sent")
        return state

    # --- fills --------------------------------------------------------------------------------

    def record_fills(self, bot: str, fills: Iterable[Fill]) -> list[RecordedFill]:
        """Store fills not seen before (by exec_id) and refresh their orders' trade rows.

        One transaction (a fill and its order's roll-up commit together) of plain prebuilt
        statements: the rows an ORM unit of work wrote, at a fraction of its cost on a path a
        bot takes at every step it sees a fill."""
        fills = list(fills)
        if not fills:
            return []
        st = _fill_statements()
        with self.engine.begin() as conn:
            known = set(conn.execute(st.known, {"ids": [f.exec_id for f in fills]}).scalars())
            new: list[Fill] = []
            for fill in fills:
                if fill.exec_id not in known:
                    known.add(fill.exec_id)
                    new.append(fill)
            if not new:
                return []
            cids = sorted({f.client_order_id for f in new if f.client_order_id})
            row_ids: dict[str | None, int] = {}
            if cids:
                row_ids.update((c, i) for c, i in conn.execute(st.order_row_ids, {"cids": cids}))
            conn.execute(
                st.insert_executions,
                [
                    {
                        "exec_id": f.exec_id,
                        "order_id": f.exchange_order_id,
                        "client_order_id": f.client_order_id or None,
                        "order_row_id": row_ids.get(f.client_order_id),
                        "bot": bot,
                        "environment": self.environment,
                        "symbol": f.symbol,
                        "side": f.side,
                        "price": f.price,
                        "qty": f.qty,
                        "fee": f.fee,
                        "fee_coin": f.fee_currency,
                        "fee_rate": f.fee_rate,
                        "is_maker": f.is_maker,
                        "exec_time": f.time,
                    }
                    for f in new
                ],
            )
            self._roll_up(conn, bot, sorted({f.exchange_order_id for f in new}))
        return [RecordedFill(f, adopted=True) for f in new]

    def _roll_up(self, conn: Connection, bot: str, exchange_order_ids: list[str]) -> None:
        """Keep one ``trades`` row per exchange order, aggregated over its executions, and
        raise its order row's filled quantity to theirs.

        Three reads for all the orders, then an INSERT or an UPDATE only where a row changes
        (an unchanged trade keeps its ``updated_at``, as under a unit of work)."""
        st = _fill_statements()
        ids = {"ids": exchange_order_ids}
        execs: dict[str, list[Any]] = {}
        for e in conn.execute(st.executions, ids):
            execs.setdefault(e.order_id, []).append(e)
        trades = {t.order_id: t for t in conn.execute(st.trades, ids)}
        row_ids = sorted({e[0].order_row_id for e in execs.values() if e[0].order_row_id})
        orders: dict[int, dict[str, Any]] = {}
        if row_ids:
            orders.update((o.id, o._asdict()) for o in conn.execute(st.orders, {"ids": row_ids}))
        for exchange_order_id in exchange_order_ids:
            rows = execs.get(exchange_order_id, [])
            qty = sum((e.qty for e in rows), Decimal(0))
            if qty <= 0:
                continue
            notional = sum((e.qty * e.price for e in rows), Decimal(0))
            first = rows[0]
            price = (notional / qty).quantize(Decimal("1e-10"))
            values: dict[str, object] = {
                "timestamp": first.exec_time,
                "sub_bot_name": bot,
                "symbol": first.symbol,
                "client_order_id": first.client_order_id,
                "order_row_id": first.order_row_id,
                "exec_id": first.exec_id if len(rows) == 1 else None,
                "side": first.side,
                "quantity": qty,
                "price": price,
                "fee": sum((e.fee for e in rows), Decimal(0)),
                "fee_coin": first.fee_coin,
                "is_maker": all(bool(e.is_maker) for e in rows),
                "environment": self.environment,
            }
            order = orders.get(first.order_row_id) if first.order_row_id else None
            if order is not None:
                values["entry_reason"] = order["reason"]
                values["position_effect"] = "close" if order["reduce_only"] else "open"
                if order["filled_qty"] < qty:
                    order.update(filled_qty=qty, avg_price=price)
                    conn.execute(
                        st.update_order,
                        {"row_id": order["id"], "filled_qty": qty, "avg_price": price},
                    )
            trade = trades.get(exchange_order_id)
            if trade is None:
                conn.execute(st.insert_trade, {"order_id": exchange_order_id, **values})
            elif any(getattr(trade, k) != v for k, v in values.items()):
                conn.execute(st.update_trade, {"row_id": trade.id, **values})
