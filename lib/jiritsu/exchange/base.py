"""The one interface everything that touches an exchange goes through.

Two implementations: :mod:`jiritsu.exchange.bybit` (mainnet, testnet, demo trading through
pybit) and :mod:`jiritsu.exchange.paper` (the offline default). The bots and the master layer
only ever see this class, so paper trading, live trading and replays run the same code.

Contracts every implementation keeps:
- ``place_order`` is idempotent by ``client_order_id``: placing an id that already exists
  returns that order's current state and never creates a second order.
- ``transfer`` is idempotent by ``transfer_id`` likewise.
- Quantities and prices are Decimal, already rounded with :meth:`Instrument.round_qty` /
  :meth:`Instrument.round_price`; an order the instrument would refuse raises
  :class:`~jiritsu.exchange.errors.OrderRejected` before anything is sent.
- Every network call has a timeout and bounded retries; failures surface as the typed errors of
  :mod:`jiritsu.exchange.errors`.

``tests/exchange/test_contract.py`` runs these contracts against both implementations. The ABC
holds what the engine and the master layer call; conveniences only tests and tools use (a
ticker, the sub-account list) live on the implementations. An exchange that fills on the
market data it is given as its clock moves is :class:`Simulated` (the paper exchange); callers
ask that instead of comparing names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from jiritsu.exchange.types import (
    AccountReads,
    Balance,
    Category,
    Fill,
    Instrument,
    OrderRequest,
    OrderState,
    Position,
    TransferRequest,
    TransferResult,
)

if TYPE_CHECKING:
    import polars as pl


class Exchange(ABC):
    """Accounts are addressed by name: a sub-bot's name, or ``MAIN`` for the master account."""

    name: str = "exchange"

    @abstractmethod
    def server_time(self) -> datetime: ...

    @abstractmethod
    def instrument(self, symbol: str, category: Category = "linear") -> Instrument:
        """Trading rules of a symbol (cached by implementations)."""

    @abstractmethod
    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        category: Category = "linear",
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
    ) -> pl.DataFrame:
        """One page of bars in the canonical candle frame (ts ascending, float OHLCV)."""

    @abstractmethod
    def balance(self, account: str, coin: str = "USDT") -> Balance: ...

    def balances(self, accounts: Sequence[str], coin: str = "USDT") -> dict[str, Balance]:
        """:meth:`balance` of each of ``accounts``, asked in their order (an implementation that
        can read them together, the paper exchange, does so in one transaction)."""
        return {account: self.balance(account, coin) for account in accounts}

    @abstractmethod
    def place_order(self, account: str, category: Category, request: OrderRequest) -> OrderState:
        """Send an order; idempotent by ``request.client_order_id``."""

    @abstractmethod
    def cancel_order(
        self,
        account: str,
        category: Category,
        symbol: str,
        *,
        client_order_id: str | None = None,
        exchange_order_id: str | None = None,
    ) -> OrderState | None:
        """Cancel an open order; None when it no longer exists or is already final."""

    @abstractmethod
    def get_order(
        self, account: str, category: Category, symbol: str, client_order_id: str
    ) -> OrderState | None:
        """An order by client id, open or recently closed; None when the exchange never had it."""

    @abstractmethod
    def open_orders(
        self, account: str, category: Category, symbol: str | None = None
    ) -> list[OrderState]: ...

    @abstractmethod
    def executions(
        self,
        account: str,
        category: Category,
        *,
        symbol: str | None = None,
        since: datetime | None = None,
    ) -> list[Fill]:
        """Fills since ``since`` (all pages), oldest first."""

    @abstractmethod
    def positions(
        self, account: str, category: Category, symbol: str | None = None
    ) -> list[Position]:
        """Open positions; spot holdings are reported as long positions of the base coin."""

    def account_reads(
        self, account: str, category: Category, symbol: str, *, since: datetime
    ) -> AccountReads | None:
        """:meth:`executions` since ``since``, :meth:`positions` and :meth:`open_orders` of one
        symbol read together, with the :meth:`get_order` answers of the orders those fills
        belong to; or None where that is no cheaper than asking each in turn when needed
        (Bybit: three requests); the paper exchange reads them in one transaction."""
        return None

    @abstractmethod
    def set_trading_stop(
        self,
        account: str,
        category: Category,
        symbol: str,
        *,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
    ) -> None:
        """Set (or with None, cancel) the position's exchange-side TP/SL."""

    @abstractmethod
    def transfer(self, request: TransferRequest) -> TransferResult:
        """Move funds between accounts; idempotent by ``request.transfer_id``."""

    @abstractmethod
    def get_transfer(self, transfer_id: str) -> TransferResult | None:
        """Look a transfer up (settles a crash between request and database update)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""


@runtime_checkable
class Simulated(Protocol):
    """An exchange that fills orders on the bars its clock has passed (the paper exchange)."""

    def step(self, now_ms: int | None = None) -> int:
        """Work every closed bar up to now; returns the number of fills."""
        ...

    def step_accounts(self, now_ms: int | None = None) -> dict[str, int]:
        """As :meth:`step`; the number of fills per account that had any."""
        ...
