"""``jiritsu flatten``: halt, cancel every open order, close every position at market.

In this order, so nothing can trade in between:

1. halt the bot (``--bot``) or everything (GLOBAL);
2. cancel the bot's open orders: those the journal tracks (by client id) and any other order the
   exchange still has open for it (a position's own TP/SL orders carry no client id and go away
   with the position); a split entry in progress is ended (its unsent legs get cancelled rows);
3. close the position with a reduce-only market order (spot: sell the holding, rounded down to
   the quantity step), recorded in the journal like any order (client id
   ``client_order_id(bot, "flat<ms>", 0)``, reason "flatten").

A closing market order fills at once on Bybit and at the next 1-minute open on the paper
exchange; the report says what was sent and its status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.controls import GLOBAL
from jiritsu.events import EventType, record_event
from jiritsu.exchange.errors import ExchangeError
from jiritsu.exchange.ids import client_order_id
from jiritsu.exchange.journal import OrderJournal, apply_state
from jiritsu.exchange.types import CATEGORIES, OrderRequest, Side, one_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.clock import Clock
    from jiritsu.exchange.base import Exchange
    from jiritsu.notify import Notifier


@dataclass(frozen=True)
class FlattenLine:
    bot: str
    action: str  # cancelled | close | flat | error
    symbol: str
    side: str | None = None
    qty: Decimal | None = None
    client_order_id: str | None = None
    status: str = ""
    detail: str = ""


@dataclass
class FlattenReport:
    lines: list[FlattenLine] = field(default_factory=list)
    halted: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[FlattenLine]:
        return [line for line in self.lines if line.action == "error"]


def _cancel_tracked(
    engine: Engine, exchange: Exchange, bot: Any, out: list[FlattenLine]
) -> set[str]:
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import OPEN_ORDER_STATUSES, Order

    done: set[str] = set()
    with session_scope(engine) as session:
        rows = session.scalars(
            sa.select(Order).where(Order.bot == bot.name, Order.status.in_(OPEN_ORDER_STATUSES))
        ).all()
        for row in rows:
            cid = row.client_order_id
            done.add(cid)
            category = one_of(row.category, CATEGORIES, "category")
            try:
                state = exchange.cancel_order(bot.name, category, row.symbol, client_order_id=cid)
                if state is None:
                    state = exchange.get_order(bot.name, category, row.symbol, cid)
            except ExchangeError as exc:
                out.append(FlattenLine(bot.name, "error", row.symbol, row.side, row.qty, cid,
                                       row.status, f"cancel failed: {exc}"))  # fmt: skip
                continue
            if state is not None:
                apply_state(row, state)
            elif row.status in ("pending", "sent", "unknown"):
                row.status = "cancelled"
                row.error = "cancelled by flatten before it reached the exchange"
            out.append(FlattenLine(bot.name, "cancelled", row.symbol, row.side,
                                   row.qty - (row.filled_qty or 0), cid, row.status))  # fmt: skip
    return done


def _cancel_untracked(
    exchange: Exchange, bot: Any, known: set[str], out: list[FlattenLine]
) -> None:
    for state in exchange.open_orders(bot.name, bot.category, bot.symbol):
        if not state.client_order_id or state.client_order_id in known:
            continue
        try:
            exchange.cancel_order(
                bot.name, bot.category, bot.symbol, client_order_id=state.client_order_id
            )
        except ExchangeError as exc:
            out.append(FlattenLine(bot.name, "error", bot.symbol, state.side, state.qty,
                                   state.client_order_id, state.status,
                                   f"cancel failed: {exc}"))  # fmt: skip
            continue
        out.append(
            FlattenLine(
                bot.name, "cancelled", bot.symbol, state.side, state.qty,
                state.client_order_id, "cancelled", "not in the journal",
            )
        )  # fmt: skip


def _end_plan(engine: Engine, bot: Any, environment: str) -> None:
    from jiritsu.engine.plans import close_unsent_legs, latest_plan

    plan = latest_plan(engine, bot.name)
    if plan is not None and not plan.complete:
        close_unsent_legs(
            engine, plan, symbol=bot.symbol, category=bot.category,
            environment=environment, why="flatten",
        )  # fmt: skip


def _close(
    journal: OrderJournal, exchange: Exchange, bot: Any, now: datetime, out: list[FlattenLine]
) -> None:
    inst = exchange.instrument(bot.symbol, bot.category)
    held = False
    for pos in exchange.positions(bot.name, bot.category, bot.symbol):
        if not pos.side or pos.size <= 0:
            continue
        held = True
        qty = inst.round_qty(pos.size)
        if qty <= 0 or qty < inst.min_qty:
            out.append(FlattenLine(bot.name, "flat", bot.symbol, pos.side, pos.size, None, "",
                                   "dust below the minimum order size is left"))  # fmt: skip
            continue
        side: Side = "Sell" if pos.side == "Buy" else "Buy"
        cid = client_order_id(bot.name, f"flat{round(now.timestamp() * 1000)}", 0)
        request = OrderRequest(cid, bot.symbol, side, qty, reduce_only=True)
        try:
            state = journal.submit(bot.name, bot.category, request, reason="flatten")
        except ExchangeError as exc:
            out.append(FlattenLine(bot.name, "error", bot.symbol, side, qty, cid, "",
                                   f"close failed: {exc}"))  # fmt: skip
            continue
        out.append(FlattenLine(bot.name, "close", bot.symbol, side, qty, cid, state.status))
    if not held:
        out.append(FlattenLine(bot.name, "flat", bot.symbol, detail="no position"))


def flatten(
    engine: Engine,
    exchange: Exchange,
    settings: Any,
    *,
    bot: str | None,
    clock: Clock,
    notifier: Notifier | None = None,
    by: str = "operator",
    requested_by: str | None = None,
) -> FlattenReport:
    """Halt, cancel and close (see the module docstring) for ``bot``, or every bot.

    ``clock``: the caller's; the halt, the closing orders (their rows and client ids) and the
    event carry its time. ``requested_by`` (who and from where) goes into the event and its
    alert.
    """
    from jiritsu import controls
    from jiritsu.errors import UsageError

    environment = settings.general.environment
    if bot is not None:
        bots = [b for b in settings.sub_bots if b.name == bot]
        if not bots:
            names = ", ".join(b.name for b in settings.sub_bots)
            raise UsageError(f"no bot named {bot!r} (bots: {names})")
    else:
        bots = list(settings.sub_bots)
    scope = bot if bot is not None else GLOBAL
    now = clock.now()
    report = FlattenReport()
    controls.halt(engine, scope, "flatten", by=by, now=now)
    report.halted.append(scope)
    journal = OrderJournal(engine, exchange, environment=environment, clock=clock)
    for b in bots:
        known = _cancel_tracked(engine, exchange, b, report.lines)
        _cancel_untracked(exchange, b, known, report.lines)
        _end_plan(engine, b, environment)
        _close(journal, exchange, b, now, report.lines)
    closed = [
        f"{line.bot} {line.side} {line.qty}" for line in report.lines if line.action == "close"
    ]
    cancelled = sum(1 for line in report.lines if line.action == "cancelled")
    record_event(
        engine,
        "CRITICAL" if bot is None else "WARNING",
        EventType.HALT,
        f"flatten {scope}: {cancelled} order(s) cancelled, {len(closed)} position(s) closing; "
        f"halted{f' (by {requested_by})' if requested_by else ''}",
        {
            "closed": closed,
            "cancelled": cancelled,
            "errors": len(report.errors),
            "requested_by": requested_by or by,
        },
        bot=bot,
        notifier=notifier,
        now=now,
    )
    return report
