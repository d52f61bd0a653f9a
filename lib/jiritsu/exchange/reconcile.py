"""Reconciliation: make the database agree with the exchange, and say where it did not.

Run by the trade loop (at start and every hour, for its own bots) and by ``jiritsu reconcile``.
For each bot it adopts fills from the exchange's execution list (deduplicated by execId; priced
by :mod:`jiritsu.exchange.book`, so a stop that closed the position while nothing ran carries
its PnL and position effect), settles every order the journal still thinks is open (or whose
answer was lost), adopts orders the exchange has but the journal does not, and compares linear
positions with the fills on record. Every difference is a WARNING event. A second run right
after the first finds nothing to change.

Given ``data_dir``, each bot is reconciled under its lock (:func:`jiritsu.locks.bot_lock`). A
running trade loop holds its bots' locks, so ``jiritsu reconcile`` skips them (the loop works
their orders and reconciles them itself) instead of reporting the loop's own in-flight orders
and fills as differences; a trade tick holds them only while it runs, and is waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiritsu.events import EventType, record_event
from jiritsu.exchange.book import update_trade_pnl
from jiritsu.exchange.journal import OrderJournal, apply_state, db_status
from jiritsu.exchange.types import CATEGORIES, Category, one_of

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.clock import Clock
    from jiritsu.exchange.base import Exchange
    from jiritsu.notify import Notifier

FILL_LOOKBACK = timedelta(days=7)  # Bybit's default execution window
FILL_OVERLAP = timedelta(hours=1)  # re-read a little before the newest fill we hold
LOCK_WAIT_SECONDS = 45.0  # a trade tick holds a bot this long at most; a loop holds it always


@dataclass(frozen=True)
class BotAccount:
    name: str
    category: Category
    symbol: str


@dataclass(frozen=True)
class Difference:
    bot: str
    kind: str  # fill_adopted | order_updated | order_vanished | order_adopted | position
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReconcileReport:
    differences: list[Difference] = field(default_factory=list)
    bots: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # bot -> why it was not reconciled

    def count(self, kind: str) -> int:
        return sum(1 for d in self.differences if d.kind == kind)

    @property
    def clean(self) -> bool:
        return not self.differences


def bot_accounts(settings: Any, only: str | None = None) -> list[BotAccount]:
    """The enabled bots (or the one named) as the accounts to reconcile."""
    from jiritsu.errors import UsageError

    bots = [b for b in settings.sub_bots if b.enabled and (only is None or b.name == only)]
    if only is not None and not bots:
        names = ", ".join(b.name for b in settings.sub_bots)
        raise UsageError(f"no enabled bot named {only!r} (bots: {names})")
    return [BotAccount(b.name, b.category, b.symbol) for b in bots]


def _newest_fill(engine: Engine, bot: str) -> datetime | None:
    import sqlalchemy as sa

    from jiritsu.db.models import Execution

    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.max(Execution.exec_time)).where(Execution.bot == bot)
        ).scalar()


def _adopt_fills(
    journal: OrderJournal, account: BotAccount, now: datetime, out: list[Difference]
) -> None:
    newest = _newest_fill(journal.engine, account.name)
    since = (newest - FILL_OVERLAP) if newest else now - FILL_LOOKBACK
    fills = journal.exchange.executions(
        account.name, account.category, symbol=account.symbol, since=since
    )
    adopted = journal.record_fills(account.name, fills)
    if adopted:  # priced like the bot's own fills: a closing one carries its PnL
        inst = journal.exchange.instrument(account.symbol, account.category)
        update_trade_pnl(
            journal.engine, account.name, inst, {r.fill.exchange_order_id for r in adopted}
        )
    for recorded in adopted:
        f = recorded.fill
        out.append(
            Difference(
                account.name,
                "fill_adopted",
                f"adopted fill {f.exec_id}: {f.side} {f.qty} {f.symbol} @ {f.price}",
                {"exec_id": f.exec_id, "order_id": f.exchange_order_id, "qty": str(f.qty)},
            )
        )


def _settle_orders(journal: OrderJournal, account: BotAccount, out: list[Difference]) -> None:
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import OPEN_ORDER_STATUSES, Order

    with session_scope(journal.engine) as session:
        rows = session.scalars(
            sa.select(Order).where(Order.bot == account.name, Order.status.in_(OPEN_ORDER_STATUSES))
        ).all()
        for row in rows:
            state = journal.exchange.get_order(
                account.name,
                one_of(row.category, CATEGORIES, "category"),
                row.symbol,
                row.client_order_id,
            )
            if state is None:
                before = row.status
                row.status = "cancelled"
                row.error = (
                    "vanished: never reached the exchange"
                    if before in ("pending", "sent", "unknown")
                    else "vanished from the exchange"
                )
                out.append(
                    Difference(
                        account.name,
                        "order_vanished",
                        f"order {row.client_order_id} ({before}) is not on the exchange",
                        {"client_order_id": row.client_order_id, "was": before},
                    )
                )
                continue
            before = row.status
            if apply_state(row, state) and row.status != before:
                out.append(
                    Difference(
                        account.name,
                        "order_updated",
                        f"order {row.client_order_id}: {before} -> {row.status}",
                        {"client_order_id": row.client_order_id, "was": before, "now": row.status},
                    )
                )


def _adopt_orders(journal: OrderJournal, account: BotAccount, out: list[Difference]) -> None:
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import Order

    live = journal.exchange.open_orders(account.name, account.category, account.symbol)
    with session_scope(journal.engine) as session:
        for state in live:
            if not state.client_order_id:
                continue  # exchange-side TP/SL of a position, not an order of ours
            exists = session.scalar(
                sa.select(Order.id).where(Order.client_order_id == state.client_order_id)
            )
            if exists is not None:
                continue
            row = Order(
                client_order_id=state.client_order_id,
                bot=account.name,
                environment=journal.environment,
                symbol=state.symbol,
                category=account.category,
                side=state.side,
                order_type=state.order_type,
                qty=state.qty,
                price=state.price,
                reduce_only=state.reduce_only,
                status=db_status(state.status),
                reason="adopted by reconciliation",
            )
            apply_state(row, state)
            session.add(row)
            out.append(
                Difference(
                    account.name,
                    "order_adopted",
                    f"order {state.client_order_id} is open on the exchange but was not recorded",
                    {"client_order_id": state.client_order_id},
                )
            )


def _net_from_fills(engine: Engine, bot: str, symbol: str) -> Decimal:
    import sqlalchemy as sa

    from jiritsu.db.models import Execution

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Execution.side, Execution.qty).where(
                Execution.bot == bot, Execution.symbol == symbol
            )
        ).all()
    return sum((q if side == "Buy" else -q for side, q in rows), Decimal(0))


def _check_position(journal: OrderJournal, account: BotAccount, out: list[Difference]) -> None:
    if account.category != "linear":
        return  # spot holdings include deposits that no fill explains
    positions = journal.exchange.positions(account.name, account.category, account.symbol)
    on_exchange = sum(
        (p.size if p.side == "Buy" else -p.size for p in positions if p.side), Decimal(0)
    )
    recorded = _net_from_fills(journal.engine, account.name, account.symbol)
    if on_exchange != recorded:
        out.append(
            Difference(
                account.name,
                "position",
                f"{account.symbol} position {on_exchange} on the exchange, {recorded} from fills",
                {"exchange": str(on_exchange), "fills": str(recorded)},
            )
        )


def reconcile(
    engine: Engine,
    exchange: Exchange,
    accounts: Sequence[BotAccount],
    *,
    environment: str,
    clock: Clock,
    notifier: Notifier | None = None,
    data_dir: Path | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> ReconcileReport:
    """Bring the database in line with the exchange for ``accounts``; see the module doc.
    ``data_dir``: take each bot's lock (the caller holds none); None: the caller holds them.
    ``clock``: the runtime's; the rows and events reconciliation writes carry its time."""
    from jiritsu.locks import BotBusy, bot_lock

    now = clock.now()
    journal = OrderJournal(engine, exchange, environment=environment, clock=clock)
    report = ReconcileReport()
    for account in accounts:
        found: list[Difference] = []
        with ExitStack() as held:
            if data_dir is not None:
                try:
                    held.enter_context(bot_lock(data_dir, account.name, wait_seconds=lock_wait))
                except BotBusy:
                    report.skipped[account.name] = (
                        "a trade loop is working its orders and reconciles them itself"
                    )
                    continue
            report.bots.append(account.name)
            _adopt_fills(journal, account, now, found)
            _settle_orders(journal, account, found)
            _adopt_orders(journal, account, found)
            _check_position(journal, account, found)
        for diff in found:
            record_event(
                engine,
                "WARNING",
                EventType.RECONCILE,
                diff.message,
                {"kind": diff.kind, **diff.details},
                bot=diff.bot,
                now=now,
            )
        report.differences.extend(found)
    if notifier is not None and report.differences:
        # One summary, not one alert per difference: a long outage can leave many.
        kinds = sorted({d.kind for d in report.differences})
        notifier.notify(
            "WARNING",
            "RECONCILE",
            f"{len(report.differences)} differences with the exchange were settled",
            {k: report.count(k) for k in kinds},
        )
    return report
