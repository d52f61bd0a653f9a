"""The paper exchange's matching and booking: the bar protocol of :mod:`jiritsu.sim.fills` run
over the ledger's open orders and guarded positions (see :mod:`jiritsu.exchange.paper` for the
rules). :class:`PaperExchange` owns the API and the transactions; this module works the bars
inside the transaction it is handed and books each fill (wallet, position, order, fill row)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm.attributes import set_committed_value

from jiritsu.clock import from_ms
from jiritsu.db.models import PAPER_OPEN_ORDER_STATUSES
from jiritsu.exchange import ledger
from jiritsu.exchange.ledger import ZERO, q8
from jiritsu.sim import fills as fm

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.orm import Session

    from jiritsu.db.models import PaperAccount, PaperOrder, PaperPosition
    from jiritsu.exchange.paper_config import PaperConfig
    from jiritsu.exchange.types import Category, Instrument
    from jiritsu.market.source import MarketSource

_TIF_ONE_BAR = ("IOC", "FOK")  # no partial fills here, so both mean "this bar or never"


def money(value: float) -> Decimal:
    """A float from the fill model as a money Decimal (shortest repr, then 1e-8)."""
    return q8(Decimal(repr(float(value))))


def side_sign(side: str) -> int:
    """+1 for Buy, -1 for Sell."""
    return 1 if side == "Buy" else -1


@dataclass
class _Market:
    """One (account, category, symbol) being worked during a catch-up."""

    row: PaperPosition
    orders: list[PaperOrder]


@dataclass
class _Books:
    """The ledger as a catch-up read it at its start: every market row (by id) and every open
    order (oldest first), the very objects its session holds, so they carry each change booked
    since; the orders a trigger sends and the rows created are added as they appear. Funds
    before a fill are reckoned from them, as :func:`~jiritsu.exchange.ledger.available` would
    query them (no other writer: the catch-up holds the ledger's lock)."""

    rows: list[PaperPosition]
    orders: list[PaperOrder]
    wallets: dict[str, PaperAccount | None] = field(default_factory=dict)  # UNIFIED quote

    def wallet(self, session: Session, account: str, quote: str) -> PaperAccount | None:
        if account not in self.wallets:
            # every change to a wallet goes through this cache, so the changes the session
            # holds are not this one's: no need to flush them before reading it
            with session.no_autoflush:
                self.wallets[account] = ledger.wallet_row(session, account, "UNIFIED", quote)
        return self.wallets[account]

    def available(self, session: Session, account: str, quote: str) -> Decimal:
        """:func:`~jiritsu.exchange.ledger.available` of ``account``, without its queries."""
        wallet = self.wallet(session, account, quote)
        books = ledger.Books(
            wallets={} if wallet is None else {("UNIFIED", quote): wallet.balance},
            positions=[r for r in self.rows if r.account == account and r.size > 0],
            orders=[
                o for o in self.orders
                if o.account == account and o.status in PAPER_OPEN_ORDER_STATUSES
            ],
        )  # fmt: skip
        return books.available(quote)

    def credit(
        self, session: Session, account: str, quote: str, delta: Decimal, at: datetime
    ) -> None:
        row = self.wallet(session, account, quote)
        self.wallets[account] = ledger.credit(
            session, account, "UNIFIED", quote, delta, at, row=row, flush=False
        )

    def active(self) -> bool:
        """Whether a catch-up would find work: an open order, or a position with TP/SL."""
        return any(o.status in PAPER_OPEN_ORDER_STATUSES for o in self.orders) or any(
            r.size > 0 and (r.take_profit or r.stop_loss) for r in self.rows
        )


class Matcher:
    """Works closed bars against open orders and TP/SL guards, and books what fills."""

    def __init__(
        self,
        config: PaperConfig,
        source: MarketSource,
        instrument: Callable[[str, Category], Instrument],
    ) -> None:
        self.config = config
        self.source = source
        self.instrument = instrument
        self.quote = config.quote_coin
        self.maker_fee = Decimal(config.maker_fee)
        self.taker_fee = Decimal(config.taker_fee)
        self.slippage_bps = float(config.slippage_bps)
        self.vol_factor = float(config.slippage_volatility_factor)
        self.leverage = int(config.leverage)
        self.active = True  # as of the latest catch-up: something was left to work

    def catch_up(self, session: Session, now: int) -> dict[str, int]:
        """Work every closed bar since each active market's cursor, all markets merged in time
        order (they share wallets); returns the number of fills per account that had any.
        Afterwards :attr:`active` says whether anything is left for a later catch-up. What the
        bars change is written in one flush at the end (the work reads the books it holds, not
        the database: one unit of work instead of one per fill)."""
        books = _Books(ledger.market_rows(session, open_only=False), ledger.open_orders(session))
        by_key = {(r.account, r.category, r.symbol): r for r in books.rows}
        markets: dict[tuple[str, str, str], _Market] = {}
        for order in books.orders:
            key = (order.account, order.category, order.symbol)
            if key not in markets:
                row = by_key.get(key)
                if row is None:  # (place_order creates it: a ledger written before that did)
                    row = ledger.ensure_market(session, *key, order.accepted_ms, from_ms(now))
                    by_key[key] = row
                    books.rows.append(row)
                markets[key] = _Market(row, [])
            markets[key].orders.append(order)
        for row in books.rows:
            key = (row.account, row.category, row.symbol)
            if key not in markets and row.size > 0 and (row.take_profit or row.stop_loss):
                markets[key] = _Market(row, [])
        if not markets:
            self.active = False
            return {}

        events: list[tuple[int, int, tuple[Any, ...]]] = []
        keys = sorted(markets)
        for index, key in enumerate(keys):
            worked = markets[key].row
            frame = self.source.bars_between(worked.symbol, worked.next_bar_ms, now, now_ms=now)
            events.extend((bar[0], index, bar) for bar in frame.iter_rows())
        events.sort(key=lambda e: (e[0], e[1]))
        filled: dict[str, int] = {}
        cursors: dict[tuple[str, str, str], int] = {}
        for ts, index, bar in events:
            market = markets[keys[index]]
            count = self._work_bar(session, books, market, bar)
            if count:
                filled[market.row.account] = filled.get(market.row.account, 0) + count
            cursors[keys[index]] = ts + 1
        if cursors:
            # the bar cursors, the only change of most catch-ups, in one plain statement; the
            # rows held take the values written as their stored ones, so no flush writes them
            moved = [{"row_id": markets[k].row.id, "next_bar_ms": v} for k, v in cursors.items()]
            session.connection().execute(ledger.cursor_update(), moved)
            for key, next_bar_ms in cursors.items():
                set_committed_value(markets[key].row, "next_bar_ms", next_bar_ms)
        session.flush()
        self.active = books.active()
        return filled

    def _vol(self, account: str, symbol: str, bar_ts: int) -> float:
        """ATR / close over the bars of the account's timeframe that closed before ``bar_ts``."""
        if self.vol_factor <= 0:
            return 0.0
        import numpy as np

        interval = self.config.volatility_intervals.get(
            account, getattr(self.source, "interval", "1")
        )
        frame = self.source.klines(
            symbol, interval, end_ms=bar_ts, limit=fm.VOL_WINDOW + 1, now_ms=bar_ts
        )
        if frame.height < 2:
            return 0.0
        return fm.atr_fraction(
            np.asarray(frame["high"].to_numpy(), dtype=np.float64),
            np.asarray(frame["low"].to_numpy(), dtype=np.float64),
            np.asarray(frame["close"].to_numpy(), dtype=np.float64),
        )

    def _work_bar(
        self, session: Session, books: _Books, market: _Market, bar: tuple[Any, ...]
    ) -> int:
        """The bar protocol of :mod:`jiritsu.sim.fills` for one market and one bar."""
        ts, o, h, low = int(bar[0]), float(bar[1]), float(bar[2]), float(bar[3])
        row = market.row
        count = 0
        vol: float | None = None
        # 1. market orders at the open, plus slippage, as taker
        for order in market.orders:
            if order.status == "new" and order.order_type == "Market" and order.accepted_ms <= ts:
                if vol is None:
                    vol = self._vol(row.account, row.symbol, ts)
                price = fm.market_fill_price(
                    o, side_sign(order.side), self.slippage_bps, vol, self.vol_factor
                )
                count += self._fill(
                    session, books, order, row, money(price), ts, False, "Trade", ts
                )
        # 2. TP/SL of the position (stop first), as taker
        if (
            row.size > 0
            and (row.take_profit or row.stop_loss)
            and row.tpsl_from_ms is not None
            and row.tpsl_from_ms <= ts
        ):
            if vol is None:
                vol = self._vol(row.account, row.symbol, ts)
            code, price = fm.tp_sl_fill(
                side_sign(row.side),
                float(row.take_profit or 0),
                float(row.stop_loss or 0),
                o,
                h,
                low,
                self.slippage_bps,
                vol,
                self.vol_factor,
            )
            if code != fm.EXIT_NONE:
                count += self._exit(session, books, row, code, money(price), ts)
        # 3. limit orders that the bar traded through, as maker
        for order in market.orders:
            if order.status == "new" and order.order_type == "Limit" and order.accepted_ms <= ts:
                limit = float(order.price or 0)
                filled, price = fm.limit_fill(side_sign(order.side), limit, o, h, low)
                if filled:
                    fill = money(price)
                    count += self._fill(session, books, order, row, fill, ts, True, "Trade", ts + 1)
                elif order.time_in_force in _TIF_ONE_BAR:
                    ledger.close_order(order, "cancelled", f"{order.time_in_force}: not filled", ts)
        return count

    def _exit(
        self,
        session: Session,
        books: _Books,
        row: PaperPosition,
        code: int,
        price: Decimal,
        ts: int,
    ) -> int:
        """Close the whole position with the market order a TP/SL trigger sends."""
        from jiritsu.db.models import PaperOrder

        at = from_ms(ts)
        side = "Sell" if row.side == "Buy" else "Buy"
        order = PaperOrder(
            account=row.account,
            category=row.category,
            symbol=row.symbol,
            client_order_id=None,
            exchange_order_id=ledger.exit_order_id_for(row.account, row.category, row.symbol, ts),
            side=side,
            order_type="Market",
            time_in_force="IOC",
            qty=row.size,
            price=None,
            reduce_only=row.category == "linear",
            status="new",
            filled_qty=ZERO,
            fee=ZERO,
            reserved=ZERO,
            fill_count=0,
            accepted_ms=ts,
            created_at=at,
            updated_at=at,
        )
        session.add(order)
        books.orders.append(order)
        exec_type = "TakeProfit" if code == fm.EXIT_TP else "StopLoss"
        return self._fill(session, books, order, row, price, ts, False, exec_type, ts)

    def _fill(
        self,
        session: Session,
        books: _Books,
        order: PaperOrder,
        row: PaperPosition,
        price: Decimal,
        ts: int,
        is_maker: bool,
        exec_type: str,
        tpsl_from: int,
    ) -> int:
        """Execute the rest of ``order`` at ``price`` in bar ``ts``; 1 if it filled, else 0
        (cancelled or rejected, with the reason on the order)."""
        from jiritsu.db.models import PaperFill

        rate = self.maker_fee if is_maker else self.taker_fee
        qty = order.qty - order.filled_qty
        sign = side_sign(order.side)
        at = from_ms(ts)
        free = books.available(session, row.account, self.quote) + order.reserved
        realised = ZERO
        fee_coin = self.quote
        if row.category == "spot":
            notional = q8(qty * price)
            if order.side == "Buy":  # the fee is taken from the coins bought, as on Bybit
                if notional > free:
                    ledger.close_order(order, "rejected", "insufficient balance at fill", ts)
                    return 0
                fee_coin = self.instrument(row.symbol, "spot").base_coin
                fee = q8(qty * rate)
                cash = -notional
                # the holding grows by the coins that arrive; its average is the trade price
                self._move_position(row, order, sign, qty - fee, price, tpsl_from)
                fee_value = q8(fee * price)
            else:
                if qty > row.size:
                    ledger.close_order(order, "rejected", "selling more than held", ts)
                    return 0
                fee = fee_value = q8(notional * rate)
                realised = q8(qty * (price - row.avg_price))
                cash = notional - fee
                self._move_position(row, order, sign, qty, price, tpsl_from)
        else:
            held = row.size * side_sign(row.side) if row.size > 0 else ZERO
            reduces = held != 0 and (held > 0) != (sign > 0)
            if order.reduce_only:
                if not reduces:
                    reason = "reduce-only order would not reduce the position"
                    ledger.close_order(order, "cancelled", reason, ts)
                    return 0
                qty = min(qty, abs(held))
            closing = min(qty, abs(held)) if reduces else ZERO
            opening = qty - closing
            fee = q8(qty * price * rate)
            if closing:
                realised = q8(closing * (price - row.avg_price) * side_sign(row.side))
            if opening > 0:
                # a flip first closes (releasing that margin, booking the PnL), then opens
                released = q8(closing * row.avg_price / Decimal(row.leverage)) if closing else ZERO
                lev = Decimal(row.leverage if row.size > 0 and not closing else self.leverage)
                if q8(opening * price / lev) + fee > free + released + realised:
                    ledger.close_order(order, "rejected", "insufficient balance at fill", ts)
                    return 0
            cash = realised - fee
            fee_value = fee
            self._move_position(row, order, sign, qty, price, tpsl_from)
        books.credit(session, row.account, self.quote, cash, at)
        row.realised_pnl = q8(row.realised_pnl + realised - fee_value)
        row.updated_at = at

        prev = order.filled_qty
        order.filled_qty = prev + qty
        order.avg_price = q8(((order.avg_price or ZERO) * prev + price * qty) / order.filled_qty)
        order.fee = q8(order.fee + fee)  # in fee_coin (the base coin for a spot buy)
        order.fill_count += 1
        ledger.close_order(order, "filled", None, ts)
        session.add(
            PaperFill(
                exec_id=ledger.exec_id_for(order.exchange_order_id, order.fill_count),
                account=order.account,
                category=order.category,
                symbol=order.symbol,
                exchange_order_id=order.exchange_order_id,
                client_order_id=order.client_order_id,
                side=order.side,
                price=price,
                qty=qty,
                fee=fee,
                fee_coin=fee_coin,
                fee_rate=rate,
                is_maker=is_maker,
                exec_type=exec_type,
                realised_pnl=realised,
                exec_ms=ts,
                exec_time=at,
            )
        )
        return 1

    def _move_position(
        self,
        row: PaperPosition,
        order: PaperOrder,
        sign: int,
        qty: Decimal,
        price: Decimal,
        tpsl_from: int,
    ) -> None:
        """Apply a fill of ``sign * qty`` at ``price`` to the position (one-way mode)."""
        held = row.size * side_sign(row.side) if row.size > 0 else ZERO
        new = held + sign * qty
        if new == 0:
            row.side, row.size, row.avg_price = "", ZERO, ZERO
            row.take_profit = row.stop_loss = row.tpsl_from_ms = None
            return
        if held == 0 or (held > 0) != (new > 0):  # opened, or flipped through zero
            row.side = "Buy" if new > 0 else "Sell"
            row.size, row.avg_price = abs(new), price
            row.leverage = 1 if row.category == "spot" else self.leverage
            row.take_profit = row.stop_loss = row.tpsl_from_ms = None
        elif abs(new) > abs(held):  # added in the same direction
            row.avg_price = q8((row.avg_price * abs(held) + price * qty) / abs(new))
            row.size = abs(new)
        else:  # reduced: the entry price stays
            row.size = abs(new)
        if row.side == order.side and (order.take_profit or order.stop_loss):
            if order.take_profit:
                row.take_profit = order.take_profit
            if order.stop_loss:
                row.stop_loss = order.stop_loss
            row.tpsl_from_ms = tpsl_from
