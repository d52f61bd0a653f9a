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

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

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


class KeptBook:
    """A bot's book with what it has applied, kept between re-reads: the next update applies
    only the fills recorded since (:func:`brought_up_to_date`) instead of replaying them all,
    which cost a long run time that grew with every fill."""

    def __init__(self, inst: Instrument) -> None:
        self.book = PositionBook(inst)
        self.count = 0  # executions rows applied
        self.max_id = 0  # the largest id among them
        self.last_id = 0  # the id of the one applied last (newest by (exec_time, id))

    @property
    def pos(self) -> BookPosition:
        return self.book.pos

    def apply_rows(self, rows: Sequence[Any]) -> None:
        """Apply rows of :func:`_fill_columns`, in the order given."""
        for order_id, side, qty, price, fee, fee_coin, when, row_id in rows:
            self.book.apply(order_id, side, qty, price, fee or ZERO, fee_coin, when)
            self.count += 1
            self.max_id = max(self.max_id, row_id)
            self.last_id = row_id


def _fill_columns(e: Any) -> tuple[Any, ...]:
    """What the book applies of an executions row (``e``: the model, or the columns of an alias
    of its table)."""
    return (e.order_id, e.side, e.qty, e.price, e.fee, e.fee_coin, e.exec_time, e.id)


def rebuild(engine: Engine, bot: str, inst: Instrument) -> KeptBook:
    """The bot's book from every recorded fill of its symbol, in (exec_time, id) order."""
    import sqlalchemy as sa

    from jiritsu.db.models import Execution

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(*_fill_columns(Execution))
            .where(Execution.bot == bot, Execution.symbol == inst.symbol)
            .order_by(Execution.exec_time, Execution.id)
        ).all()
    kept = KeptBook(inst)
    kept.apply_rows(rows)
    return kept


@cache
def _since_statement() -> Any:
    """:func:`brought_up_to_date`'s statement, built once (building it cost more than running
    it); parameters ``bot``, ``symbol``, ``max_id``, ``last_id``."""
    import sqlalchemy as sa

    from jiritsu.db.models import Execution

    every, last, new = (Execution.__table__.alias(n) for n in ("every", "last", "new"))
    bot = sa.bindparam("bot", type_=every.c.bot.type)
    symbol = sa.bindparam("symbol", type_=every.c.symbol.type)
    max_id = sa.bindparam("max_id", type_=every.c.id.type)
    last_time = (
        sa.select(last.c.exec_time).where(last.c.id == sa.bindparam("last_id")).scalar_subquery()
    )
    early = sa.and_(every.c.id > max_id, every.c.exec_time < last_time)
    seen = (
        sa.select(
            sa.func.count().label("total"),
            sa.func.count(sa.case((early, 1))).label("early"),
        )
        .where(every.c.bot == bot, every.c.symbol == symbol)
        .subquery()
    )
    joined = seen.outerjoin(
        new, sa.and_(new.c.bot == bot, new.c.symbol == symbol, new.c.id > max_id)
    )
    return (
        sa.select(seen.c.total, seen.c.early, *_fill_columns(new.c))
        .select_from(joined)
        .order_by(new.c.exec_time, new.c.id)
    )


def brought_up_to_date(engine: Engine, bot: str, inst: Instrument, kept: KeptBook) -> KeptBook:
    """``kept`` with the fills recorded since it was last brought up to date, or the book
    rebuilt from every fill when appending them would not give exactly the rebuild's book.

    Executions rows are never updated or deleted, so every row ``kept`` applied is still
    there. One statement (one snapshot, also on PostgreSQL) reads the rows with an id above
    every applied one, in (exec_time, id) order, with the count of all the bot's rows and of
    the new rows that sort before the row applied last. Appending is the rebuild when the count
    is the applied rows plus the new ones (no row with a smaller id became visible late: on
    PostgreSQL concurrent transactions commit out of id order) and no new row sorts before the
    last applied (a fill recorded late with an earlier time: a lost answer recovered,
    reconciliation, a restart); a new row's id is above the last one's, so an equal time sorts
    after it as in the rebuild. The time comparison is the database's own, as in its ORDER BY.
    """
    params = {"bot": bot, "symbol": inst.symbol, "max_id": kept.max_id, "last_id": kept.last_id}
    with engine.connect() as conn:
        rows = conn.execute(_since_statement(), params).all()
    total, early_rows = rows[0][0], rows[0][1]
    fills = [row[2:] for row in rows if row[-1] is not None]
    if early_rows or total != kept.count + len(fills):
        return rebuild(engine, bot, inst)
    kept.apply_rows(fills)
    return kept


@cache
def _pending_statements() -> tuple[Any, Any]:
    """:func:`update_trade_pnl`'s select of the rows to price (parameters ``bot``, ``symbol``,
    ``touched``) and its update of one row (``row_id``, ``effect``, ``value``), built once."""
    import sqlalchemy as sa

    from jiritsu.db.models import Trade

    t = Trade.__table__
    pending = sa.or_(
        t.c.position_effect.is_(None),
        sa.and_(t.c.position_effect == "close", t.c.pnl.is_(None)),
        t.c.order_id.in_(sa.bindparam("touched", expanding=True)),
    )
    select = sa.select(t.c.id, t.c.order_id, t.c.position_effect, t.c.pnl).where(
        t.c.sub_bot_name == sa.bindparam("bot", type_=t.c.sub_bot_name.type),
        t.c.symbol == sa.bindparam("symbol", type_=t.c.symbol.type),
        pending,
    )
    update = (
        sa.update(Trade)
        .where(t.c.id == sa.bindparam("row_id", type_=t.c.id.type))
        .values(
            position_effect=sa.bindparam("effect", type_=t.c.position_effect.type),
            pnl=sa.bindparam("value", type_=t.c.pnl.type),
        )
    )
    return select, update


def update_trade_pnl(
    engine: Engine,
    bot: str,
    inst: Instrument,
    touched: set[str] | None = None,
    kept: KeptBook | None = None,
) -> KeptBook:
    """Bring the book up to date (``kept``: the one returned last time, None: rebuild it) and
    write ``pnl`` / ``position_effect`` of the bot's trades rows that are new or whose orders
    got fills now (``touched``: exchange order ids), where they differ; returns the book."""
    kept = (
        rebuild(engine, bot, inst) if kept is None else brought_up_to_date(engine, bot, inst, kept)
    )
    order_pnl = kept.pos.order_pnl
    select, update = _pending_statements()
    params = {"bot": bot, "symbol": inst.symbol, "touched": sorted(touched or ())}
    with engine.begin() as conn:
        changes = []
        for row_id, order_id, effect_now, pnl_now in conn.execute(select, params):
            pnl = order_pnl.get(order_id)
            effect = "close" if pnl is not None else "open"
            value = q8(pnl) if pnl is not None else None
            if (effect_now, pnl_now) != (effect, value):
                changes.append({"row_id": row_id, "effect": effect, "value": value})
        if changes:
            conn.execute(update, changes)
    return kept
