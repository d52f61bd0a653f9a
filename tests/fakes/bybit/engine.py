"""In-memory model of a Bybit V5 Unified Trading Account (one-way mode): accounts and wallets,
instruments, orders, a matching engine driven by scripted 1-minute candles, linear positions
with TP/SL, executions and universal transfers.

No HTTP here. Every public method expects the caller to hold ``Exchange.lock``. Errors are
raised as :class:`ApiError` carrying Bybit's retCode and retMsg.

Matching model (documented so tests can reason about it):

- The market has a "current" 1-minute row: the last row with ``ts <= now``; last price and mark
  price are its close, bid/ask are ``last -/+ spread_ticks * tickSize``.
- Market orders and marketable limit orders fill in full at once, buys at the ask and sells at
  the bid, as taker. Liquidity is unlimited.
- A resting limit order fills in full, at its own price, as maker, when a LATER row trades
  through it (buy: row low <= price; sell: row high >= price). Rows are processed one by one as
  the clock passes their start.
- On each new row, position TP/SL are checked BEFORE resting orders; if a row touches both the
  stop loss and the take profit, the stop loss wins. The closing fill is at the trigger price, or
  at the row open if the row gapped through it. A position opened on a row is first checked on
  the next row.
- Off by default, :attr:`Exchange.listing_lag` delays a fill's appearance in the execution list
  (as Bybit's can lag right after a fill) while orders, positions and wallets show it at once.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

from .candles import DAY_MS, Candle, PricePath

D = Decimal
ZERO = Decimal(0)
SEVEN_DAYS_MS = 7 * DAY_MS
OPEN_STATUSES = frozenset({"New", "PartiallyFilled", "Untriggered"})
ACTIVE_STATUSES = frozenset({"New", "PartiallyFilled"})  # resting orders that can trade
_AVG_QUANT = Decimal("1e-10")
_CURSOR_RE = re.compile(r"^page_args=(\d+)&?$")


class ApiError(Exception):
    """A Bybit business error: HTTP 200 with a non-zero retCode."""

    def __init__(self, ret_code: int, ret_msg: str) -> None:
        super().__init__(f"{ret_code}: {ret_msg}")
        self.ret_code = ret_code
        self.ret_msg = ret_msg


_DEF_MIN_PRICE = D("0.01")
_DEF_MAX_PRICE = D("1999999.80")
_DEF_QTY_STEP = D("0.001")
_DEF_MIN_ORDER_QTY = D("0.001")
_DEF_MAX_ORDER_QTY = D("1190")
_DEF_MAX_MKT_ORDER_QTY = D("500")
_DEF_MIN_NOTIONAL_VALUE = D("5")
_DEF_MAX_LEVERAGE = D("100")
_DEF_LEVERAGE_STEP = D("0.01")
_DEF_BASE_PRECISION = D("0.000001")
_DEF_QUOTE_PRECISION = D("0.0000001")
_DEF_MIN_ORDER_AMT = D("5")
_DEF_MAX_ORDER_AMT = D("8000000")
_DEF_MAX_LIMIT_ORDER_QTY = D("83")
_DEF_MAX_MARKET_ORDER_QTY = D("41.5")


@dataclass
class Instrument:
    category: str  # "linear" | "spot"
    symbol: str
    base_coin: str
    quote_coin: str
    tick_size: Decimal
    min_price: Decimal = _DEF_MIN_PRICE
    max_price: Decimal = _DEF_MAX_PRICE
    # linear
    qty_step: Decimal = _DEF_QTY_STEP
    min_order_qty: Decimal = _DEF_MIN_ORDER_QTY
    max_order_qty: Decimal = _DEF_MAX_ORDER_QTY
    max_mkt_order_qty: Decimal = _DEF_MAX_MKT_ORDER_QTY
    min_notional_value: Decimal = _DEF_MIN_NOTIONAL_VALUE
    max_leverage: Decimal = _DEF_MAX_LEVERAGE
    leverage_step: Decimal = _DEF_LEVERAGE_STEP
    # spot
    base_precision: Decimal = _DEF_BASE_PRECISION
    quote_precision: Decimal = _DEF_QUOTE_PRECISION
    min_order_amt: Decimal = _DEF_MIN_ORDER_AMT
    max_order_amt: Decimal = _DEF_MAX_ORDER_AMT
    max_limit_order_qty: Decimal = _DEF_MAX_LIMIT_ORDER_QTY
    max_market_order_qty: Decimal = _DEF_MAX_MARKET_ORDER_QTY


@dataclass
class Order:
    account: str
    uid: int
    category: str
    symbol: str
    order_id: str
    order_link_id: str
    side: str
    order_type: str
    price: Decimal
    qty: Decimal
    time_in_force: str
    created_time: int
    updated_time: int
    seq: int
    status: str = "New"
    reduce_only: bool = False
    close_on_trigger: bool = False
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    trigger_price: Decimal | None = None
    stop_order_type: str = ""  # "", "TakeProfit", "StopLoss"
    create_type: str = "CreateByUser"
    cancel_type: str = "UNKNOWN"
    reject_reason: str = "EC_NoError"
    market_unit: str = ""
    last_price_on_created: Decimal | None = None
    cum_exec_qty: Decimal = ZERO
    cum_exec_value: Decimal = ZERO
    cum_exec_fee: Decimal = ZERO

    @property
    def leaves_qty(self) -> Decimal:
        if self.status not in OPEN_STATUSES:
            return ZERO
        if self.market_unit == "quoteCoin":
            return ZERO
        return max(self.qty - self.cum_exec_qty, ZERO)

    @property
    def avg_price(self) -> Decimal | None:
        if self.cum_exec_qty == 0:
            return None
        return (self.cum_exec_value / self.cum_exec_qty).quantize(_AVG_QUANT).normalize()


@dataclass
class Execution:
    account: str
    category: str
    symbol: str
    exec_id: str
    order_id: str
    order_link_id: str
    side: str
    order_type: str
    stop_order_type: str
    order_price: Decimal
    order_qty: Decimal
    leaves_qty: Decimal
    exec_price: Decimal
    exec_qty: Decimal
    exec_value: Decimal
    exec_fee: Decimal
    fee_rate: Decimal
    fee_currency: str
    is_maker: bool
    exec_time: int
    mark_price: Decimal
    closed_size: Decimal
    create_type: str
    seq: int
    exec_type: str = "Trade"
    # the account's execution-list requests before the fill, and its wall time (ms): what
    # ListingLag measures from
    queries_before: int = 0
    wall_ms: int = 0
    listed: bool = False  # once listed, always listed


@dataclass
class ListingLag:
    """How long a fill stays out of ``/v5/execution/list``: the account's next ``queries``
    execution-list requests miss it, and so does any request before ``ms`` of wall time have
    passed since the fill. Zero (the default) lists every fill at once; a changed lag applies
    to every fill not listed yet (lifting it lets the list catch up)."""

    queries: int = 0
    ms: int = 0


@dataclass
class Position:
    symbol: str
    side: str = ""  # "Buy" | "Sell" | ""
    size: Decimal = ZERO
    avg_price: Decimal = ZERO
    cum_realised_pnl: Decimal = ZERO
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    tp_order: Order | None = None
    sl_order: Order | None = None
    created_time: int = 0
    updated_time: int = 0
    seq: int = -1


@dataclass
class Account:
    name: str
    uid: int
    api_key: str
    api_secret: str
    master: bool
    unified: dict[str, Decimal] = field(default_factory=dict)
    fund: dict[str, Decimal] = field(default_factory=dict)
    leverage: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, Position] = field(default_factory=dict)
    username: str = ""
    key: ApiKeySettings = field(default_factory=lambda: ApiKeySettings())


MASTER_PERMISSIONS = {
    "ContractTrade": ["Order", "Position"],
    "Spot": ["SpotTrade"],
    "Wallet": ["AccountTransfer", "SubMemberTransfer"],
    "Options": [],
    "Derivatives": [],
    "Exchange": [],
    "Earn": [],
}
SUB_PERMISSIONS = {**MASTER_PERMISSIONS, "Wallet": ["AccountTransfer", "SubMemberTransferList"]}


@dataclass
class ApiKeySettings:
    """What Bybit stores about an API key (``GET /v5/user/query-api``).

    ``permissions`` None: the usual read-write set for a master or a sub-account key. ``ips``
    ``["*"]``: not bound to an IP (Bybit then lets the key expire, ``expires_at_ms``).
    """

    read_only: bool = False
    permissions: dict[str, list[str]] | None = None
    ips: list[str] = field(default_factory=lambda: ["*"])
    expires_at_ms: int | None = None
    created_at_ms: int = 1_700_000_000_000
    note: str = ""


@dataclass
class Transfer:
    transfer_id: str
    coin: str
    amount: Decimal
    from_member_id: int
    to_member_id: int
    from_account_type: str
    to_account_type: str
    timestamp: int
    status: str
    requested_by: str
    seq: int


def default_instruments() -> list[Instrument]:
    """A few liquid pairs with filters shaped like Bybit's (values are typical, not live)."""
    return [
        Instrument(
            "linear",
            "BTCUSDT",
            "BTC",
            "USDT",
            tick_size=D("0.10"),
            min_price=D("0.10"),
            qty_step=D("0.001"),
            min_order_qty=D("0.001"),
            max_order_qty=D("1190"),
            max_mkt_order_qty=D("500"),
            min_notional_value=D("5"),
            max_leverage=D("100"),
        ),
        Instrument(
            "linear",
            "ETHUSDT",
            "ETH",
            "USDT",
            tick_size=D("0.01"),
            qty_step=D("0.01"),
            min_order_qty=D("0.01"),
            max_order_qty=D("7240"),
            max_mkt_order_qty=D("724"),
            min_notional_value=D("5"),
            max_leverage=D("100"),
        ),
        Instrument(
            "linear",
            "SOLUSDT",
            "SOL",
            "USDT",
            tick_size=D("0.010"),
            min_price=D("0.010"),
            qty_step=D("0.1"),
            min_order_qty=D("0.1"),
            max_order_qty=D("79770"),
            max_mkt_order_qty=D("7977"),
            min_notional_value=D("5"),
            max_leverage=D("100"),
        ),
        Instrument(
            "spot",
            "BTCUSDT",
            "BTC",
            "USDT",
            tick_size=D("0.1"),
            base_precision=D("0.000001"),
            quote_precision=D("0.0000001"),
            min_order_qty=D("0.000011"),
            max_order_qty=D("83"),
            min_order_amt=D("5"),
            max_order_amt=D("8000000"),
            max_limit_order_qty=D("83"),
            max_market_order_qty=D("41.5"),
        ),
        Instrument(
            "spot",
            "ETHUSDT",
            "ETH",
            "USDT",
            tick_size=D("0.01"),
            base_precision=D("0.00001"),
            quote_precision=D("0.0000001"),
            min_order_qty=D("0.00062"),
            max_order_qty=D("1229.2336343"),
            min_order_amt=D("5"),
            max_order_amt=D("8000000"),
            max_limit_order_qty=D("1229.2336343"),
            max_market_order_qty=D("614.6168171"),
        ),
        Instrument(
            "spot",
            "SOLUSDT",
            "SOL",
            "USDT",
            tick_size=D("0.01"),
            base_precision=D("0.001"),
            quote_precision=D("0.0000001"),
            min_order_qty=D("0.011"),
            max_order_qty=D("31310.584"),
            min_order_amt=D("5"),
            max_order_amt=D("8000000"),
            max_limit_order_qty=D("31310.584"),
            max_market_order_qty=D("15655.292"),
        ),
    ]


def _on_step(value: Decimal, step: Decimal) -> bool:
    return value % step == 0


def encode_cursor(seq: int) -> str:
    """Cursors look like Bybit's: percent-encoded ``page_args=...&`` (they round-trip through
    the query string exactly as the real ones do)."""
    return f"page_args%3D{seq}%26"


def decode_cursor(cursor: str) -> int:
    m = _CURSOR_RE.match(cursor)
    if not m:
        raise ApiError(10001, "params error: cursor invalid")
    return int(m.group(1))


def paginate(items: list, limit: int, cursor: str | None) -> tuple[list, str]:
    """``items`` are sorted newest first and carry a unique, increasing ``seq``."""
    if cursor:
        after = decode_cursor(cursor)
        items = [i for i in items if i.seq < after]
    page = items[:limit]
    nxt = encode_cursor(page[-1].seq) if len(items) > limit else ""
    return page, nxt


def time_window(start: int | None, end: int | None, now: int) -> tuple[int, int]:
    """Bybit's 7-day rule shared by executions, order history and transfer records."""
    if start is None and end is None:
        return now - SEVEN_DAYS_MS, now
    if end is None:
        assert start is not None
        return start, start + SEVEN_DAYS_MS
    if start is None:
        return end - SEVEN_DAYS_MS, end
    if end < start:
        raise ApiError(10001, "params error: endTime is earlier than startTime")
    if end - start > SEVEN_DAYS_MS:
        raise ApiError(
            10001, "params error: the time range between startTime and endTime exceeds 7 days"
        )
    return start, end


class Exchange:
    """All mutable state of the fake. Guard every call with ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.instruments: dict[tuple[str, str], Instrument] = {
            (i.category, i.symbol): i for i in default_instruments()
        }
        self.paths: dict[str, PricePath] = {}
        self.orders: list[Order] = []
        self.executions: list[Execution] = []
        self.transfers: list[Transfer] = []
        self.spread_ticks = 1
        self.fee_rates: dict[str, tuple[Decimal, Decimal]] = {  # (taker, maker)
            "linear": (D("0.00055"), D("0.0002")),
            "spot": (D("0.001"), D("0.001")),
        }
        self.market_protection = D("0.03")  # linear market orders show price = ask * 1.03 etc.
        self._pinned: int | None = None
        self._processed: dict[str, int] = {}
        self._seq = itertools.count(1)
        self.listing_lag = ListingLag()
        self._execution_queries: dict[str, int] = {}  # per account

    # ------------------------------------------------------------------ clock and prices
    def now(self) -> int:
        """The market clock (ms): pinned by tests, else real time."""
        return self._pinned if self._pinned is not None else int(time.time() * 1000)

    @property
    def pinned(self) -> bool:
        return self._pinned is not None

    def set_clock(self, ms: int | None) -> None:
        if ms is not None and self._pinned is not None and ms < self._pinned:
            raise ValueError("the market clock cannot go backwards")
        self._pinned = None if ms is None else int(ms)
        self.sync()

    def set_price_path(self, path: PricePath) -> None:
        self.paths[path.symbol] = path
        self._processed[path.symbol] = path.index_at(self.now())

    def next_seq(self) -> int:
        return next(self._seq)

    def listed_executions(self, account: str) -> list[Execution]:
        """The account's fills an execution-list request sees now (counts the request)."""
        queries = self._execution_queries.get(account, 0) + 1
        self._execution_queries[account] = queries
        wall = int(time.time() * 1000)
        lag = self.listing_lag
        for e in self.executions:
            if e.account == account and not e.listed:
                e.listed = queries - e.queries_before > lag.queries and wall - e.wall_ms >= lag.ms
        return [e for e in self.executions if e.account == account and e.listed]

    def sync(self) -> None:
        """Let the market catch up with the clock: process every row that became current."""
        now = self.now()
        for symbol, path in self.paths.items():
            idx = path.index_at(now)
            last = self._processed.get(symbol, idx)
            for i in range(last + 1, idx + 1):
                self._on_bar(symbol, path.rows[i])
            self._processed[symbol] = max(last, idx)

    def last_price(self, symbol: str) -> Decimal:
        path = self.paths.get(symbol)
        row = path.current(self.now()) if path else None
        if row is None:
            raise ApiError(
                10016, f"fake: no price for {symbol} at {self.now()} (see set_price_path/clock)"
            )
        return row.close

    def has_price(self, symbol: str) -> bool:
        path = self.paths.get(symbol)
        return bool(path and path.current(self.now()))

    def bid_ask(self, inst: Instrument) -> tuple[Decimal, Decimal]:
        last = self.last_price(inst.symbol)
        spread = inst.tick_size * self.spread_ticks
        return max(last - spread, inst.tick_size), last + spread

    def instrument(self, category: str, symbol: str) -> Instrument:
        inst = self.instruments.get((category, symbol))
        if inst is None:
            raise ApiError(10001, f"params error: symbol invalid ({category} {symbol})")
        return inst

    # ------------------------------------------------------------------ accounts
    def add_account(self, account: Account) -> Account:
        for other in self.accounts.values():
            if other.name == account.name or other.uid == account.uid:
                raise ValueError(f"account {account.name}/{account.uid} already exists")
            if other.api_key == account.api_key:
                raise ValueError("api key already in use")
            if other.master and account.master:
                raise ValueError("there is already a master (main) account")
        self.accounts[account.name] = account
        return account

    def account(self, name: str) -> Account:
        try:
            return self.accounts[name]
        except KeyError:
            raise KeyError(f"no account named {name!r}") from None

    def account_by_key(self, key: str) -> Account | None:
        return next((a for a in self.accounts.values() if a.api_key == key), None)

    def account_by_uid(self, uid: int) -> Account | None:
        return next((a for a in self.accounts.values() if a.uid == uid), None)

    def master(self) -> Account | None:
        return next((a for a in self.accounts.values() if a.master), None)

    def position(self, acct: Account, symbol: str) -> Position:
        return acct.positions.setdefault(symbol, Position(symbol))

    def leverage(self, acct: Account, symbol: str) -> Decimal:
        return acct.leverage.get(symbol, D(1))

    # ------------------------------------------------------------------ valuation
    def coin_usd(self, coin: str) -> Decimal:
        if coin in ("USDT", "USDC"):
            return D(1)
        symbol = f"{coin}USDT"
        return self.last_price(symbol) if self.has_price(symbol) else ZERO

    def mark(self, symbol: str, fallback: Decimal) -> Decimal:
        return self.last_price(symbol) if self.has_price(symbol) else fallback

    def unrealised(self, pos: Position) -> Decimal:
        if pos.size == 0:
            return ZERO
        direction = 1 if pos.side == "Buy" else -1
        return (self.mark(pos.symbol, pos.avg_price) - pos.avg_price) * pos.size * direction

    def open_positions(self, acct: Account) -> list[Position]:
        return [p for p in acct.positions.values() if p.size > 0]

    def position_im(self, acct: Account) -> Decimal:
        return sum(
            (
                p.size * p.avg_price / self.leverage(acct, p.symbol)
                for p in self.open_positions(acct)
            ),
            ZERO,
        )

    def position_mm(self, acct: Account) -> Decimal:
        return sum(
            (
                p.size * self.mark(p.symbol, p.avg_price) * D("0.005")
                for p in self.open_positions(acct)
            ),
            ZERO,
        )

    def open_orders(self, acct: Account, category: str | None = None) -> list[Order]:
        return [
            o
            for o in self.orders
            if o.account == acct.name
            and o.status in ACTIVE_STATUSES
            and (category is None or o.category == category)
        ]

    def order_im(self, acct: Account) -> Decimal:
        return sum(
            (
                o.leaves_qty * o.price / self.leverage(acct, o.symbol)
                for o in self.open_orders(acct, "linear")
                if not o.reduce_only
            ),
            ZERO,
        )

    def spot_locked(self, acct: Account, coin: str) -> Decimal:
        total = ZERO
        for o in self.open_orders(acct, "spot"):
            inst = self.instruments[("spot", o.symbol)]
            if o.side == "Buy" and inst.quote_coin == coin:
                total += o.leaves_qty * o.price
            elif o.side == "Sell" and inst.base_coin == coin:
                total += o.leaves_qty
        return total

    def wallet_usd(self, acct: Account) -> Decimal:
        return sum((bal * self.coin_usd(c) for c, bal in acct.unified.items()), ZERO)

    def total_upl(self, acct: Account) -> Decimal:
        return sum((self.unrealised(p) for p in self.open_positions(acct)), ZERO)

    def available_usd(self, acct: Account) -> Decimal:
        locked = sum((self.spot_locked(acct, c) * self.coin_usd(c) for c in acct.unified), ZERO)
        return (
            self.wallet_usd(acct)
            + self.total_upl(acct)
            - self.position_im(acct)
            - self.order_im(acct)
            - locked
        )

    def spot_free(self, acct: Account, coin: str) -> Decimal:
        """What can leave the UNIFIED wallet for a spot buy/sell or a transfer."""
        free = acct.unified.get(coin, ZERO) - self.spot_locked(acct, coin)
        px = self.coin_usd(coin)
        if px > 0:
            free = min(free, self.available_usd(acct) / px)
        return max(free, ZERO)

    # ------------------------------------------------------------------ orders
    def find_order(
        self,
        acct: Account,
        category: str,
        order_id: str | None,
        order_link_id: str | None,
        symbol: str | None = None,
    ) -> Order | None:
        for o in reversed(self.orders):
            if o.account != acct.name or o.category != category:
                continue
            if symbol is not None and o.symbol != symbol:
                continue
            if order_id:
                if o.order_id == order_id:
                    return o
            elif order_link_id and o.order_link_id == order_link_id:
                return o
        return None

    def place_order(
        self,
        acct: Account,
        inst: Instrument,
        *,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None,
        time_in_force: str,
        order_link_id: str,
        reduce_only: bool,
        close_on_trigger: bool,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        market_unit: str | None,
    ) -> Order:
        if order_link_id and any(
            o.account == acct.name and o.order_link_id == order_link_id for o in self.orders
        ):
            raise ApiError(110072, "OrderLinkedID is duplicate")
        last = self.last_price(inst.symbol)
        bid, ask = self.bid_ask(inst)
        if order_type == "Market":
            time_in_force = "IOC"
        if inst.category == "linear":
            qty, shown_price = self._check_linear(
                acct, inst, side, order_type, qty, price, reduce_only, take_profit, stop_loss, last
            )
            market_unit = ""
        else:
            market_unit, shown_price = self._check_spot(
                acct, inst, side, order_type, qty, price, take_profit, stop_loss, market_unit
            )
        now = self.now()
        seq = self.next_seq()
        order = Order(
            account=acct.name,
            uid=acct.uid,
            category=inst.category,
            symbol=inst.symbol,
            order_id=(
                str(uuid.uuid4()) if inst.category == "linear" else str(1_900_000_000 * 10**9 + seq)
            ),
            order_link_id=order_link_id,
            side=side,
            order_type=order_type,
            price=shown_price,
            qty=qty,
            time_in_force=time_in_force,
            created_time=now,
            updated_time=now,
            seq=seq,
            reduce_only=reduce_only,
            close_on_trigger=close_on_trigger,
            take_profit=take_profit,
            stop_loss=stop_loss,
            market_unit=market_unit,
            last_price_on_created=last,
        )
        self.orders.append(order)
        self._match_on_entry(acct, inst, order, bid, ask)
        return order

    def _check_linear(
        self,
        acct: Account,
        inst: Instrument,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None,
        reduce_only: bool,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        last: Decimal,
    ) -> tuple[Decimal, Decimal]:
        bid, ask = self.bid_ask(inst)
        if order_type == "Limit":
            assert price is not None
            if not _on_step(price, inst.tick_size) or not inst.min_price <= price <= inst.max_price:
                raise ApiError(
                    10001, f"params error: price {price} invalid (tickSize {inst.tick_size})"
                )
        if not _on_step(qty, inst.qty_step):
            raise ApiError(10001, f"params error: qty {qty} invalid (qtyStep {inst.qty_step})")
        if qty < inst.min_order_qty:
            raise ApiError(10001, "The number of contracts exceeds minimum limit allowed")
        max_qty = inst.max_mkt_order_qty if order_type == "Market" else inst.max_order_qty
        if qty > max_qty:
            raise ApiError(10001, "The number of contracts exceeds maximum limit allowed")
        ref = price if price is not None else (ask if side == "Buy" else bid)
        pos = self.position(acct, inst.symbol)
        if reduce_only:
            if pos.size == 0:
                raise ApiError(110017, "current position is zero, cannot fix reduce-only order qty")
            if pos.side == side:
                raise ApiError(110017, "Reduce-only rule not satisfied")
            if take_profit is not None or stop_loss is not None:
                raise ApiError(10001, "params error: TP/SL cannot be set on a reduce-only order")
            qty = min(qty, pos.size)  # Bybit trims a reduce-only order to the position size
        else:
            if qty * ref < inst.min_notional_value:
                raise ApiError(
                    110094, f"Order does not meet minimum order value {inst.min_notional_value}USDT"
                )
        for label, value in (("TakeProfit", take_profit), ("StopLoss", stop_loss)):
            if value is None:
                continue
            if not _on_step(value, inst.tick_size):
                raise ApiError(10001, f"params error: {label} {value} invalid")
            base = ref if order_type == "Limit" else last
            higher = (label == "TakeProfit") == (side == "Buy")
            if (higher and value <= base) or (not higher and value >= base):
                word = "higher" if higher else "lower"
                raise ApiError(
                    10001,
                    f"{label}:{value} set for {side} position should be {word} than "
                    f"base_price:{base}",
                )
        if not reduce_only:
            opposite = pos.size if pos.size > 0 and pos.side != side else ZERO
            opening = max(qty - opposite, ZERO)
            taker = self.fee_rates["linear"][0]
            need = opening * ref * (1 / self.leverage(acct, inst.symbol) + taker)
            if need > self.available_usd(acct):
                raise ApiError(110007, "ab not enough for new order")
        if order_type == "Market":
            factor = 1 + self.market_protection if side == "Buy" else 1 - self.market_protection
            shown = ((ref * factor) / inst.tick_size).quantize(
                D(1), rounding=ROUND_DOWN
            ) * inst.tick_size
            return qty, shown
        assert price is not None
        return qty, price

    def _check_spot(
        self,
        acct: Account,
        inst: Instrument,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        market_unit: str | None,
    ) -> tuple[str, Decimal]:
        bid, ask = self.bid_ask(inst)
        if take_profit is not None or stop_loss is not None:
            raise ApiError(10001, "fake: spot TP/SL orders are not modelled")
        if order_type == "Limit":
            assert price is not None
            if not _on_step(price, inst.tick_size):
                raise ApiError(170134, "Order price has too many decimals.")
            market_unit = ""
        else:
            market_unit = market_unit or ("quoteCoin" if side == "Buy" else "baseCoin")
        ref = price if price is not None else (ask if side == "Buy" else bid)
        if market_unit == "quoteCoin":
            if not _on_step(qty, inst.quote_precision):
                raise ApiError(170148, "Market order amount decimal too long.")
            if qty < inst.min_order_amt:
                raise ApiError(170140, "Order value exceeded lower limit.")
            base_qty = (qty / ref).quantize(inst.base_precision, rounding=ROUND_DOWN)
            quote_need = qty
        else:
            if not _on_step(qty, inst.base_precision):
                raise ApiError(170137, "Order quantity has too many decimals.")
            if qty < inst.min_order_qty:
                raise ApiError(170136, "Order quantity exceeded lower limit.")
            cap = inst.max_limit_order_qty if order_type == "Limit" else inst.max_market_order_qty
            if qty > cap:
                raise ApiError(170135, "Order quantity exceeded upper limit.")
            if qty * ref < inst.min_order_amt:
                raise ApiError(170140, "Order value exceeded lower limit.")
            base_qty = qty
            quote_need = qty * ref
        if side == "Buy":
            if quote_need > self.spot_free(acct, inst.quote_coin):
                raise ApiError(170131, "Insufficient balance.")
        elif base_qty > self.spot_free(acct, inst.base_coin):
            raise ApiError(170131, "Insufficient balance.")
        shown = price if price is not None else ZERO
        return market_unit, shown

    def _match_on_entry(
        self, acct: Account, inst: Instrument, order: Order, bid: Decimal, ask: Decimal
    ) -> None:
        touch = ask if order.side == "Buy" else bid
        if order.order_type == "Market":
            if order.market_unit == "quoteCoin":
                qty = (order.qty / touch).quantize(inst.base_precision, rounding=ROUND_DOWN)
            else:
                qty = order.qty
            self._fill(acct, inst, order, qty, touch, is_maker=False, when=order.created_time)
            order.status = "Filled"
            return
        marketable = order.price >= ask if order.side == "Buy" else order.price <= bid
        if marketable:
            if order.time_in_force == "PostOnly":
                order.status = "Cancelled"
                order.reject_reason = "EC_PostOnlyWillTakeLiquidity"
                return
            self._fill(acct, inst, order, order.qty, touch, is_maker=False, when=order.created_time)
            return
        if order.time_in_force in ("IOC", "FOK"):
            order.status = "Cancelled"
            order.reject_reason = (
                "EC_NoImmediateQtyToFill" if order.time_in_force == "IOC" else "EC_FOKNoFill"
            )

    def cancel_order(
        self,
        acct: Account,
        category: str,
        symbol: str,
        order_id: str | None,
        order_link_id: str | None,
    ) -> Order:
        order = self.find_order(acct, category, order_id, order_link_id, symbol)
        if order is None or order.status not in OPEN_STATUSES:
            if category == "spot":
                raise ApiError(170213, "Order does not exist.")
            raise ApiError(110001, "order not exists or too late to cancel")
        order.updated_time = self.now()
        order.cancel_type = "CancelByUser"
        if order.stop_order_type:
            pos = self.position(acct, order.symbol)
            tp = None if order is pos.tp_order else pos.take_profit
            sl = None if order is pos.sl_order else pos.stop_loss
            self.set_tpsl(acct, pos, tp, sl)
            return order
        if order.cum_exec_qty > 0 and category == "spot":
            order.status = "PartiallyFilledCanceled"
        else:
            order.status = "Cancelled"
        return order

    # ------------------------------------------------------------------ fills
    def _fill(
        self,
        acct: Account,
        inst: Instrument,
        order: Order,
        qty: Decimal,
        price: Decimal,
        *,
        is_maker: bool,
        when: int,
    ) -> Execution:
        taker, maker = self.fee_rates[inst.category]
        rate = maker if is_maker else taker
        value = qty * price
        closed = ZERO
        if inst.category == "linear":
            closed, fee = self._apply_linear(acct, inst.symbol, order.side, qty, price, rate, when)
            fee_currency = "USDT"
        else:
            fee, fee_currency = self._apply_spot(acct, inst, order.side, qty, price, rate)
        order.cum_exec_qty += qty
        order.cum_exec_value += value
        order.cum_exec_fee += fee
        order.updated_time = when
        if order.market_unit == "quoteCoin" or order.cum_exec_qty >= order.qty:
            order.status = "Filled"
        else:
            order.status = "PartiallyFilled"
        execution = Execution(
            account=acct.name,
            category=inst.category,
            symbol=inst.symbol,
            exec_id=str(uuid.uuid4()),
            order_id=order.order_id,
            order_link_id=order.order_link_id,
            side=order.side,
            order_type=order.order_type,
            stop_order_type=order.stop_order_type,
            order_price=order.price,
            order_qty=order.qty,
            leaves_qty=order.leaves_qty,
            exec_price=price,
            exec_qty=qty,
            exec_value=value,
            exec_fee=fee,
            fee_rate=rate,
            fee_currency=fee_currency,
            is_maker=is_maker,
            exec_time=when,
            mark_price=self.mark(inst.symbol, price),
            closed_size=closed,
            create_type=order.create_type,
            seq=self.next_seq(),
            queries_before=self._execution_queries.get(acct.name, 0),
            wall_ms=int(time.time() * 1000),
        )
        self.executions.append(execution)
        if inst.category == "linear" and not order.reduce_only and not order.stop_order_type:
            pos = self.position(acct, inst.symbol)
            if pos.size > 0 and pos.side == order.side and (order.take_profit or order.stop_loss):
                self.set_tpsl(
                    acct,
                    pos,
                    order.take_profit if order.take_profit is not None else pos.take_profit,
                    order.stop_loss if order.stop_loss is not None else pos.stop_loss,
                )
        return execution

    def _apply_linear(
        self,
        acct: Account,
        symbol: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        rate: Decimal,
        when: int,
    ) -> tuple[Decimal, Decimal]:
        pos = self.position(acct, symbol)
        fee = qty * price * rate
        pnl = ZERO
        closed = ZERO
        if pos.size == 0 or pos.side == side:
            new_size = pos.size + qty
            pos.avg_price = (
                ((pos.size * pos.avg_price + qty * price) / new_size)
                .quantize(_AVG_QUANT)
                .normalize()
            )
            if pos.size == 0:
                pos.created_time = when
            pos.size = new_size
            pos.side = side
        else:
            closed = min(qty, pos.size)
            direction = 1 if pos.side == "Buy" else -1
            pnl = (price - pos.avg_price) * closed * direction
            pos.size -= closed
            rest = qty - closed
            if pos.size == 0:
                self.set_tpsl(acct, pos, None, None, reason="CancelByTpSlTsClear")
                pos.side = ""
                pos.avg_price = ZERO
                if rest > 0:
                    pos.side = side
                    pos.size = rest
                    pos.avg_price = price
                    pos.created_time = when
        acct.unified["USDT"] = acct.unified.get("USDT", ZERO) + pnl - fee
        pos.cum_realised_pnl += pnl - fee
        pos.updated_time = when
        pos.seq = self.next_seq()
        return closed, fee

    def _apply_spot(
        self,
        acct: Account,
        inst: Instrument,
        side: str,
        qty: Decimal,
        price: Decimal,
        rate: Decimal,
    ) -> tuple[Decimal, str]:
        base, quote = inst.base_coin, inst.quote_coin
        value = qty * price
        bal = acct.unified
        if side == "Buy":  # fee in the coin received
            fee = qty * rate
            bal[quote] = bal.get(quote, ZERO) - value
            bal[base] = bal.get(base, ZERO) + qty - fee
            return fee, base
        fee = value * rate
        bal[base] = bal.get(base, ZERO) - qty
        bal[quote] = bal.get(quote, ZERO) + value - fee
        return fee, quote

    # ------------------------------------------------------------------ position TP/SL
    def set_tpsl(
        self,
        acct: Account,
        pos: Position,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
        *,
        reason: str = "CancelByUser",
    ) -> None:
        """Set the position's Full-mode TP/SL; each is mirrored by an Untriggered conditional
        order (qty "0": it closes the whole position), as Bybit shows them in open orders."""
        now = self.now()
        for attr, order_attr, kind, value in (
            ("take_profit", "tp_order", "TakeProfit", take_profit),
            ("stop_loss", "sl_order", "StopLoss", stop_loss),
        ):
            current: Order | None = getattr(pos, order_attr)
            setattr(pos, attr, value)
            if value is None:
                if current is not None and current.status == "Untriggered":
                    current.status = "Deactivated"
                    current.cancel_type = reason
                    current.updated_time = now
                setattr(pos, order_attr, None)
                continue
            if current is not None and current.status == "Untriggered":
                current.trigger_price = value
                current.updated_time = now
                continue
            seq = self.next_seq()
            order = Order(
                account=acct.name,
                uid=acct.uid,
                category="linear",
                symbol=pos.symbol,
                order_id=str(uuid.uuid4()),
                order_link_id="",
                side="Sell" if pos.side == "Buy" else "Buy",
                order_type="Market",
                price=ZERO,
                qty=ZERO,
                time_in_force="IOC",
                created_time=now,
                updated_time=now,
                seq=seq,
                status="Untriggered",
                reduce_only=True,
                close_on_trigger=True,
                trigger_price=value,
                stop_order_type=kind,
                create_type=f"CreateBy{kind}",
                last_price_on_created=self.mark(pos.symbol, pos.avg_price),
            )
            self.orders.append(order)
            setattr(pos, order_attr, order)

    def _check_tpsl(self, acct: Account, pos: Position, bar: Candle) -> None:
        long = pos.side == "Buy"
        hit: tuple[Order, Decimal] | None = None
        if pos.stop_loss is not None and pos.sl_order is not None:
            sl = pos.stop_loss
            if (long and bar.low <= sl) or (not long and bar.high >= sl):
                hit = (pos.sl_order, min(sl, bar.open) if long else max(sl, bar.open))
        if hit is None and pos.take_profit is not None and pos.tp_order is not None:
            tp = pos.take_profit
            if (long and bar.high >= tp) or (not long and bar.low <= tp):
                hit = (pos.tp_order, max(tp, bar.open) if long else min(tp, bar.open))
        if hit is None:
            return
        order, price = hit
        inst = self.instruments[("linear", pos.symbol)]
        order.status = "Triggered"
        order.qty = pos.size
        order.updated_time = bar.ts
        self._fill(acct, inst, order, pos.size, price, is_maker=False, when=bar.ts)
        order.status = "Filled"

    # ------------------------------------------------------------------ market events
    def _on_bar(self, symbol: str, bar: Candle) -> None:
        for acct in self.accounts.values():
            pos = acct.positions.get(symbol)
            if pos is not None and pos.size > 0 and pos.created_time < bar.ts:
                self._check_tpsl(acct, pos, bar)
        resting = [
            o
            for o in self.orders
            if o.symbol == symbol
            and o.status in ACTIVE_STATUSES
            and o.order_type == "Limit"
            and o.created_time < bar.ts
        ]
        for order in resting:
            crossed = bar.low <= order.price if order.side == "Buy" else bar.high >= order.price
            if not crossed:
                continue
            acct = self.accounts[order.account]
            inst = self.instruments[(order.category, symbol)]
            qty = order.leaves_qty
            if order.category == "linear" and order.reduce_only:
                pos = self.position(acct, symbol)
                if pos.size == 0 or pos.side == order.side:
                    order.status = "Cancelled"
                    order.cancel_type = "CancelByReduceOnly"
                    order.updated_time = bar.ts
                    continue
                qty = min(qty, pos.size)
                order.qty = order.cum_exec_qty + qty
            self._fill(acct, inst, order, qty, order.price, is_maker=True, when=bar.ts)

    # ------------------------------------------------------------------ account settings
    def set_leverage(self, acct: Account, inst: Instrument, buy: Decimal, sell: Decimal) -> None:
        if buy != sell:
            raise ApiError(
                10001, "params error: buyLeverage must equal sellLeverage in one-way mode"
            )
        if not D(1) <= buy <= inst.max_leverage or not _on_step(buy, inst.leverage_step):
            raise ApiError(10001, f"params error: leverage {buy} invalid (1..{inst.max_leverage})")
        if buy == self.leverage(acct, inst.symbol):
            raise ApiError(110043, "leverage not modified")
        acct.leverage[inst.symbol] = buy

    def trading_stop(
        self,
        acct: Account,
        inst: Instrument,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
    ) -> None:
        pos = self.position(acct, inst.symbol)
        if pos.size == 0:
            raise ApiError(10001, "can not set tp/sl/ts for zero position")
        last = self.last_price(inst.symbol)
        long = pos.side == "Buy"
        new_tp = pos.take_profit if take_profit is None else (take_profit or None)
        new_sl = pos.stop_loss if stop_loss is None else (stop_loss or None)
        for label, value, higher in (
            ("TakeProfit", take_profit, long),
            ("StopLoss", stop_loss, not long),
        ):
            if not value:
                continue
            if not _on_step(value, inst.tick_size):
                raise ApiError(10001, f"params error: {label} {value} invalid")
            if (higher and value <= last) or (not higher and value >= last):
                word = "higher" if higher else "lower"
                raise ApiError(
                    10001,
                    f"{label}:{value} set for {pos.side} position should be {word} than "
                    f"base_price:{last}",
                )
        if new_tp == pos.take_profit and new_sl == pos.stop_loss:
            raise ApiError(34040, "not modified")
        self.set_tpsl(acct, pos, new_tp, new_sl)

    # ------------------------------------------------------------------ transfers
    def transfer(
        self,
        acct: Account,
        *,
        transfer_id: str,
        coin: str,
        amount: Decimal,
        from_member_id: int,
        to_member_id: int,
        from_account_type: str,
        to_account_type: str,
    ) -> Transfer:
        src = self.account_by_uid(from_member_id)
        dst = self.account_by_uid(to_member_id)
        if src is None or dst is None:
            raise ApiError(10001, "params error: member id does not exist")
        if from_member_id == to_member_id:
            raise ApiError(10001, "params error: cannot transfer between the same UID")
        master = self.master()
        if not acct.master and (
            from_member_id != acct.uid or master is None or to_member_id != master.uid
        ):
            raise ApiError(10005, "Permission denied, please check your API key permissions.")
        if any(t.transfer_id == transfer_id for t in self.transfers):
            raise ApiError(131214, "TransferId exist")
        if from_account_type == "FUND":
            if amount > src.fund.get(coin, ZERO):
                raise ApiError(131212, "Insufficient balance")
            src.fund[coin] = src.fund.get(coin, ZERO) - amount
        else:
            if amount > src.unified.get(coin, ZERO):
                raise ApiError(131212, "Insufficient balance")
            if amount > self.spot_free(src, coin):
                raise ApiError(131228, "your balance is not enough")
            src.unified[coin] = src.unified.get(coin, ZERO) - amount
        target = dst.fund if to_account_type == "FUND" else dst.unified
        target[coin] = target.get(coin, ZERO) + amount
        record = Transfer(
            transfer_id=transfer_id,
            coin=coin,
            amount=amount,
            from_member_id=from_member_id,
            to_member_id=to_member_id,
            from_account_type=from_account_type,
            to_account_type=to_account_type,
            timestamp=self.now(),
            status="SUCCESS",
            requested_by=acct.name,
            seq=self.next_seq(),
        )
        self.transfers.append(record)
        return record
