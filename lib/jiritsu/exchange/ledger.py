"""Persistence of the paper exchange's books (tables ``paper_*``, migration 0002).

Everything the simulated exchange knows lives in the database, so a restarted process (or a
second one: the trade loop and a timer command) sees the same wallets, orders and positions.
Every change happens inside :func:`locked_session`, which serialises writers across processes:
SQLite takes its write lock at BEGIN (``BEGIN IMMEDIATE``), PostgreSQL a transaction-scoped
advisory lock. A reader that then writes can therefore never act on a balance another process is
about to spend (no double-spend), and transactions stay short (one API call each).

Money is Decimal quantized to 1e-8 (:func:`q8`); ids are deterministic UUIDv5 strings, so a
replay of the same orders over the same candles writes identical rows.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jiritsu.clock import from_ms
from jiritsu.db.models import (
    PAPER_OPEN_ORDER_STATUSES,
    PaperAccount,
    PaperFill,
    PaperOrder,
    PaperPosition,
    PaperTransfer,
)
from jiritsu.exchange.types import (
    ORDER_TYPES,
    POSITION_SIDES,
    SIDES,
    TRANSFER_STATUSES,
    Fill,
    OrderState,
    Position,
    TransferResult,
    one_of,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

ZERO = Decimal(0)
MONEY_QUANTUM = Decimal("1e-8")
# Namespace of every paper id (uuid5): fixed forever, or replays stop reproducing ids.
PAPER_NAMESPACE = uuid.UUID("6a1b7c52-3f0e-5d8a-9c41-2b7e0f9d3a16")
# pg_advisory_xact_lock key of the paper ledger ("JIRIPAPR" as a signed 64-bit int).
LOCK_KEY = int.from_bytes(b"JIRIPAPR", "big", signed=True)


def q8(value: Decimal | int | str) -> Decimal:
    """Quantize money to 1e-8, half-even (what every ledger amount is rounded to)."""
    return Decimal(value).quantize(MONEY_QUANTUM, rounding=ROUND_HALF_EVEN)


def order_id_for(account: str, client_order_id: str) -> str:
    """The exchange order id of a client order: the same id every time it is placed."""
    return str(uuid.uuid5(PAPER_NAMESPACE, f"order|{account}|{client_order_id}"))


def exit_order_id_for(account: str, category: str, symbol: str, bar_ts: int) -> str:
    """The order id of the market order a TP/SL trigger sends (at most one per market and bar)."""
    return str(uuid.uuid5(PAPER_NAMESPACE, f"exit|{account}|{category}|{symbol}|{bar_ts}"))


def exec_id_for(exchange_order_id: str, seq: int) -> str:
    """The id of an order's ``seq``-th fill (1-based)."""
    return str(uuid.uuid5(PAPER_NAMESPACE, f"exec|{exchange_order_id}|{seq}"))


# --- queries ------------------------------------------------------------------------------
# Each read below is one of a few fixed statements built once with named parameters: on these
# small tables building a SELECT (and its cache key) cost about as much as running it, and a
# replay runs them at nearly every step.


def _equal(entity: Any, names: tuple[str, ...]) -> list[Any]:
    """``entity.<name> = :<name>`` for each of ``names``."""
    return [getattr(entity, name) == sa.bindparam(name) for name in names]


def _given(**values: object) -> dict[str, object]:
    """The parameters that are not None (the filters a read was given)."""
    return {k: v for k, v in values.items() if v is not None}


@functools.cache
def _select(entity: Any, names: tuple[str, ...], order: tuple[str, ...] = ()) -> Any:
    """``SELECT entity WHERE <names equal their parameters> ORDER BY <order>``."""
    query = sa.select(entity).where(*_equal(entity, names))
    return query.order_by(*(getattr(entity, o) for o in order)) if order else query


@functools.cache
def _open_orders_select(names: tuple[str, ...], also: bool) -> Any:
    is_open: sa.ColumnElement[bool] = PaperOrder.status.in_(PAPER_OPEN_ORDER_STATUSES)
    if also:
        exchange_ids: sa.BindParameter[str] = sa.bindparam("also", expanding=True)
        is_open = sa.or_(is_open, PaperOrder.exchange_order_id.in_(exchange_ids))
    query = sa.select(PaperOrder).where(is_open, *_equal(PaperOrder, names))
    return query.order_by(PaperOrder.accepted_ms, PaperOrder.id)


@functools.cache
def _fills_select(names: tuple[str, ...], since: bool) -> Any:
    query = sa.select(PaperFill).where(*_equal(PaperFill, names))
    if since:
        query = query.where(PaperFill.exec_ms >= sa.bindparam("since_ms"))
    return query.order_by(PaperFill.exec_ms, PaperFill.id)


@functools.cache
def _books_selects() -> tuple[Any, Any, Any]:
    names: sa.BindParameter[str] = sa.bindparam("names", expanding=True)
    return (
        sa.select(PaperAccount).where(PaperAccount.account.in_(names)),
        sa.select(PaperPosition).where(PaperPosition.account.in_(names)).order_by(PaperPosition.id),
        sa.select(PaperOrder)
        .where(PaperOrder.status.in_(PAPER_OPEN_ORDER_STATUSES), PaperOrder.account.in_(names))
        .order_by(PaperOrder.accepted_ms, PaperOrder.id),
    )


@functools.cache
def cursor_update() -> Any:
    """``UPDATE`` of a market row's ``next_bar_ms`` (parameters ``row_id``, ``next_bar_ms``)."""
    return sa.update(PaperPosition).where(PaperPosition.id == sa.bindparam("row_id"))


# --- transactions -------------------------------------------------------------------------


@contextmanager
def locked_session(engine: Engine) -> Iterator[Session]:
    """One unit of work holding the paper ledger's write lock; commit on success."""
    session = Session(engine, expire_on_commit=False)
    try:
        conn = session.connection()
        dialect = conn.dialect.name
        if dialect == "sqlite":
            dbapi = conn.connection.dbapi_connection
            if dbapi is not None and not dbapi.in_transaction:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:  # already in a transaction: a write statement takes the lock
                conn.execute(sa.update(PaperAccount).where(sa.false()).values(coin="x"))
        elif dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A short read-only session (no lock): for lookups that never change the books."""
    session = Session(engine, expire_on_commit=False)
    try:
        yield session
    finally:
        session.rollback()
        session.close()


def worked_until_ms(engine: Engine) -> int | None:
    """The newest bar the ledger has worked (None: nothing worked yet).

    A process that only looks at the books or acts on what they show now (``status``,
    ``flatten``) runs the paper exchange on a clock at this time: on the wall clock it would
    first work every stored bar up to now -- firing stops, filling orders -- and act on a
    different position from the one the trade loop left.
    """
    with engine.connect() as conn:
        marks = [
            conn.execute(sa.select(sa.func.max(PaperPosition.next_bar_ms))).scalar(),
            conn.execute(sa.select(sa.func.max(PaperFill.exec_ms))).scalar(),
        ]
    known = [int(m) for m in marks if m is not None]
    return max(known) if known else None


# --- wallets ------------------------------------------------------------------------------


def account_names(session: Session) -> list[str]:
    """Every account the ledger has a wallet for, sorted."""
    rows = session.scalars(sa.select(PaperAccount.account).distinct())
    return sorted(rows)


def wallet_row(session: Session, account: str, wallet: str, coin: str) -> PaperAccount | None:
    query = _select(PaperAccount, ("account", "wallet", "coin"))
    params = {"account": account, "wallet": wallet, "coin": coin}
    return session.scalars(query, params).one_or_none()


def wallet_balance(session: Session, account: str, wallet: str, coin: str) -> Decimal:
    row = wallet_row(session, account, wallet, coin)
    return ZERO if row is None else row.balance


def credit(
    session: Session,
    account: str,
    wallet: str,
    coin: str,
    delta: Decimal,
    at: datetime,
    *,
    row: PaperAccount | None = None,
    flush: bool = True,
) -> PaperAccount:
    """Add ``delta`` (negative: debit) to a wallet, creating the wallet row if needed; ``row``:
    the wallet's row when the caller holds it already. ``flush=False``: the caller flushes
    (a catch-up writes the changes of all its fills in one flush)."""
    if row is None:
        row = wallet_row(session, account, wallet, coin)
    if row is None:
        row = PaperAccount(
            account=account,
            wallet=wallet,
            coin=coin,
            balance=ZERO,
            created_at=at,
            updated_at=at,
        )
        session.add(row)
    row.balance = q8(row.balance + delta)
    row.updated_at = at
    if flush:
        session.flush()
    return row


def seed(session: Session, balances: Mapping[tuple[str, str, str], Decimal], at: datetime) -> int:
    """Create the wallets ``{(account, wallet, coin): balance}`` that do not exist yet.

    Existing wallets are never touched, so seeding on every start is safe and a restart keeps
    the books; a bot added to the config later gets its starting balance then. Returns how many
    wallets were created.
    """
    created = 0
    for (account, wallet, coin), amount in balances.items():
        if wallet_row(session, account, wallet, coin) is None:
            session.add(
                PaperAccount(
                    account=account,
                    wallet=wallet,
                    coin=coin,
                    balance=q8(amount),
                    created_at=at,
                    updated_at=at,
                )
            )
            created += 1
    session.flush()
    return created


# --- orders -------------------------------------------------------------------------------


def order_by_client_id(session: Session, account: str, client_order_id: str) -> PaperOrder | None:
    query = _select(PaperOrder, ("account", "client_order_id"))
    params = {"account": account, "client_order_id": client_order_id}
    return session.scalars(query, params).one_or_none()


def order_by_exchange_id(session: Session, exchange_order_id: str) -> PaperOrder | None:
    return session.scalars(
        sa.select(PaperOrder).where(PaperOrder.exchange_order_id == exchange_order_id)
    ).one_or_none()


def open_orders(
    session: Session,
    account: str | None = None,
    category: str | None = None,
    symbol: str | None = None,
    *,
    also: Collection[str] = (),
) -> list[PaperOrder]:
    """Open orders, oldest first (acceptance time, then insertion); with ``also``, the orders
    of those exchange ids too, open or not (in the same query)."""
    params = _given(account=account, category=category, symbol=symbol)
    query = _open_orders_select(tuple(params), bool(also))
    if also:
        params["also"] = sorted(also)
    return list(session.scalars(query, params))


# --- positions ----------------------------------------------------------------------------


def market_row(session: Session, account: str, category: str, symbol: str) -> PaperPosition | None:
    query = _select(PaperPosition, ("account", "category", "symbol"))
    params = {"account": account, "category": category, "symbol": symbol}
    return session.scalars(query, params).one_or_none()


def ensure_market(
    session: Session, account: str, category: str, symbol: str, now_ms: int, at: datetime
) -> PaperPosition:
    """The market row of (account, category, symbol), created flat with its bar cursor at now."""
    row = market_row(session, account, category, symbol)
    if row is None:
        row = PaperPosition(
            account=account,
            category=category,
            symbol=symbol,
            side="",
            size=ZERO,
            avg_price=ZERO,
            leverage=1,
            realised_pnl=ZERO,
            next_bar_ms=now_ms,
            created_at=at,
            updated_at=at,
        )
        session.add(row)
        session.flush()
    return row


def market_rows(
    session: Session,
    account: str | None = None,
    category: str | None = None,
    symbol: str | None = None,
    *,
    open_only: bool = True,
) -> list[PaperPosition]:
    """Market rows (by default only those with an open position), in a stable order."""
    params = _given(account=account, category=category, symbol=symbol)
    rows = session.scalars(_select(PaperPosition, tuple(params), ("id",)), params).all()
    # Money is text on SQLite: filter on size in Python, not in SQL.
    return [r for r in rows if r.size > 0] if open_only else list(rows)


# --- fills and transfers ------------------------------------------------------------------


def fills(
    session: Session,
    account: str,
    category: str | None = None,
    symbol: str | None = None,
    since_ms: int | None = None,
) -> list[PaperFill]:
    """Fills of an account, oldest first."""
    params = _given(account=account, category=category, symbol=symbol)
    query = _fills_select(tuple(params), since_ms is not None)
    if since_ms is not None:
        params["since_ms"] = since_ms
    return list(session.scalars(query, params))


def transfer_row(session: Session, transfer_id: str) -> PaperTransfer | None:
    return session.scalars(
        sa.select(PaperTransfer).where(PaperTransfer.transfer_id == transfer_id)
    ).one_or_none()


# --- rows as exchange types ---------------------------------------------------------------


def margin_of(positions: Iterable[PaperPosition]) -> Decimal:
    """Margin held by the linear ones of open ``positions``: size x entry price / leverage."""
    total = ZERO
    for row in positions:
        if row.category == "linear":
            total += q8(row.size * row.avg_price / Decimal(row.leverage))
    return total


def used_margin(session: Session, account: str) -> Decimal:
    """Margin held by the account's linear positions."""
    return margin_of(market_rows(session, account, "linear"))


def reserved(session: Session, account: str) -> Decimal:
    """Quote funds the account's open orders hold back."""
    return sum((o.reserved for o in open_orders(session, account)), ZERO)


def available(session: Session, account: str, quote: str) -> Decimal:
    """What the account may still commit: wallet - used margin - reservations."""
    wallet = wallet_balance(session, account, "UNIFIED", quote)
    return wallet - used_margin(session, account) - reserved(session, account)


@dataclass
class Books:
    """One account's wallets, open positions (by id) and open orders, read together."""

    wallets: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # (wallet, coin)
    positions: list[PaperPosition] = field(default_factory=list)
    orders: list[PaperOrder] = field(default_factory=list)

    def wallet(self, wallet: str, coin: str) -> Decimal:
        return self.wallets.get((wallet, coin), ZERO)

    def available(self, quote: str) -> Decimal:
        """As :func:`available`: wallet - used margin - reservations."""
        held = sum((o.reserved for o in self.orders), ZERO)
        return self.wallet("UNIFIED", quote) - margin_of(self.positions) - held


def books(session: Session, accounts: Iterable[str]) -> dict[str, Books]:
    """The books of ``accounts`` in three queries whatever their number (a portfolio
    valuation reads every account at once)."""
    names = sorted(set(accounts))
    found = {name: Books() for name in names}
    wallets, positions, orders = _books_selects()
    params = {"names": names}
    for row in session.scalars(wallets, params):
        found[row.account].wallets[(row.wallet, row.coin)] = row.balance
    for pos in session.scalars(positions, params):
        if pos.size > 0:  # (money is text on SQLite: compared in Python, as market_rows does)
            found[pos.account].positions.append(pos)
    for order in session.scalars(orders, params):
        found[order.account].orders.append(order)
    return found


def close_order(row: PaperOrder, status: str, reason: str | None, now_ms: int) -> None:
    """Give an order its final status (and reason), releasing its reservation."""
    row.status = status
    row.reject_reason = reason
    row.reserved = ZERO
    row.updated_at = from_ms(now_ms)


def order_state(row: PaperOrder) -> OrderState:
    return OrderState(
        client_order_id=row.client_order_id or "",
        exchange_order_id=row.exchange_order_id,
        symbol=row.symbol,
        side=one_of(row.side, SIDES, "side"),
        order_type=one_of(row.order_type, ORDER_TYPES, "order type"),
        qty=row.qty,
        price=row.price,
        status=row.status,
        filled_qty=row.filled_qty,
        avg_price=row.avg_price,
        reduce_only=row.reduce_only,
        take_profit=row.take_profit,
        stop_loss=row.stop_loss,
        created_at=row.created_at,
        updated_at=row.updated_at,
        reject_reason=row.reject_reason,
    )


def fill_of(row: PaperFill) -> Fill:
    return Fill(
        exec_id=row.exec_id,
        exchange_order_id=row.exchange_order_id,
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=one_of(row.side, SIDES, "side"),
        price=row.price,
        qty=row.qty,
        fee=row.fee,
        time=row.exec_time,
        is_maker=row.is_maker,
        fee_rate=row.fee_rate,
        fee_currency=row.fee_coin,
    )


def position_of(row: PaperPosition, unrealised: Decimal) -> Position:
    return Position(
        symbol=row.symbol,
        side=one_of(row.side, POSITION_SIDES, "position side"),
        size=row.size,
        avg_price=row.avg_price,
        take_profit=row.take_profit,
        stop_loss=row.stop_loss,
        unrealised_pnl=unrealised,
        realised_pnl=row.realised_pnl,
        leverage=Decimal(row.leverage),
    )


def transfer_result(row: PaperTransfer) -> TransferResult:
    return TransferResult(
        transfer_id=row.transfer_id,
        status=one_of(row.status, TRANSFER_STATUSES, "transfer status"),
        detail=row.detail,
    )
