"""A bot's position rebuilt from its recorded fills, and the PnL of every closing trade.

The exchange is the truth for a linear position's size, side and average, but it does not know
when the position was opened (maximum holding time), what its entries cost in fees, or -- for
spot -- the average price of a holding at all (Bybit reports coins, not a cost basis). The book
replays the bot's ``executions`` in time order with the paper exchange's netting rules (one-way:
adding averages the price, reducing keeps it, crossing zero opens the other side; a spot buy
receives the coins net of the fee charged in the coin) and, on the way, prices every exchange
order that reduced the position:

    pnl = realised - exit fee share - entry fee share
    realised        = closed qty x (exit price - average entry) x position side
    exit fee share  = the order's fees x closed qty / filled qty (a flip's opening part keeps
                      the rest)
    entry fee share = fees paid to build the position (quote value; a spot buy's coin fee at
                      its fill price) x closed qty / position size before the fill

so the PnL of a position's closing trades adds up to what the round trip made or lost after
every fee. ``trades.pnl`` and ``trades.position_effect`` ("close" for any order that reduced the
position, "open" otherwise) are written from it; the dashboard's performance views read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from jiritsu.exchange.ledger import q8

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.exchange.types import Instrument

ZERO = Decimal(0)


@dataclass
class BookPosition:
    side: int = 0  # +1 long, -1 short, 0 flat
    qty: Decimal = ZERO
    avg: Decimal = ZERO
    opened: datetime | None = None  # exec time of the fill that made it tradeable
    entry_fees: Decimal = ZERO
    order_pnl: dict[str, Decimal] = field(default_factory=dict)  # exchange order id -> pnl
    last_fill: datetime | None = None


def tradeable(qty: Decimal, avg: Decimal, inst: Instrument) -> Decimal:
    """Size that can actually be traded: down to the step; dust below the minimums is 0."""
    q = inst.round_qty(qty) if qty > 0 else ZERO
    if q <= 0 or q < inst.min_qty or (inst.min_notional and q * avg < inst.min_notional):
        return ZERO
    return q


def _sign(side: str) -> int:
    return 1 if side == "Buy" else -1


class PositionBook:
    """Replays fills (see the module docstring)."""

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.spot = inst.category == "spot"
        self.pos = BookPosition()

    def _move(self, sign: int, qty: Decimal, price: Decimal, when: datetime) -> None:
        pos = self.pos
        was_open = tradeable(pos.qty, pos.avg, self.inst) > 0
        held = pos.qty * pos.side
        new = held + sign * qty
        if new == 0:
            pos.side, pos.qty, pos.avg, pos.opened, pos.entry_fees = 0, ZERO, ZERO, None, ZERO
            return
        if held == 0 or (held > 0) != (new > 0):
            was_open = was_open and held != 0 and (held > 0) == (new > 0)  # a flip is new
            pos.side = 1 if new > 0 else -1
            pos.qty, pos.avg = abs(new), price
        elif abs(new) > abs(held):
            pos.avg = q8((pos.avg * abs(held) + price * qty) / abs(new))
            pos.qty = abs(new)
        else:
            pos.qty = abs(new)
        if tradeable(pos.qty, pos.avg, self.inst) > 0:
            if not was_open:
                pos.opened = when
        else:
            pos.opened = None

    def apply(
        self,
        order_id: str,
        side: str,
        qty: Decimal,
        price: Decimal,
        fee: Decimal,
        fee_coin: str | None,
        when: datetime,
    ) -> None:
        pos = self.pos
        sign = _sign(side)
        pos.last_fill = when
        if self.spot:
            if sign > 0:
                in_coin = fee_coin == self.inst.base_coin
                net = qty - fee if in_coin else qty
                fee_quote = q8(fee * price) if in_coin else fee
                self._move(1, net, price, when)
                pos.entry_fees += fee_quote
                return
            held = pos.qty if pos.side > 0 else ZERO
            closing = min(qty, held)
            if closing > 0:
                share = q8(pos.entry_fees * closing / held)
                realised = closing * (price - pos.avg)
                pnl = realised - q8(fee * closing / qty) - share
                pos.order_pnl[order_id] = pos.order_pnl.get(order_id, ZERO) + pnl
                pos.entry_fees -= share
            self._move(-1, qty, price, when)
            return
        held = pos.qty * pos.side
        reduces = held != 0 and (held > 0) != (sign > 0)
        closing = min(qty, abs(held)) if reduces else ZERO
        opening = qty - closing
        if closing > 0:
            share = q8(pos.entry_fees * closing / abs(held))
            realised = closing * (price - pos.avg) * pos.side
            pnl = realised - q8(fee * closing / qty) - share
            pos.order_pnl[order_id] = pos.order_pnl.get(order_id, ZERO) + pnl
            pos.entry_fees -= share
        self._move(sign, qty, price, when)
        if opening > 0:
            pos.entry_fees += q8(fee * opening / qty)


def rebuild(engine: Engine, bot: str, inst: Instrument) -> BookPosition:
    """The bot's book from every recorded fill of its symbol."""
    import sqlalchemy as sa

    from jiritsu.db.models import Execution

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                Execution.order_id,
                Execution.side,
                Execution.qty,
                Execution.price,
                Execution.fee,
                Execution.fee_coin,
                Execution.exec_time,
            )
            .where(Execution.bot == bot, Execution.symbol == inst.symbol)
            .order_by(Execution.exec_time, Execution.id)
        ).all()
    book = PositionBook(inst)
    for order_id, side, qty, price, fee, fee_coin, when in rows:
        book.apply(order_id, side, qty, price, fee or ZERO, fee_coin, when)
    return book.pos


def update_trade_pnl(
    engine: Engine, bot: str, inst: Instrument, touched: set[str] | None = None
) -> BookPosition:
    """Rebuild the book and write ``pnl`` / ``position_effect`` of the bot's trades rows that
    are new or whose orders got fills now (``touched``: exchange order ids); returns the book."""
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import Trade

    pos = rebuild(engine, bot, inst)
    pending = sa.or_(
        Trade.position_effect.is_(None),
        sa.and_(Trade.position_effect == "close", Trade.pnl.is_(None)),
    )
    if touched:
        pending = sa.or_(pending, Trade.order_id.in_(sorted(touched)))
    with session_scope(engine) as session:
        rows = session.scalars(
            sa.select(Trade).where(Trade.sub_bot_name == bot, Trade.symbol == inst.symbol, pending)
        ).all()
        for row in rows:
            pnl = pos.order_pnl.get(row.order_id)
            effect = "close" if pnl is not None else "open"
            if row.position_effect != effect:
                row.position_effect = effect
            value = q8(pnl) if pnl is not None else None
            if row.pnl != value:
                row.pnl = value
    return pos
