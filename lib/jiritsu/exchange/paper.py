"""The paper exchange: Bybit's interface over a ledger in the database and replayed prices.

Everything configurable comes in one :class:`~jiritsu.exchange.paper_config.PaperConfig`, built
by the runtime. Accounts are the ones it names (the sub-bots) and
:data:`~jiritsu.exchange.types.MAIN`; their wallets are seeded once (each account's UNIFIED
wallet gets its starting balance, MAIN's FUND wallet ``main_balance`` and its UNIFIED wallet 0).
Prices come from a :class:`~jiritsu.market.source.MarketSource`; time from a
:class:`~jiritsu.clock.Clock`.

How orders fill (the bar protocol of :mod:`jiritsu.sim.fills`, on the source's closed bars):

- ``place_order`` never fills anything itself: it validates, reserves funds and returns status
  ``"new"``. Fills happen when the exchange catches up with the clock, which every public method
  does first (or call :meth:`PaperExchange.step` / :meth:`PaperExchange.advance_to`). A fill is
  therefore visible once the bar it happened in has closed.
- An order accepted at time t can fill on bars whose open is at or after t. A market order fills
  at the open of the first such bar plus slippage (taker fee); a limit order when a bar trades
  through its price (maker fee); position TP/SL inside the bar (taker fee, stop first). Exec
  time is the open of the bar the fill happened in. A missing bar fills nothing; orders wait for
  the next bar that exists.
- Slippage is ``slippage_bps`` plus ``slippage_volatility_factor`` x ATR/price, the ATR taken
  over the last :data:`~jiritsu.sim.fills.VOL_WINDOW` closed bars of the account's volatility
  interval before the fill bar (1-minute bars for accounts without one). The matching and the
  booking of fills live in :mod:`jiritsu.exchange.paper_fills`.

Accounting (all Decimal, quantized to 1e-8):

- Linear: one-way positions, long or short; ``leverage`` (default 1); opening needs
  ``opening notional / leverage + fee <= available`` or :class:`InsufficientBalance`; realised
  PnL on reduce/close, fees (on the whole fill) from the wallet. Used margin is size x entry
  price / leverage. No liquidation and no funding are simulated.
- Spot: long only. A buy moves ``qty * price`` of the quote coin into a base-coin holding and,
  as on Bybit, takes the fee from the coins bought (``qty * (1 - fee rate)`` arrive; the Fill
  says ``fee_currency`` = base coin); a sell pays its fee in the quote coin. Selling more than is
  held (minus open sell orders) is :class:`InsufficientBalance`. ``reduce_only`` is ignored on
  spot, as BybitExchange does not send it there. Holdings are reported as long positions (with
  the average buy price); TP/SL given on a spot order guard the holding like a linear position's,
  but ``set_trading_stop`` is linear-only (as on Bybit).
- Requests are rounded like BybitExchange rounds them (quantity down to the step, prices to the
  tick); what the instrument still refuses is :class:`OrderRejected`, checked against the limit
  price or the last price.
- ``balance(MAIN)`` is MAIN's FUND wallet (the saved profit), as BybitExchange reports it.
  ``balance(bot, quote)``: wallet = the UNIFIED quote wallet; unrealised = linear PnL plus
  spot holdings' PnL at the last price; equity = wallet + linear unrealised + spot holdings'
  market value; available = wallet - used margin - funds reserved by open orders.
- Open orders reserve what they would need (at their limit price, or the last price for market
  orders); a fill re-checks with the real price and rejects the order if funds ran out.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, TypeVar

from jiritsu.clock import from_ms
from jiritsu.db.engine import retry_db
from jiritsu.db.models import PAPER_OPEN_ORDER_STATUSES as OPEN_STATUSES
from jiritsu.errors import UsageError
from jiritsu.exchange import ledger
from jiritsu.exchange.base import Exchange
from jiritsu.exchange.errors import (
    ExchangeUnavailable,
    InsufficientBalance,
    NotFound,
    OrderRejected,
)
from jiritsu.exchange.ids import is_valid_client_order_id
from jiritsu.exchange.ledger import ZERO, q8
from jiritsu.exchange.paper_fills import Matcher, money, side_sign
from jiritsu.exchange.types import (
    FINAL_STATUSES,
    MAIN,
    AccountReads,
    Balance,
    Category,
    Fill,
    Instrument,
    OrderRequest,
    OrderState,
    Position,
    SubAccount,
    Ticker,
    TransferRequest,
    TransferResult,
)
from jiritsu.market.symbols import normalize_symbol, split_symbol

if TYPE_CHECKING:
    import polars as pl
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from jiritsu.clock import Clock
    from jiritsu.db.models import PaperOrder, PaperPosition
    from jiritsu.exchange.paper_config import PaperConfig
    from jiritsu.market.source import MarketSource

T = TypeVar("T")

TIME_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")


def _rounded(inst: Instrument, price: Decimal | None) -> Decimal | None:
    return None if price is None else inst.round_price(Decimal(price))


def _inst(
    category: Category,
    symbol: str,
    qty_step: str,
    min_qty: str,
    max_qty: str,
    tick: str,
    min_notional: str,
) -> Instrument:
    base, quote = split_symbol(symbol)
    return Instrument(
        symbol=symbol,
        category=category,
        base_coin=base,
        quote_coin=quote,
        qty_step=Decimal(qty_step),
        min_qty=Decimal(min_qty),
        max_qty=Decimal(max_qty),
        tick_size=Decimal(tick),
        min_notional=Decimal(min_notional),
    )


# Synthetic trading rules, close to Bybit's for the pairs the bots trade; anything else gets
# the category default. Pass ``instruments=`` to PaperExchange to override.
INSTRUMENT_RULES: dict[tuple[str, str], tuple[str, str, str, str, str]] = {
    # (category, symbol): (qty_step, min_qty, max_qty, tick_size, min_notional)
    ("linear", "BTCUSDT"): ("0.001", "0.001", "1190", "0.1", "5"),
    ("linear", "ETHUSDT"): ("0.01", "0.01", "7240", "0.01", "5"),
    ("linear", "SOLUSDT"): ("0.1", "0.1", "79770", "0.01", "5"),
    ("spot", "BTCUSDT"): ("0.000001", "0.000001", "71.73956243", "0.01", "5"),
    ("spot", "ETHUSDT"): ("0.00001", "0.00001", "1229.2336343", "0.01", "5"),
}
DEFAULT_RULES: dict[str, tuple[str, str, str, str, str]] = {
    "linear": ("0.001", "0.001", "1000000", "0.01", "5"),
    "spot": ("0.000001", "0.000001", "1000000", "0.01", "5"),
}


class PaperExchange(Exchange):
    """The offline exchange: see the module docstring for the fill and accounting rules."""

    name = "paper"

    def __init__(
        self,
        engine: Engine,
        config: PaperConfig,
        source: MarketSource,
        clock: Clock,
        *,
        instruments: Mapping[tuple[str, str], Instrument] | None = None,
        own_ledger: bool = False,
    ) -> None:
        self.engine = engine
        self.config = config
        self.source = source
        self.clock = clock
        self.quote = config.quote_coin
        self.maker_fee = Decimal(config.maker_fee)
        self.taker_fee = Decimal(config.taker_fee)
        self.leverage = int(config.leverage)
        self._instruments: dict[tuple[str, str], Instrument] = dict(instruments or {})
        self._matcher = Matcher(config, source, self.instrument)
        self._seeded = False
        # A replay's or simulation's ledger is its own (no other process writes it, its bars
        # are stored): after a committed catch-up at clock time t, another at t works nothing
        # (every bar closed by t is worked; what is placed or guarded at t waits for bars
        # opening at t or later), so it is skipped.
        self._own_ledger = own_ledger
        self._caught_up: int | None = None
        # ... and after a committed catch-up that left no open order and no position with a
        # TP/SL, every catch-up finds nothing to work (it reads the books and returns) until
        # an order is placed or a TP/SL set: skipped too. Known for an own ledger only.
        self._idle = False

    # --- transactions ---------------------------------------------------------------------

    def _run(self, fn: Callable[[Session, int], T], *, sync: bool = True) -> T:
        """Run ``fn(session, now_ms)`` in one locked transaction, after seeding and catching up
        with the clock; retried as a whole on database lock/connection errors."""

        # A live price source fetches over the network (and stores bars): do it before taking
        # the ledger's write lock, never while holding it.
        prepare = getattr(self.source, "prepare", None)
        if prepare is not None:
            prepare(sorted(self.config.symbols), self.clock.now_ms())

        synced: list[int] = []

        def attempt() -> T:
            synced.clear()
            with ledger.locked_session(self.engine) as session:
                now = self.clock.now_ms()
                if not self._seeded:
                    self._seed(session, now)
                if sync and not (self._own_ledger and (self._idle or self._caught_up == now)):
                    self._matcher.catch_up(session, now)
                    synced.append(now)
                return fn(session, now)

        result = retry_db(attempt, what="paper ledger")
        self._seeded = True
        if synced:  # committed: the fills it booked stand
            self._caught_up = synced[0]
            self._idle = self._own_ledger and not self._matcher.active
        return result

    def _activating(self, fn: Callable[[], T]) -> T:
        """Run ``fn``, a call that may give a catch-up work (an order, a TP/SL)."""
        try:
            return fn()
        finally:
            self._idle = False

    def _seed_balances(self) -> dict[tuple[str, str, str], Decimal]:
        wanted: dict[tuple[str, str, str], Decimal] = {}
        for account, amount in self.config.starting_balances.items():
            wanted[(account, "UNIFIED", self.quote)] = Decimal(amount)
        wanted[(MAIN, "FUND", self.quote)] = Decimal(self.config.main_balance)
        wanted[(MAIN, "UNIFIED", self.quote)] = ZERO
        return wanted

    def _seed(self, session: Session, now_ms: int) -> int:
        return ledger.seed(session, self._seed_balances(), from_ms(now_ms))

    def seed(self) -> int:
        """Create the configured wallets that do not exist yet; return how many.

        Idempotent: existing wallets keep their balances (a restart never resets the books).
        Every other method seeds on first use, so calling this is optional.
        """

        def attempt() -> int:
            with ledger.locked_session(self.engine) as session:
                return self._seed(session, self.clock.now_ms())

        created = retry_db(attempt, what="paper ledger seeding")
        self._seeded = True
        return created

    def step(self, now_ms: int | None = None) -> int:
        """Work every closed bar up to ``now_ms`` (default: the clock's now); return the number
        of fills. ``now_ms`` later than the clock would look into the future: ValueError."""
        return sum(self.step_accounts(now_ms).values())

    def step_accounts(self, now_ms: int | None = None) -> dict[str, int]:
        """As :meth:`step`; the number of fills per account that had any."""
        clock_now = self.clock.now_ms()
        if now_ms is not None and now_ms > clock_now:
            raise ValueError(f"step to {now_ms} is after the clock's now {clock_now}")
        target = clock_now if now_ms is None else now_ms
        if self._own_ledger and self._idle:
            return {}

        def fn(session: Session, _now: int) -> dict[str, int]:
            return self._matcher.catch_up(session, target)

        fills = self._run(fn, sync=False)
        if target == clock_now:
            self._caught_up = target
        self._idle = self._own_ledger and not self._matcher.active
        return fills

    def advance_to(self, when: datetime | int) -> int:
        """Move a SimClock to ``when`` and :meth:`step`; returns the number of fills."""
        mover = getattr(self.clock, "advance_to", None)
        if mover is None:
            raise TypeError(f"{type(self.clock).__name__} cannot be moved; use a SimClock")
        mover(when)
        return self.step()

    # --- market data ----------------------------------------------------------------------

    def server_time(self) -> datetime:
        return self.clock.now()

    def instrument(self, symbol: str, category: Category = "linear") -> Instrument:
        symbol = normalize_symbol(symbol)
        key = (category, symbol)
        inst = self._instruments.get(key)
        if inst is None:
            if category not in DEFAULT_RULES:
                raise NotFound(f"unknown category {category!r}")
            rules = INSTRUMENT_RULES.get(key, DEFAULT_RULES[category])
            inst = _inst(category, symbol, *rules)
            self._instruments[key] = inst
        return inst

    def _last_price(self, symbol: str, now_ms: int) -> Decimal:
        price = self.source.price(symbol, now_ms)
        if price is None:
            raise ExchangeUnavailable(f"no price for {symbol} at {from_ms(now_ms).isoformat()}")
        return money(price)

    def ticker(self, symbol: str, category: Category = "linear") -> Ticker:
        symbol = normalize_symbol(symbol)
        now = self.clock.now_ms()
        last = self._last_price(symbol, now)
        return Ticker(symbol=symbol, last=last, bid=last, ask=last, mark=last, time=from_ms(now))

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
        return self.source.klines(
            normalize_symbol(symbol),
            interval,
            start_ms,
            end_ms,
            limit,
            now_ms=self.clock.now_ms(),
        )

    # --- balances -------------------------------------------------------------------------

    def _require_account(self, session: Session, account: str) -> None:
        if ledger.wallet_row(session, account, "UNIFIED", self.quote) is None:
            raise NotFound(f"no paper account {account!r}")

    def _unrealised(self, row: PaperPosition, now_ms: int) -> Decimal:
        if row.size <= 0:
            return ZERO
        price = self.source.price(row.symbol, now_ms)
        if price is None:
            return ZERO
        return q8(row.size * (money(price) - row.avg_price) * side_sign(row.side))

    def balance(self, account: str, coin: str = "USDT") -> Balance:
        """A bot's UNIFIED wallet (see the module docstring); for MAIN, its FUND wallet (the
        saved profit), as :class:`~jiritsu.exchange.bybit.BybitExchange` reports it."""
        return self.balances([account], coin)[account]

    def balances(self, accounts: Sequence[str], coin: str = "USDT") -> dict[str, Balance]:
        """:meth:`balance` of every one of ``accounts``, read in one transaction (one catch-up,
        one lock, three queries: a portfolio valuation at every snapshot)."""

        def fn(session: Session, now: int) -> dict[str, Balance]:
            found = ledger.books(session, accounts)
            return {a: self._balance(session, a, coin, found[a], now) for a in accounts}

        return self._run(fn)

    def _balance(
        self, session: Session, account: str, coin: str, books: ledger.Books, now: int
    ) -> Balance:
        if ("UNIFIED", self.quote) not in books.wallets:
            raise NotFound(f"no paper account {account!r}")
        if account == MAIN:
            fund = books.wallet("FUND", coin)
            return Balance(MAIN, coin, fund, fund, fund)
        if coin != self.quote:
            return self._coin_balance(session, account, coin)
        wallet = books.wallet("UNIFIED", self.quote)
        upl = ZERO
        equity = wallet
        for row in books.positions:
            pnl = self._unrealised(row, now)
            upl += pnl
            equity += pnl
            if row.category == "spot":
                equity += q8(row.size * row.avg_price)  # cost + pnl = market value
        return Balance(
            account=account,
            coin=coin,
            equity=equity,
            wallet_balance=wallet,
            available=books.available(self.quote),
            unrealised_pnl=upl,
        )

    def _coin_balance(self, session: Session, account: str, coin: str) -> Balance:
        """A non-quote coin: spot holdings of it plus any UNIFIED wallet of that coin."""
        held = ledger.wallet_balance(session, account, "UNIFIED", coin)
        pending = ZERO
        for row in ledger.market_rows(session, account, "spot"):
            if self.instrument(row.symbol, "spot").base_coin == coin:
                held += row.size
                pending += self._pending_sells(session, row)
        return Balance(
            account=account, coin=coin, equity=held, wallet_balance=held, available=held - pending
        )

    def wallet_balance(
        self, account: str, wallet: str = "UNIFIED", coin: str | None = None
    ) -> Decimal:
        """The raw ledger balance of one wallet (e.g. MAIN's FUND, where saved profit sits).

        Paper only: the Exchange interface has no way to name a wallet in ``balance``.
        """
        coin = coin or self.quote

        def fn(session: Session, _now: int) -> Decimal:
            return ledger.wallet_balance(session, account, wallet, coin)

        return self._run(fn)

    # --- orders ---------------------------------------------------------------------------

    def place_order(self, account: str, category: Category, request: OrderRequest) -> OrderState:
        """Accept an order (status "new"); it fills on a later bar, see the module docstring."""

        def fn(session: Session, now: int) -> OrderState:
            existing = ledger.order_by_client_id(session, account, request.client_order_id)
            if existing is not None:
                symbol = normalize_symbol(request.symbol)
                if existing.symbol != symbol or existing.side != request.side:
                    raise OrderRejected(
                        f"client order id {request.client_order_id} already belongs to a "
                        f"different order ({existing.side} {existing.symbol})"
                    )
                return ledger.order_state(existing)
            # the account's wallets, open positions and open orders in three queries: its
            # existence, what it has available and the market's open orders all come from them
            books = ledger.books(session, [account])[account]
            if ("UNIFIED", self.quote) not in books.wallets:
                raise NotFound(f"no paper account {account!r}")
            return ledger.order_state(self._accept(session, now, account, category, request, books))

        return self._activating(lambda: self._run(fn))

    def _accept(
        self,
        session: Session,
        now: int,
        account: str,
        category: Category,
        req: OrderRequest,
        books: ledger.Books,
    ) -> PaperOrder:
        from jiritsu.db.models import PaperOrder
        from jiritsu.db.statements import insert_into

        cid = req.client_order_id
        if not is_valid_client_order_id(cid):
            raise OrderRejected(
                f"client order id {cid!r} is not a Bybit orderLinkId (1..36 of A-Z a-z 0-9 - _)"
            )
        if category not in ("linear", "spot"):
            raise OrderRejected(f"unknown category {category!r}")
        symbol = normalize_symbol(req.symbol)
        inst = self.instrument(symbol, category)
        if req.side not in ("Buy", "Sell"):
            raise OrderRejected(f"side must be Buy or Sell, not {req.side!r}")
        if req.order_type not in ("Market", "Limit"):
            raise OrderRejected(f"order type must be Market or Limit, not {req.order_type!r}")
        tif = req.time_in_force or "GTC"
        if tif not in TIME_IN_FORCE:
            raise OrderRejected(f"time_in_force must be one of {', '.join(TIME_IN_FORCE)}")
        if tif == "PostOnly" and req.order_type != "Limit":
            raise OrderRejected("PostOnly needs a limit order")
        # rounded as BybitExchange rounds before sending: quantity down, prices to the tick
        qty = inst.round_qty(Decimal(req.qty))
        limit: Decimal | None = None
        if req.order_type == "Limit":
            if req.price is None:
                raise OrderRejected(f"a Limit order needs a price ({cid})")
            limit = inst.round_price(Decimal(req.price))
        take_profit = _rounded(inst, req.take_profit)
        stop_loss = _rounded(inst, req.stop_loss)
        last = self._last_price(symbol, now)
        base = limit if limit is not None else last
        problem = inst.order_problem(qty, base)
        if problem:
            raise OrderRejected(f"{cid}: {problem}")
        self._check_tpsl(req.side, base, take_profit, stop_loss)
        reduce_only = bool(req.reduce_only) and category == "linear"  # spot: no such thing

        market = ledger.market_row(session, account, category, symbol)
        if market is not None and market.next_bar_ms > now:
            raise UsageError(
                f"the paper ledger has already worked {symbol} up to "
                f"{from_ms(market.next_bar_ms).isoformat()}, after the clock's "
                f"{from_ms(now).isoformat()}: a replay of an earlier period needs a fresh database"
            )
        orders = [o for o in books.orders if o.category == category and o.symbol == symbol]
        was_idle = market is None or not self._is_active(session, market, orders)
        if market is None:
            market = ledger.ensure_market(session, account, category, symbol, now, from_ms(now))
        rate = self.maker_fee if req.order_type == "Limit" else self.taker_fee
        reserve = self._reservation(market, orders, req.side, qty, base, rate, reduce_only)
        available = books.available(self.quote)
        if reserve > available:
            raise InsufficientBalance(
                f"{account}: order needs {reserve} {self.quote}, available {available}"
            )
        if was_idle:  # nothing was waiting on older bars: start this market's work at now
            market.next_bar_ms = max(market.next_bar_ms, now)

        at = from_ms(now)
        status, reason = "new", None
        if tif == "PostOnly" and limit is not None:
            takes = limit >= last if req.side == "Buy" else limit <= last
            if takes:
                status, reason, reserve = "cancelled", "PostOnly order would take liquidity", ZERO
        values = dict(
            account=account,
            category=category,
            symbol=symbol,
            client_order_id=cid,
            exchange_order_id=ledger.order_id_for(account, cid),
            side=req.side,
            order_type=req.order_type,
            time_in_force=tif,
            qty=qty,
            price=limit,
            reduce_only=reduce_only,
            take_profit=take_profit,
            stop_loss=stop_loss,
            status=status,
            filled_qty=ZERO,
            avg_price=None,
            fee=ZERO,
            reserved=reserve,
            fill_count=0,
            reject_reason=reason,
            accepted_ms=now,
            created_at=at,
            updated_at=at,
        )
        # a plain INSERT (a unit of work's flush cost twice as much); the row it returns is the
        # object a flush would have left (its values as given, no id: nothing here reads it)
        session.connection().execute(insert_into(PaperOrder), values)
        return PaperOrder(**values)

    @staticmethod
    def _check_tpsl(
        side: str, base: Decimal, take_profit: Decimal | None, stop_loss: Decimal | None
    ) -> None:
        """TP above / SL below the entry for a long (mirrored for a short), as Bybit demands."""
        sign = side_sign(side)
        if take_profit is not None and (take_profit <= 0 or (take_profit - base) * sign <= 0):
            where = "above" if sign > 0 else "below"
            raise OrderRejected(f"take_profit {take_profit} must be {where} {base}")
        if stop_loss is not None and (stop_loss <= 0 or (base - stop_loss) * sign <= 0):
            where = "below" if sign > 0 else "above"
            raise OrderRejected(f"stop_loss {stop_loss} must be {where} {base}")

    def _pending_sells(self, session: Session, market: PaperPosition) -> Decimal:
        return _sells(ledger.open_orders(session, market.account, market.category, market.symbol))

    def _reservation(
        self,
        market: PaperPosition,
        orders: list[PaperOrder],
        side: str,
        qty: Decimal,
        price: Decimal,
        rate: Decimal,
        reduce_only: bool,
    ) -> Decimal:
        """Quote funds an order holds back (``orders``: the market's open ones); raises for what
        can never be placed."""
        if market.category == "spot":
            if side == "Buy":  # the fee comes out of the coins bought
                return q8(qty * price)
            free = market.size - _sells(orders)
            if qty > free:
                raise InsufficientBalance(
                    f"{market.account}: cannot sell {qty} {market.symbol}, {free} held and free"
                )
            return ZERO
        closing = min(qty, market.size) if market.size > 0 and market.side != side else ZERO
        if reduce_only:
            if closing <= 0:
                raise OrderRejected("reduce-only order would not reduce the position")
            return ZERO
        opening = qty - closing
        lev = Decimal(market.leverage if market.size > 0 and not closing else self.leverage)
        return q8(opening * price / lev + qty * price * rate)

    def _is_active(
        self, session: Session, market: PaperPosition, orders: list[PaperOrder] | None = None
    ) -> bool:
        """Whether anything waits on this market's bars (open orders or a TP/SL); ``orders``:
        its open orders when already read."""
        if market.size > 0 and (market.take_profit or market.stop_loss):
            return True
        if orders is None:
            orders = ledger.open_orders(session, market.account, market.category, market.symbol)
        return bool(orders)

    def cancel_order(
        self,
        account: str,
        category: Category,
        symbol: str,
        *,
        client_order_id: str | None = None,
        exchange_order_id: str | None = None,
    ) -> OrderState | None:
        if client_order_id is None and exchange_order_id is None:
            raise UsageError("cancel_order needs client_order_id or exchange_order_id")
        symbol = normalize_symbol(symbol)

        def fn(session: Session, now: int) -> OrderState | None:
            row = (
                ledger.order_by_client_id(session, account, client_order_id)
                if client_order_id is not None
                else ledger.order_by_exchange_id(session, exchange_order_id or "")
            )
            if (
                row is None
                or row.account != account
                or row.category != category
                or row.symbol != symbol
                or row.status in FINAL_STATUSES
            ):
                return None
            ledger.close_order(row, "cancelled", None, now)
            return ledger.order_state(row)

        return self._run(fn)

    def get_order(
        self, account: str, category: Category, symbol: str, client_order_id: str
    ) -> OrderState | None:
        symbol = normalize_symbol(symbol)

        def fn(session: Session, _now: int) -> OrderState | None:
            row = ledger.order_by_client_id(session, account, client_order_id)
            if row is None or row.category != category or row.symbol != symbol:
                return None
            return ledger.order_state(row)

        return self._run(fn)

    def open_orders(
        self, account: str, category: Category, symbol: str | None = None
    ) -> list[OrderState]:
        sym = normalize_symbol(symbol) if symbol is not None else None

        return self._run(lambda session, _now: _open_orders(session, account, category, sym))

    def executions(
        self,
        account: str,
        category: Category,
        *,
        symbol: str | None = None,
        since: datetime | None = None,
    ) -> list[Fill]:
        sym = normalize_symbol(symbol) if symbol is not None else None
        since_ms = None if since is None else round(since.timestamp() * 1000)

        return self._run(lambda session, _now: _fills(session, account, category, sym, since_ms))

    def positions(
        self, account: str, category: Category, symbol: str | None = None
    ) -> list[Position]:
        sym = normalize_symbol(symbol) if symbol is not None else None

        return self._run(lambda session, now: self._positions(session, now, account, category, sym))

    def _positions(
        self, session: Session, now: int, account: str, category: Category, sym: str | None
    ) -> list[Position]:
        rows = ledger.market_rows(session, account, category, sym)
        return [ledger.position_of(r, self._unrealised(r, now)) for r in rows]

    def account_reads(
        self, account: str, category: Category, symbol: str, *, since: datetime
    ) -> AccountReads:
        """A bot's re-read after a step in one transaction (one catch-up, one lock): the very
        answers of :meth:`executions`, :meth:`positions` and :meth:`open_orders` at one moment,
        and :meth:`get_order`'s of the orders those fills belong to (read with the open ones)."""
        sym = normalize_symbol(symbol)
        since_ms = round(since.timestamp() * 1000)

        def fn(session: Session, now: int) -> AccountReads:
            fills = ledger.fills(session, account, category, sym, since_ms)
            filled = {f.exchange_order_id for f in fills}
            rows = ledger.open_orders(session, account, category, sym, also=filled)
            return AccountReads(
                executions=[ledger.fill_of(f) for f in fills],
                positions=self._positions(session, now, account, category, sym),
                open_orders=[ledger.order_state(r) for r in rows if r.status in OPEN_STATUSES],
                orders={
                    r.client_order_id: ledger.order_state(r)
                    for r in rows
                    if r.client_order_id and r.exchange_order_id in filled
                },
            )

        return self._run(fn)

    def set_trading_stop(
        self,
        account: str,
        category: Category,
        symbol: str,
        *,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
    ) -> None:
        """Set (None: cancel) the TP/SL of an open position; checked from the next bar that
        opens at or after now. No open position: OrderRejected (as on Bybit)."""
        if category != "linear":
            raise OrderRejected("position TP/SL exists only for linear contracts")
        symbol = normalize_symbol(symbol)
        inst = self.instrument(symbol, category)
        take_profit = _rounded(inst, take_profit)
        stop_loss = _rounded(inst, stop_loss)

        def fn(session: Session, now: int) -> None:
            row = ledger.market_row(session, account, category, symbol)
            if row is None or row.size <= 0:
                raise OrderRejected(f"{account}: no open {category} position in {symbol}")
            self._check_tpsl(row.side, self._last_price(symbol, now), take_profit, stop_loss)
            if not self._is_active(session, row):
                row.next_bar_ms = max(row.next_bar_ms, now)
            row.take_profit = take_profit
            row.stop_loss = stop_loss
            row.tpsl_from_ms = now
            row.updated_at = from_ms(now)

        self._activating(lambda: self._run(fn))

    # --- transfers and accounts -------------------------------------------------------------

    def transfer(self, request: TransferRequest) -> TransferResult:
        """Move funds between ledger wallets at once (status "success"); idempotent by id."""
        from jiritsu.db.models import PaperTransfer

        def fn(session: Session, now: int) -> TransferResult:
            existing = ledger.transfer_row(session, request.transfer_id)
            amount = Decimal(request.amount)
            if existing is not None:
                same = (
                    existing.coin, Decimal(existing.amount), existing.from_account,
                    existing.from_wallet, existing.to_account, existing.to_wallet,
                ) == (
                    request.coin, amount, request.from_account, request.from_wallet,
                    request.to_account, request.to_wallet,
                )  # fmt: skip
                if not same:  # as Bybit refuses it: never report another transfer as this one
                    raise OrderRejected(
                        f"transfer id {request.transfer_id} already belongs to a different "
                        "transfer"
                    )
                return ledger.transfer_result(existing)
            if amount <= 0 or q8(amount) != amount:
                raise OrderRejected(f"transfer amount {amount} must be positive with <= 8 decimals")
            if (request.from_account, request.from_wallet) == (
                request.to_account,
                request.to_wallet,
            ):
                raise OrderRejected("transfer source and destination are the same wallet")
            for account in (request.from_account, request.to_account):
                self._require_account(session, account)
            coin = request.coin
            if request.from_wallet == "UNIFIED" and coin == self.quote:
                free = ledger.available(session, request.from_account, self.quote)
            else:
                free = ledger.wallet_balance(
                    session, request.from_account, request.from_wallet, coin
                )
            if amount > free:
                raise InsufficientBalance(
                    f"{request.from_account} {request.from_wallet}: transfer of {amount} {coin}"
                    f" needs that much free, {free} available"
                )
            at = from_ms(now)
            ledger.credit(session, request.from_account, request.from_wallet, coin, -amount, at)
            ledger.credit(session, request.to_account, request.to_wallet, coin, amount, at)
            row = PaperTransfer(
                transfer_id=request.transfer_id,
                coin=coin,
                amount=amount,
                from_account=request.from_account,
                from_wallet=request.from_wallet,
                to_account=request.to_account,
                to_wallet=request.to_wallet,
                status="success",
                created_at=at,
            )
            session.add(row)
            session.flush()
            return ledger.transfer_result(row)

        return self._run(fn)

    def get_transfer(self, transfer_id: str) -> TransferResult | None:
        with ledger.read_session(self.engine) as session:
            row = ledger.transfer_row(session, transfer_id)
            return None if row is None else ledger.transfer_result(row)

    def sub_accounts(self) -> list[SubAccount]:
        def fn(session: Session, _now: int) -> list[SubAccount]:
            names = [n for n in ledger.account_names(session) if n != MAIN]
            return [
                SubAccount(uid=zlib.crc32(n.encode()), username=n, status="normal") for n in names
            ]

        return self._run(fn, sync=False)


def _sells(orders: list[PaperOrder]) -> Decimal:
    """What open sell orders still hold of a spot holding."""
    return sum((o.qty - o.filled_qty for o in orders if o.side == "Sell"), ZERO)


def _open_orders(
    session: Session, account: str, category: Category, sym: str | None
) -> list[OrderState]:
    return [ledger.order_state(r) for r in ledger.open_orders(session, account, category, sym)]


def _fills(
    session: Session, account: str, category: Category, sym: str | None, since_ms: int | None
) -> list[Fill]:
    return [ledger.fill_of(r) for r in ledger.fills(session, account, category, sym, since_ms)]
