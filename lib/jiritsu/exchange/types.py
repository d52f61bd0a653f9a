"""The exchange's vocabulary: plain frozen dataclasses with Decimal money and aware UTC times.

Side and order type use Bybit's spelling ("Buy"/"Sell", "Market"/"Limit"); order status is our
lower-case lifecycle (see :data:`ORDER_STATUS_FROM_BYBIT`). Accounts are addressed by name: each
sub-bot's name, and :data:`MAIN` for the master/savings account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal, TypeVar, get_args

Category = Literal["linear", "spot"]
Side = Literal["Buy", "Sell"]
PositionSide = Literal["Buy", "Sell", ""]  # "": flat
OrderType = Literal["Market", "Limit"]
Wallet = Literal["UNIFIED", "FUND"]
TransferStatus = Literal["success", "pending", "failed", "unknown"]

CATEGORIES: tuple[Category, ...] = get_args(Category)
SIDES: tuple[Side, ...] = get_args(Side)
POSITION_SIDES: tuple[PositionSide, ...] = get_args(PositionSide)
ORDER_TYPES: tuple[OrderType, ...] = get_args(OrderType)
TRANSFER_STATUSES: tuple[TransferStatus, ...] = get_args(TransferStatus)

MAIN = "main"  # the master account; its FUND wallet holds the profit the bots never trade

OPEN_STATUSES = frozenset({"pending", "sent", "new", "partially_filled", "untriggered"})
FINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "deactivated"})

ORDER_STATUS_FROM_BYBIT = {
    "Created": "new",
    "New": "new",
    "PartiallyFilled": "partially_filled",
    "Untriggered": "untriggered",
    "Triggered": "new",
    "Filled": "filled",
    "Rejected": "rejected",
    "PartiallyFilledCanceled": "cancelled",
    "Cancelled": "cancelled",
    "Deactivated": "deactivated",
}


_Word = TypeVar("_Word", bound=str)


def one_of(value: str, allowed: tuple[_Word, ...], what: str) -> _Word:
    """``value`` (text read back from a table) as one of ``allowed``, a Literal's words: what
    goes back to the exchange or into these types is checked, not assumed."""
    for word in allowed:
        if value == word:
            return word
    raise ValueError(f"unknown {what} {value!r}")


@dataclass(frozen=True)
class Instrument:
    """Trading rules of one symbol (from ``/v5/market/instruments-info``)."""

    symbol: str
    category: Category
    base_coin: str
    quote_coin: str
    qty_step: Decimal
    min_qty: Decimal
    max_qty: Decimal
    tick_size: Decimal
    min_notional: Decimal = Decimal(0)

    def round_qty(self, qty: Decimal) -> Decimal:
        """Round a quantity DOWN to the step: never trade more than was asked."""
        steps = (Decimal(qty) / self.qty_step).to_integral_value(rounding=ROUND_DOWN)
        return (steps * self.qty_step).quantize(self.qty_step)

    def round_price(self, price: Decimal) -> Decimal:
        """Round a price to the nearest tick."""
        ticks = (Decimal(price) / self.tick_size).to_integral_value(rounding=ROUND_HALF_UP)
        return (ticks * self.tick_size).quantize(self.tick_size)

    def order_problem(self, qty: Decimal, price: Decimal | None) -> str | None:
        """Why an order of this (already rounded) size would be refused, or None if it is fine."""
        if qty <= 0:
            return f"quantity rounds to zero at step {self.qty_step}"
        if qty < self.min_qty:
            return f"quantity {qty} is below the minimum {self.min_qty} for {self.symbol}"
        if qty > self.max_qty:
            return f"quantity {qty} is above the maximum {self.max_qty} for {self.symbol}"
        if price is not None:
            if price <= 0:
                return f"price {price} must be positive"
            if self.min_notional and qty * price < self.min_notional:
                return (
                    f"order value {qty * price} is below the minimum {self.min_notional} "
                    f"{self.quote_coin} for {self.symbol}"
                )
        return None


@dataclass(frozen=True)
class Ticker:
    symbol: str
    last: Decimal
    bid: Decimal
    ask: Decimal
    mark: Decimal
    time: datetime


@dataclass(frozen=True)
class Balance:
    """One account's balance in the quote coin (USDT)."""

    account: str
    coin: str
    equity: Decimal
    wallet_balance: Decimal
    available: Decimal
    unrealised_pnl: Decimal = Decimal(0)


@dataclass(frozen=True)
class OrderRequest:
    """What the bots ask for; ``client_order_id`` is the idempotency key (Bybit orderLinkId)."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType = "Market"
    price: Decimal | None = None
    reduce_only: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    time_in_force: str | None = None


@dataclass(frozen=True)
class OrderState:
    client_order_id: str
    exchange_order_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: str
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    reduce_only: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    reject_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True)
class Fill:
    """One execution; ``exec_id`` is unique on the exchange and deduplicates adoption."""

    exec_id: str
    exchange_order_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    time: datetime
    is_maker: bool = False
    fee_rate: Decimal | None = None
    fee_currency: str | None = None  # coin the fee is in; spot buys pay in the BASE coin


@dataclass(frozen=True)
class Position:
    symbol: str
    side: PositionSide
    size: Decimal
    avg_price: Decimal
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    unrealised_pnl: Decimal = Decimal(0)
    realised_pnl: Decimal = Decimal(0)
    leverage: Decimal = Decimal(1)


@dataclass(frozen=True)
class AccountReads:
    """An account's fills, positions and open orders in one symbol, read at one moment: what a
    bot re-reads after a step (:meth:`~jiritsu.exchange.base.Exchange.account_reads`); with
    ``orders``, the states of the orders those fills belong to, by client id (open or not)."""

    executions: list[Fill]
    positions: list[Position]
    open_orders: list[OrderState]
    orders: dict[str, OrderState] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferRequest:
    """A move between two accounts; ``transfer_id`` (a UUID) is the idempotency key."""

    transfer_id: str
    coin: str
    amount: Decimal
    from_account: str
    to_account: str
    from_wallet: Wallet = "UNIFIED"
    to_wallet: Wallet = "UNIFIED"


@dataclass(frozen=True)
class TransferResult:
    transfer_id: str
    status: TransferStatus
    detail: str | None = None


@dataclass(frozen=True)
class SubAccount:
    uid: int
    username: str
    status: str
