"""One sub-bot's step: read the state, run the strategy kernel, send what it decided.

A step at time ``t`` (ms):

1. **Sync** with the exchange: record new fills (deduplicated by exec id) and price the closing
   trades (:mod:`jiritsu.exchange.book`); read the position; settle open order rows; resume a
   row whose answer was lost (same client id: the exchange answers with the existing order) or
   drop it when it is no longer wanted (an entry leg past its plan's deadline, or of a halted
   bot); when settling may have moved the position, read fills and position again; read the
   active split-entry plan (:mod:`jiritsu.engine.plans`). The result is the kernel's state
   record, so a decision never misses an order this step resent.

   Bybit's execution list can lag behind a fill that the order, the position and the wallet
   already show, and a spot position is the book of recorded fills. So a step that resent a
   lost order, or that knows of a fill it has not recorded (an order row filled beyond its
   recorded fills, or a spot holding beyond the book), enters nothing new: it may still exit,
   and a later step records the fill and decides on it.
2. :func:`~jiritsu.strategy.step.manage`: protective exits, due legs, plan timeout, TP/SL.
3. At the close of a bar of the bot's timeframe (at most once per bar, and at most half a bar
   late): the strategy's signal, the :class:`~jiritsu.advisors.base.MarketSnapshot`, the advisor
   (not called while halted), the ``decisions`` row, then :func:`~jiritsu.strategy.step.decide`.
4. The orders go out through the :class:`~jiritsu.exchange.journal.OrderJournal` (written to
   ``orders`` before sending) in the kernel's order: cancel legs, exit, due legs, TP/SL, entry.

Idempotency: every order's client id is derived from (bot, decision bar) or (bot, step time),
so a second run over the same bar -- a timer firing twice, a restart -- re-derives the same ids
and the journal sends nothing twice. A decision already recorded for a bar is reused (the
advisor is not asked again).

A step never raises for one bot's exchange trouble: an exchange error ends the step as an
``EXCHANGE_ERROR`` event, a refused order is an ``ORDER_ERROR`` event, and both count towards
the exchange-failure breaker until a step whose exchange calls all succeed ends the run
(:func:`jiritsu.engine.risk.exchange_failures`). Database trouble does propagate: the loop
retries the whole step (it is idempotent) and stops safely when the database stays away.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from jiritsu.clock import from_ms
from jiritsu.events import EventType, record_event
from jiritsu.exchange.book import BookPosition, KeptBook, tradeable, update_trade_pnl
from jiritsu.exchange.errors import ExchangeError, ExchangeUnavailable, OrderRejected
from jiritsu.exchange.ids import client_order_id
from jiritsu.exchange.journal import RESUMABLE, apply_state
from jiritsu.exchange.types import CATEGORIES, AccountReads, OrderRequest, Side, one_of
from jiritsu.strategy import step as K
from jiritsu.strategy.contract import ACTION_NAMES, checked_signals
from jiritsu.strategy.exits import EXIT_REASON_NAMES
from jiritsu.strategy.params import (
    MINUTE_MS,
    P_ATR_PERIOD,
    P_MAX_HOLD_MS,
    P_SPLIT_STEP,
    P_TF_MS,
    P_TICK,
    SPLIT_PRICE,
    build_params,
)
from jiritsu.strategy.registry import resolve as resolve_strategy
from jiritsu.strategy.split import leg_due_ms, leg_limit_price

from .plans import (
    Plan,
    Specs,
    close_unsent_legs,
    exit_key,
    latest_plan,
    leg_client_id,
    plan_from_spec,
    plan_id_for,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.advisors.base import Advisor, Decision
    from jiritsu.advisors.record import DecisionBatch
    from jiritsu.config import LoadedConfig
    from jiritsu.engine.snapshot import SentimentCache
    from jiritsu.exchange.base import Exchange
    from jiritsu.exchange.journal import OrderJournal
    from jiritsu.exchange.types import Instrument
    from jiritsu.market.data import CandleFeed
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.engine")

FILL_LOOKBACK = timedelta(days=7)
FILL_OVERLAP = timedelta(hours=1)
_ACTIONS = ACTION_NAMES


@dataclass
class EngineContext:
    """What every bot of one process shares."""

    engine: Engine
    exchange: Exchange
    journal: OrderJournal
    feed: CandleFeed
    loaded: LoadedConfig
    notifier: Notifier | None
    environment: str
    sentiment: SentimentCache | None = None
    probe_changes: bool = False  # paper: the loop tells the bots when fills happened
    # a replay's decision rows that no order refers to, written together (None: each at once)
    decisions: DecisionBatch | None = None
    # Called at a decision step right before deciding; True: the bot is halted now (the
    # loss-streak breaker tripped). The kernel's backtest driver does the same.
    before_decide: Callable[[BotRunner, int], bool] | None = None

    @property
    def settings(self) -> Any:
        return self.loaded.settings


@dataclass
class LiveState:
    """The kernel's state record rebuilt from the exchange and the database."""

    state: np.ndarray
    plan: Plan | None
    book: BookPosition
    open_rows: int  # order rows still open
    position_side: int
    position_qty: Decimal
    unbooked: Decimal = Decimal(0)  # spot: the holding beyond the book (fills not yet listed)


@dataclass(frozen=True)
class _Settled:
    """What settling the open order rows found (see :meth:`BotRunner._settle_rows`)."""

    open_rows: int = 0  # rows still open
    had_rows: bool = False
    moved: bool = False  # the exchange may hold fills the position read before did not show
    changed: bool = False  # a row changed (the plan's legs may have)
    exit_pending: bool = False  # an open closing order outside any plan


@dataclass(frozen=True)
class _Held:
    """A position as the step sees it (spot: the book's, capped by the exchange's holding)."""

    side: int
    qty: Decimal
    avg: Decimal
    tp: float = 0.0  # linear: the exchange-side TP/SL of the position
    sl: float = 0.0
    unbooked: Decimal = Decimal(0)  # spot: the exchange's holding beyond the book's qty


@dataclass
class StepReport:
    bot: str
    t: int
    decided: bool = False
    action: str | None = None
    acted: bool = False
    orders: list[str] = field(default_factory=list)
    error: str | None = None
    halted: bool = False
    new_fills: int = 0
    refused: int = 0  # orders the exchange refused in this step

    @property
    def failed(self) -> bool:
        """An exchange call of this step failed (it counts towards the breaker)."""
        return self.error is not None or self.refused > 0


def as_qty(x: float, inst: Instrument) -> Decimal:
    """A kernel quantity (a float multiple of the step) as the exact Decimal multiple."""
    steps = (Decimal(repr(float(x))) / inst.qty_step).to_integral_value(rounding=ROUND_HALF_UP)
    return (steps * inst.qty_step).quantize(inst.qty_step)


def as_price(x: float, inst: Instrument) -> Decimal:
    return inst.round_price(Decimal(repr(float(x))))


@functools.cache
def _unbooked_selects() -> tuple[Any, Any]:
    """A bot's order rows created since ``:since`` (client id, filled quantity) and the fills of
    the client ids ``:cids``: built once, a bot asks before every entry after a fill."""
    import sqlalchemy as sa

    from jiritsu.db.models import Execution, Order

    cids: sa.BindParameter[str] = sa.bindparam("cids", expanding=True)
    return (
        sa.select(Order.client_order_id, Order.filled_qty).where(
            Order.bot == sa.bindparam("bot"), Order.created_at >= sa.bindparam("since")
        ),
        sa.select(Execution.client_order_id, Execution.qty).where(
            Execution.client_order_id.in_(cids)
        ),
    )


def _ms(when: datetime | None) -> float:
    return 0.0 if when is None else float(round(when.timestamp() * 1000))


class BotRunner:
    """One sub-bot: see the module docstring."""

    def __init__(self, ctx: EngineContext, bot: Any, advisor: Advisor | None = None) -> None:
        self.ctx = ctx
        self.bot = bot
        self.name: str = bot.name
        self.inst = ctx.exchange.instrument(bot.symbol, bot.category)
        self.params = build_params(bot, ctx.settings, self.inst)
        self.strategy, self.strategy_params = resolve_strategy(ctx.settings, bot)
        if advisor is None:
            from jiritsu.advisors.factory import build_advisor

            advisor = build_advisor(bot, ctx.loaded, ctx.engine, ctx.notifier)
        self.advisor = advisor
        self._cached: LiveState | None = None
        self.dirty = True
        self.last_decided_close = 0
        self.minute_work = False  # wants a step at every minute (plans, exits, spot stops)
        # (take profit, stop loss) when the minute work is only a spot holding's watched levels:
        # a minute whose bar reaches neither is a step that does nothing (a replay skips it)
        self.spot_levels: tuple[float, float] | None = None
        self.next_due: int | None = None  # a known time of interest (a leg, the max hold)
        self.guarded = False  # a position with exchange-side TP/SL (can change at any bar)
        self.has_orders = False
        self._first_decision = True  # look for a decision recorded by an earlier process
        self.unchecked_fills = True  # fills not yet seen by the loss-streak breaker
        self._newest_fill: datetime | None = None
        # exec id -> time of the fills read since the newest's lookback, all stored by now
        # (recorded, or found already known): not handed to the journal again
        self._stored: dict[str, datetime] = {}
        self._plan_specs: Specs = {}  # the plans' specs by decision id, as read
        # the trade book between re-reads (None: rebuild it from every recorded fill)
        self._book: KeptBook | None = None
        self._refused = 0  # orders refused in the current step
        self._resent = False  # the current step resent a lost order
        self.halted = False  # as of the latest step: a halted bot resends no lost entry leg
        self._failures: int | None = None  # failures in a row (None: ask the database)

    def reconfigure(self, bot: Any, loaded: LoadedConfig, advisor: Advisor | None = None) -> None:
        """New settings (SIGHUP): parameters and advisor rebuilt; the state is re-read."""
        self.bot = bot
        self.params = build_params(bot, loaded.settings, self.inst)
        self.strategy, self.strategy_params = resolve_strategy(loaded.settings, bot)
        if advisor is None:
            from jiritsu.advisors.factory import build_advisor

            advisor = build_advisor(bot, loaded, self.ctx.engine, self.ctx.notifier)
        self.advisor = advisor
        self.resync()

    def resync(self) -> None:
        """Re-read everything at the next step, the trade book rebuilt from every recorded
        fill: something besides this runner's own reads (a reconciliation, a failed step, a
        reload) may have recorded fills it would not otherwise look for."""
        self.dirty = True
        self._book = None

    # --- scheduling ----------------------------------------------------------------------

    @property
    def tf_ms(self) -> int:
        return int(self.params[P_TF_MS])

    def next_close(self, t: int) -> int:
        return (t // self.tf_ms + 1) * self.tf_ms

    def wants(self, t: int) -> tuple[bool, bool]:
        """(step now, decide now) for a step at ``t``."""
        decide = t % self.tf_ms == 0 or self.last_decided_close < (t // self.tf_ms) * self.tf_ms
        minute = t % MINUTE_MS == 0 and self.minute_work
        due = self.next_due is not None and self.next_due <= t
        return decide or minute or due, decide

    def next_wake(self, t: int, *, watched: bool = True) -> int:
        """The next time this bot wants a step (``watched=False``: not counting the minutes it
        only watches a spot holding's levels, see :attr:`spot_levels`)."""
        wake = self.next_close(t)
        if self.minute_work and (watched or self.spot_levels is None):
            wake = min(wake, (t // MINUTE_MS + 1) * MINUTE_MS)
        if self.next_due is not None and self.next_due > t:
            wake = min(wake, self.next_due)
        return wake

    # --- reading the state ---------------------------------------------------------------

    def _fills(self, t: int) -> tuple[int, set[str], AccountReads | None]:
        """Record new fills; returns (how many, their exchange order ids, the account's reads
        when the exchange reads fills, positions and open orders together)."""
        import sqlalchemy as sa

        from jiritsu.db.models import Execution

        newest = self._newest_fill
        if newest is None:
            with self.ctx.engine.connect() as conn:
                newest = conn.execute(
                    sa.select(sa.func.max(Execution.exec_time)).where(
                        Execution.bot == self.name, Execution.symbol == self.bot.symbol
                    )
                ).scalar()
        since = (newest - FILL_OVERLAP) if newest else from_ms(t) - FILL_LOOKBACK
        ex, bot = self.ctx.exchange, self.bot
        reads = ex.account_reads(self.name, bot.category, bot.symbol, since=since)
        if reads is not None:
            fills = reads.executions
        else:
            fills = ex.executions(self.name, bot.category, symbol=bot.symbol, since=since)
        unseen = [f for f in fills if f.exec_id not in self._stored]
        recorded = self.ctx.journal.record_fills(self.name, unseen)
        self._stored = {k: v for k, v in self._stored.items() if v >= since}
        self._stored.update((f.exec_id, f.time) for f in fills)
        times = [f.time for f in fills]
        if times:
            self._newest_fill = max([*times, *([newest] if newest else [])])
        return len(recorded), {r.fill.exchange_order_id for r in recorded}, reads

    def _request(self, row: Any) -> OrderRequest:
        return OrderRequest(
            client_order_id=row.client_order_id,
            symbol=row.symbol,
            side=row.side,
            qty=row.qty,
            order_type=row.order_type,
            price=row.price,
            reduce_only=bool(row.reduce_only),
            take_profit=row.take_profit,
            stop_loss=row.stop_loss,
            time_in_force=row.time_in_force,
        )

    def _settle_rows(
        self,
        t: int,
        plan: Plan | None,
        position_open: bool,
        reads: AccountReads | None,
        *,
        resend: bool,
    ) -> _Settled:
        """Bring the bot's open order rows up to date: each row is asked about by its client
        id, and one whose answer was lost is resent with that same id when it is still wanted
        (only if ``resend``), else dropped. ``reads``: the open orders, and the orders of the
        fills, read with the position, when the exchange reads them so; an answer read with
        the position cannot show a fill that position missed, one asked afterwards can."""
        import sqlalchemy as sa

        from jiritsu.db.engine import session_scope
        from jiritsu.db.models import OPEN_ORDER_STATUSES, Order

        ex = self.ctx.exchange
        bot = self.bot
        with session_scope(self.ctx.engine) as session:
            rows = session.scalars(
                sa.select(Order)
                .where(Order.bot == self.name, Order.status.in_(OPEN_ORDER_STATUSES))
                .order_by(Order.id)
            ).all()
            if not rows:
                return _Settled()
            if reads is not None:
                states = reads.open_orders
            else:
                states = ex.open_orders(self.name, bot.category, bot.symbol)
            live = {s.client_order_id: s for s in states if s.client_order_id}
            lost: list[Any] = []
            moved = changed = False
            for row in rows:
                state = live.get(row.client_order_id)
                with_position = reads is not None and state is not None
                same_market = (row.category, row.symbol) == (bot.category, bot.symbol)
                if state is None and reads is not None and same_market:
                    state = reads.orders.get(row.client_order_id)
                    with_position = state is not None
                if state is None:
                    category = one_of(row.category, CATEGORIES, "category")
                    state = ex.get_order(self.name, category, row.symbol, row.client_order_id)
                if state is not None:
                    if apply_state(row, state):
                        changed = True
                        moved = moved or not with_position
                    continue
                changed = True
                if row.status not in RESUMABLE:
                    row.status = "cancelled"
                    row.error = "vanished from the exchange"
                    continue
                wanted = False
                if row.plan_id is not None and plan is not None and row.plan_id == plan.plan_id:
                    late = bool(plan.deadline and t + MINUTE_MS > plan.deadline)
                    wanted = not (late or self.halted)
                elif row.plan_id is None and row.reduce_only:
                    wanted = position_open
                if wanted:
                    lost.append(self._request(row))
                else:
                    row.status = "cancelled"
                    row.error = "never reached the exchange; no longer wanted"
        if not resend:  # a sync only: the next step resends what is still wanted
            lost = []
        if not lost:  # the rows as settled are the bot's open rows
            still = [r for r in rows if r.status in OPEN_ORDER_STATUSES]
            exit_pending = any(r.plan_id is None and r.reduce_only for r in still)
            return _Settled(len(still), True, moved, changed, exit_pending)
        for request in lost:  # outside the session: submit writes the rows itself
            log.warning(
                "%s: resending %s (its answer was lost)", self.name, request.client_order_id
            )
            try:
                self.ctx.journal.submit(self.name, bot.category, request)
            except OrderRejected as exc:
                self._order_error(request.client_order_id, exc, t)
            self._resent = True
        with self.ctx.engine.connect() as conn:
            still_open = conn.execute(
                sa.select(sa.func.count()).where(
                    Order.bot == self.name, Order.status.in_(OPEN_ORDER_STATUSES)
                )
            ).scalar_one()
        return _Settled(
            int(still_open), True, True, True, bool(still_open and self._exit_pending())
        )

    def _exit_pending(self) -> bool:
        import sqlalchemy as sa

        from jiritsu.db.models import OPEN_ORDER_STATUSES, Order

        with self.ctx.engine.connect() as conn:
            found = conn.execute(
                sa.select(Order.id)
                .where(
                    Order.bot == self.name,
                    Order.plan_id.is_(None),
                    Order.reduce_only.is_(True),
                    Order.status.in_(OPEN_ORDER_STATUSES),
                )
                .limit(1)
            ).scalar()
        return found is not None

    def _position(self, t: int) -> tuple[int, _Held, AccountReads | None]:
        """Record new fills, then read the position; returns (new fills, the position, the
        account's reads when the exchange gave fills, positions and open orders together)."""
        bot = self.bot
        count, touched, reads = self._fills(t)
        if count:
            self.unchecked_fills = True
        if count or self._book is None:
            kept, self._book = self._book, None  # a failure below leaves a rebuild to the next
            self._book = update_trade_pnl(self.ctx.engine, self.name, self.inst, touched, kept)
        book = self._book.pos
        if reads is not None:
            positions = reads.positions
        else:
            positions = self.ctx.exchange.positions(self.name, bot.category, bot.symbol)
        if bot.category == "spot":
            # the book knows the cost basis; the exchange's holding caps what can be sold
            held = sum((p.size for p in positions), Decimal(0))
            qty = min(book.qty, held) if book.side > 0 else Decimal(0)
            return (
                count,
                _Held(book.side if qty > 0 else 0, qty, book.avg, unbooked=held - qty),
                reads,
            )
        for p in positions:
            if p.side and p.size > 0:
                tp, sl = float(p.take_profit or 0), float(p.stop_loss or 0)
                side = 1 if p.side == "Buy" else -1
                return count, _Held(side, p.size, p.avg_price, tp, sl), reads
        return count, _Held(0, Decimal(0), Decimal(0)), reads

    def read_state(self, t: int, *, resend: bool = True) -> tuple[LiveState, int]:
        """Sync with the exchange and rebuild the kernel's state; returns (state, new fills).

        The open order rows are settled before the state is final: when that may have moved
        the position (an order found filled, a lost order resent with its client id), the fills
        and the position are read again, since a state without the resent entry would let this
        very step decide a second entry beside it. ``resend=False`` (the syncs after a tick, at
        shutdown and before a reconciliation) asks and sends nothing: the bot's next step
        resends what is still wanted, and its failures count there.
        """
        count, held, reads = self._position(t)
        plan = latest_plan(self.ctx.engine, self.name, specs=self._plan_specs)
        position_open = held.side != 0 and tradeable(held.qty, held.avg, self.inst) > 0
        settled = self._settle_rows(t, plan, position_open, reads, resend=resend)
        if settled.moved:
            more, held, _ = self._position(t)
            count += more
            position_open = held.side != 0 and tradeable(held.qty, held.avg, self.inst) > 0
        if settled.changed:  # settling moved the plan's legs; the fills were booked before
            plan = latest_plan(self.ctx.engine, self.name, specs=self._plan_specs)
        open_rows = settled.open_rows
        assert self._book is not None
        book = self._book.pos
        side, qty, avg = held.side, held.qty, held.avg
        st = K.new_state()
        st[K.S_SIDE] = side
        st[K.S_QTY] = float(qty)
        st[K.S_AVG] = float(avg)
        st[K.S_OPENED] = _ms(book.opened) if book.side == side else 0.0
        if st[K.S_OPENED] == 0.0 and position_open and book.last_fill is not None:
            st[K.S_OPENED] = _ms(book.last_fill)
        st[K.S_ENTRY_FEES] = float(book.entry_fees)
        st[K.S_TP] = held.tp
        st[K.S_SL] = held.sl
        st[K.S_EXIT_PENDING] = 1.0 if settled.exit_pending else 0.0
        st[K.S_LAST_DECIDED] = float(self.last_decided_close)
        if position_open:
            owner = plan if (plan is not None and plan.side == side) else None
            if owner is None:
                owner = latest_plan(self.ctx.engine, self.name, side=side, specs=self._plan_specs)
            if owner is not None:
                st[K.S_PLAN_ATR] = owner.atr
        if plan is not None and not plan.complete:
            st[K.S_PLAN] = 1.0
            st[K.S_PLAN_SIDE] = plan.side
            st[K.S_PLAN_T0] = plan.t0
            st[K.S_PLAN_N] = plan.n
            st[K.S_PLAN_METHOD] = plan.method
            st[K.S_PLAN_INTERVAL] = plan.interval_ms
            st[K.S_PLAN_DEADLINE] = plan.deadline
            st[K.S_PLAN_LEG_QTY] = float(plan.leg_qty)
            st[K.S_PLAN_REF] = plan.ref
            st[K.S_PLAN_SENT] = plan.sent_mask
            st[K.S_PLAN_DONE] = plan.done_mask
            st[K.S_PLAN_FILLED] = plan.filled_mask
            if not position_open or plan.side == side:
                st[K.S_PLAN_ATR] = plan.atr
        live = LiveState(st, plan, book, open_rows, side, qty, held.unbooked)
        return live, count

    # --- the step ------------------------------------------------------------------------

    def step(self, t: int, *, halted: bool, decide: bool, fresh: bool = False) -> StepReport:
        """One step at ``t`` (see the module docstring). ``fresh`` forces a full sync."""
        report = StepReport(self.name, t, halted=halted)
        self._refused = 0
        self._resent = False
        self.halted = halted
        try:
            self._step(t, halted, decide, fresh, report)
        except ExchangeUnavailable as exc:
            self.resync()
            report.error = f"exchange unavailable: {exc}"
            record_event(
                self.ctx.engine, "ERROR", EventType.EXCHANGE_ERROR, f"step failed: {exc}",
                {"t": from_ms(t)}, bot=self.name, notifier=self.ctx.notifier, now=from_ms(t),
            )  # fmt: skip
        except ExchangeError as exc:
            self.resync()
            report.error = f"{type(exc).__name__}: {exc}"
            record_event(
                self.ctx.engine, "ERROR", EventType.EXCHANGE_ERROR, f"step failed: {exc}",
                {"t": from_ms(t), "kind": type(exc).__name__}, bot=self.name,
                notifier=self.ctx.notifier, now=from_ms(t),
            )  # fmt: skip
        report.refused = self._refused
        self._count_failures(report, t)
        return report

    def _count_failures(self, report: StepReport, t: int) -> None:
        """A clean step after failures ends their run (recorded, so restarts know it too)."""
        from jiritsu.engine.risk import exchange_failures, record_recovery

        if report.failed:
            self._failures = None
            return
        if self._failures is None:
            self._failures = exchange_failures(self.ctx.engine, self.name)
        if self._failures:
            record_recovery(self.ctx.engine, self.name, self._failures, now=from_ms(t),
                            notifier=self.ctx.notifier)  # fmt: skip
        self._failures = 0

    def _step(self, t: int, halted: bool, decide: bool, fresh: bool, report: StepReport) -> None:
        if fresh:
            self.resync()
        if self.dirty or self._cached is None or not self.ctx.probe_changes:
            live, report.new_fills = self.read_state(t)
            self.dirty = False
        else:
            live = self._cached
            live = LiveState(live.state.copy(), live.plan, live.book, live.open_rows,
                             live.position_side, live.position_qty, live.unbooked)  # fmt: skip
        st = live.state
        minute = self.ctx.feed.minute_bars(self.bot.symbol, self.bot.category, t, 1)
        bar = minute[-1] if minute else None
        last = bar.close if bar is not None else 0.0
        closed_now = bar is not None and bar.ts == t - MINUTE_MS
        out = K.new_out()
        K.manage(
            float(t),
            float(bar.ts) if closed_now and bar else -1.0,
            bar.open if closed_now and bar else 0.0,
            bar.high if closed_now and bar else 0.0,
            bar.low if closed_now and bar else 0.0,
            last,
            halted,
            self.params,
            st,
            out,
        )
        sent = self._execute(out, t, live, None, None, report)
        if decide:
            sent += self._decide(t, halted, live, last, report)
        self._schedule(t, live)
        if sent:
            self.dirty = True
        self._cached = live

    def _schedule(self, t: int, live: LiveState) -> None:
        st = live.state
        spot_guard = (
            self.bot.category == "spot"
            and st[K.S_SIDE] != 0
            and self.params[K.P_TPSL] > 0
            and st[K.S_PLAN_ATR] > 0
        )
        self.has_orders = live.open_rows > 0
        self.minute_work = bool(
            st[K.S_PLAN] > 0 or st[K.S_EXIT_PENDING] > 0 or live.open_rows > 0 or spot_guard
        )
        self.guarded = bool(st[K.S_SIDE] != 0 and (st[K.S_TP] > 0 or st[K.S_SL] > 0))
        due: int | None = None
        if st[K.S_PLAN] > 0 and st[K.S_PLAN_METHOD] != SPLIT_PRICE:
            for i in range(1, int(st[K.S_PLAN_N])):
                if not (int(st[K.S_PLAN_SENT]) >> i) & 1:
                    due = int(leg_due_ms(st[K.S_PLAN_T0], i, st[K.S_PLAN_INTERVAL]))
                    break
        max_hold = self.params[P_MAX_HOLD_MS]
        if max_hold > 0 and st[K.S_SIDE] != 0 and st[K.S_OPENED] > 0:
            hold_due = int(st[K.S_OPENED] + max_hold)
            due = hold_due if due is None else min(due, hold_due)
        self.next_due = due if (due is not None and due > t) else None
        if due is not None and due <= t:
            self.minute_work = True
        self.spot_levels = None
        other_work = st[K.S_PLAN] > 0 or st[K.S_EXIT_PENDING] > 0 or live.open_rows > 0
        if spot_guard and not other_work and (due is None or due > t):
            p = self.params
            self.spot_levels = K.tpsl_levels(
                st[K.S_AVG], int(st[K.S_SIDE]), st[K.S_PLAN_ATR], p[K.P_TP_RATIO],
                p[K.P_SL_RATIO], p[P_TICK],
            )  # fmt: skip

    # --- deciding ------------------------------------------------------------------------

    def _existing_decision(self, bar_ts: int) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.orm import Session

        from jiritsu.db.models import Decision as Row

        if self.ctx.decisions is not None:
            self.ctx.decisions.flush()
        with Session(self.ctx.engine) as session:
            return session.scalars(
                sa.select(Row)
                .where(Row.bot == self.name, Row.bar_ts == from_ms(bar_ts))
                .order_by(Row.id.desc())
                .limit(1)
            ).first()

    def _position_view(self, live: LiveState, last: float) -> dict[str, Any]:
        st = live.state
        side = int(st[K.S_SIDE])
        upl = side * st[K.S_QTY] * (last - st[K.S_AVG]) if side and last > 0 else 0.0
        return {
            "side": "Buy" if side > 0 else "Sell" if side < 0 else "",
            "size": float(st[K.S_QTY]) if side else 0.0,
            "avg_price": float(st[K.S_AVG]) if side else 0.0,
            "unrealised_pnl": round(upl, 8),
        }

    def _decide(
        self, t: int, halted: bool, live: LiveState, last: float, report: StepReport
    ) -> int:
        from jiritsu.advisors.base import Decision
        from jiritsu.engine.snapshot import allowed_actions, build_snapshot

        bars = self.ctx.feed.bot_bars(self.bot, self.params, t)
        if bars is None:
            return 0
        close_ms = bars.close_ms
        if close_ms <= self.last_decided_close:
            return 0
        self.last_decided_close = close_ms
        if t - close_ms > K.decision_stale_ms(self.tf_ms):
            log.info("%s: bar %s closed too long ago to decide", self.name, from_ms(bars.bar_ts))
            return 0
        st = live.state
        report.decided = True
        if not halted and self.ctx.before_decide is not None and self.unchecked_fills:
            halted = self.ctx.before_decide(self, t)
            self.unchecked_fills = halted  # a halt's lift starts the count afresh anyway
            report.halted = halted
        existing = self._existing_decision(bars.bar_ts) if self._first_decision else None
        self._first_decision = False
        series, k = bars.series, bars.k
        actions, confidences = checked_signals(self.strategy, series, self.strategy_params)
        code, conf = int(actions[k]), float(confidences[k])
        mask = K.allowed_mask(st, self.params, halted)
        decision_id: int | None = None
        if existing is not None:
            decision = Decision(
                existing.action, float(existing.confidence or 0.0), existing.reason or "",
                existing.provider, outcome=existing.outcome or "ok",
            )  # fmt: skip
            decision_id = int(existing.id)
            snapshot = None
        else:
            reason = self.strategy.explain(series, self.strategy_params, k)
            sentiment = self.ctx.sentiment.get(from_ms(t)) if self.ctx.sentiment else (None, 0)
            snapshot = build_snapshot(
                self.bot,
                bars,
                position=self._position_view(live, last),
                allowed=allowed_actions(mask),
                rule_signal=(_ACTIONS[code], conf, reason),
                indicators=self.strategy.indicators(series, self.strategy_params),
                sentiment=sentiment,
            )
            if halted:
                decision = Decision(
                    None, 0.0, "halted: the advisor is not asked", self.advisor.provider,
                    outcome="skipped",
                )  # fmt: skip
            else:
                decision = self.advisor.decide(snapshot)
        action = 0
        if decision.outcome == "ok" and decision.action in ("BUY", "SELL"):
            action = 1 if decision.action == "BUY" else -1
        confidence = float(decision.confidence or 0.0)
        available = 0.0
        held_back: str | None = None
        if action and K.action_allowed(mask, action) and self._may_enter(st, action):
            held_back = self._unbooked_fill(t, live, last)
            if held_back is None:
                bal = self.ctx.exchange.balance(self.name, self.inst.quote_coin)
                available = float(bal.available)
            else:  # no room for a new entry (sized on nothing); an exit still goes
                record_event(
                    self.ctx.engine, "WARNING", EventType.ORDER,
                    f"no new entry in this step: {held_back}; a later step records the fill",
                    None, bot=self.name, now=from_ms(t),
                )  # fmt: skip
        out = K.new_out()
        K.decide(
            float(t), float(close_ms), action, confidence, float(bars.close[bars.k]),
            float(series.atr(int(self.params[P_ATR_PERIOD]))[k]), available, halted, self.params,
            st, out,
        )  # fmt: skip
        report.action = decision.action
        report.acted = out[K.O_ACTION] != 0
        plan: Plan | None = None
        if out[K.O_ENTER] != 0:
            plan = self._new_plan(out, t, bars.bar_ts, decision.reason)
        if existing is None:
            from jiritsu.advisors.record import decision_row, record_decision

            view = self._engine_view(out, action, confidence, mask, plan, available)
            if held_back is not None and out[K.O_IGNORED] == K.IGN_NO_SIZE:
                view["why_not"] = f"fill pending: {held_back}"
            assert snapshot is not None
            batch = self.ctx.decisions
            if batch is not None and plan is None and not out[K.O_EXIT_QTY] > 0:
                # no order of this step carries the decision's id: it may wait in the batch
                batch.add(decision_row(self.name, snapshot, decision, engine_view=view,
                                       now=from_ms(t)))  # fmt: skip
            else:
                decision_id = record_decision(
                    self.ctx.engine, self.name, snapshot, decision, engine_view=view,
                    now=from_ms(t), batch=batch,
                )  # fmt: skip
        elif plan is not None and decision_id is not None:
            self._store_plan(decision_id, self._engine_view(out, action, confidence, mask, plan,
                                                            available))  # fmt: skip
        if plan is not None:
            plan.decision_id = decision_id
        return self._execute(out, t, live, plan, decision, report, decision_id=decision_id)

    def _store_plan(self, decision_id: int, view: dict[str, Any]) -> None:
        """A reused decision that now starts a plan gets the plan's spec (restarts read it)."""
        from jiritsu.advisors.record import jsonable
        from jiritsu.db.engine import session_scope
        from jiritsu.db.models import Decision as Row

        self._plan_specs.pop(decision_id, None)
        with session_scope(self.ctx.engine) as session:
            row = session.get(Row, decision_id)
            if row is not None:
                summary = dict(row.input_summary or {})
                summary["engine"] = jsonable(view)
                row.input_summary = summary

    def _unbooked_fill(self, t: int, live: LiveState, last: float) -> str | None:
        """Why the exchange may hold a fill of this bot that the state does not (None: none
        known): an order resent in this step, a spot holding beyond the book (more than dust),
        or an order row filled beyond its recorded fills (rows of the fill lookback)."""
        if self._resent:
            return "a lost order was resent in this step"
        price = Decimal(repr(last)) if last > 0 else live.book.avg
        if live.unbooked > 0 and tradeable(live.unbooked, price, self.inst) > 0:
            return f"{live.unbooked} {self.inst.base_coin} held beyond the recorded fills"
        recent_orders, their_fills = _unbooked_selects()
        since = from_ms(t) - FILL_LOOKBACK
        with self.ctx.engine.connect() as conn:
            recent = conn.execute(recent_orders, {"bot": self.name, "since": since}).all()
            filled = [(cid, qty) for cid, qty in recent if qty and qty > 0]
            if not filled:
                return None
            booked: dict[str | None, Decimal] = {}
            for cid, qty in conn.execute(their_fills, {"cids": [cid for cid, _ in filled]}):
                booked[cid] = booked.get(cid, Decimal(0)) + qty
        for cid, qty in filled:
            recorded = booked.get(cid, Decimal(0))
            if qty > recorded:
                return f"order {cid} filled {qty}, {recorded} of it recorded"
        return None

    def _may_enter(self, st: np.ndarray, action: int) -> bool:
        side = K.effective_side(st, self.params)
        return side == 0 or (side == -action and K.can_open(action, self.params))

    def _new_plan(self, out: np.ndarray, t: int, bar_ts: int, reason: str | None) -> Plan:
        spec = {
            "plan_id": plan_id_for(self.name, bar_ts),
            "bar_ts": bar_ts,
            "side": int(out[K.O_ENTER]),
            "t0": t,
            "n": int(out[K.O_ENTER_N]),
            "method": "price" if out[K.O_ENTER_METHOD] == SPLIT_PRICE else "time",
            "interval_ms": int(self.params[K.P_SPLIT_INTERVAL_MS]),
            "deadline": int(out[K.O_DEADLINE]),
            "leg_qty": str(as_qty(out[K.O_ENTER_LEG_QTY], self.inst)),
            "ref": float(out[K.O_ENTER_REF]),
            "atr": float(out[K.O_ENTER_ATR]),
            "tp": float(out[K.O_ENTER_TP]),
            "sl": float(out[K.O_ENTER_SL]),
        }
        return plan_from_spec(spec, self.name, None, reason)

    def _engine_view(
        self,
        out: np.ndarray,
        action: int,
        confidence: float,
        mask: int,
        plan: Plan | None,
        available: float,
    ) -> dict[str, Any]:
        from jiritsu.strategy.sizing import BUCKET_NAMES

        ignored = int(out[K.O_IGNORED])
        view: dict[str, Any] = {
            "action": _ACTIONS[action],
            "confidence": confidence,
            "acted": bool(out[K.O_ACTION] != 0),
            "why_not": K.IGN_NAMES[ignored] if ignored else None,
            "allowed": [a for a, bit in (("BUY", K.ALLOW_BUY), ("SELL", K.ALLOW_SELL))
                        if mask & bit] + ["HOLD"],
        }  # fmt: skip
        if out[K.O_EXIT_QTY] > 0:
            view["exit"] = {
                "qty": str(as_qty(out[K.O_EXIT_QTY], self.inst)),
                "reason": EXIT_REASON_NAMES[int(out[K.O_EXIT_REASON])],
            }
        if plan is not None:
            bucket = int(out[K.O_ENTER_BUCKET])
            view["plan"] = plan.spec()
            view["sizing"] = {
                "bucket": BUCKET_NAMES[bucket] if bucket >= 0 else "off",
                "multiplier": float(out[K.O_ENTER_MULT]),
                "available": available,
                "total_qty": str(plan.leg_qty * plan.n),
            }
        return view

    # --- executing -----------------------------------------------------------------------

    def _order_error(self, cid: str, exc: Exception, t: int) -> None:
        self._refused += 1
        record_event(
            self.ctx.engine, "ERROR", EventType.ORDER_ERROR, f"order {cid} refused: {exc}",
            {"client_order_id": cid}, bot=self.name, notifier=self.ctx.notifier, now=from_ms(t),
        )  # fmt: skip

    def _submit(
        self,
        t: int,
        request: OrderRequest,
        report: StepReport,
        *,
        decision_id: int | None = None,
        plan_id: str | None = None,
        leg_index: int | None = None,
        reason: str | None = None,
    ) -> bool:
        try:
            state = self.ctx.journal.submit(
                self.name, self.bot.category, request, decision_id=decision_id,
                plan_id=plan_id, leg_index=leg_index, reason=reason,
            )  # fmt: skip
        except OrderRejected as exc:
            self._order_error(request.client_order_id, exc, t)
            return False
        if state.status == "cancelled" and state.exchange_order_id is None:
            return False  # settled earlier without reaching the exchange: not sent again
        report.orders.append(
            f"{request.side} {request.qty} {request.order_type}"
            + (f" @ {request.price}" if request.price is not None else "")
            + (f" leg {leg_index}" if leg_index is not None else "")
        )
        return True

    def _execute(
        self,
        out: np.ndarray,
        t: int,
        live: LiveState,
        plan: Plan | None,
        decision: Decision | None,
        report: StepReport,
        *,
        decision_id: int | None = None,
    ) -> int:
        """Carry out the kernel's ``out`` in its order; returns the number of exchange writes."""
        bot = self.bot
        ex = self.ctx.exchange
        current = live.plan
        writes = 0
        if out[K.O_CANCEL] > 0 and current is not None:
            for leg in current.open_legs():
                state = ex.cancel_order(
                    self.name, bot.category, bot.symbol, client_order_id=leg.client_order_id
                )
                writes += 1
                self._mark_cancelled(leg.client_order_id, state)
        if out[K.O_PLAN_END] > 0 and current is not None:
            why = "the plan ended (timeout, halt or exit)"
            writes += close_unsent_legs(
                self.ctx.engine, current, symbol=bot.symbol, category=bot.category,
                environment=self.ctx.environment, why=why,
            )  # fmt: skip
        if out[K.O_EXIT_QTY] > 0:
            side: Side = "Buy" if out[K.O_EXIT_SIDE] > 0 else "Sell"
            why = EXIT_REASON_NAMES[int(out[K.O_EXIT_REASON])]
            text = f"exit ({why})" + (f": {decision.reason}" if decision is not None else "")
            request = OrderRequest(
                client_order_id=client_order_id(self.name, exit_key(t), 0),
                symbol=bot.symbol,
                side=side,
                qty=as_qty(out[K.O_EXIT_QTY], self.inst),
                reduce_only=True,
            )
            writes += 1
            if self._submit(t, request, report, decision_id=decision_id, reason=text):
                record_event(
                    self.ctx.engine, "INFO", EventType.ORDER, f"closing {request.qty} ({why})",
                    {"side": side, "qty": request.qty}, bot=self.name, now=from_ms(t),
                )  # fmt: skip
        first, last_leg = int(out[K.O_SEND_FIRST]), int(out[K.O_SEND_LAST])
        if last_leg > first and current is not None:
            for i in range(first, last_leg):
                writes += 1
                self._send_leg(t, current, i, report)
        if out[K.O_SET_TPSL] > 0:
            writes += 1
            try:
                ex.set_trading_stop(
                    self.name, bot.category, bot.symbol,
                    take_profit=as_price(out[K.O_TP], self.inst) if out[K.O_TP] > 0 else None,
                    stop_loss=as_price(out[K.O_SL], self.inst) if out[K.O_SL] > 0 else None,
                )  # fmt: skip
            except OrderRejected as exc:
                record_event(
                    self.ctx.engine, "WARNING", EventType.ORDER_ERROR,
                    f"TP/SL {out[K.O_TP]:.8g}/{out[K.O_SL]:.8g} refused: {exc}", None,
                    bot=self.name, now=from_ms(t),
                )  # fmt: skip
        if out[K.O_ENTER] != 0 and plan is not None:
            writes += self._start_plan(t, plan, report)
        return writes

    def _mark_cancelled(self, cid: str, state: Any) -> None:
        import sqlalchemy as sa

        from jiritsu.db.engine import session_scope
        from jiritsu.db.models import Order

        if state is not None:  # the exchange's answer: its columns that differ, as apply_state
            self.ctx.journal.store_state(cid, state)
            return
        with session_scope(self.ctx.engine) as session:
            # already final on the exchange: the next sync reads how it ended
            row = session.scalars(sa.select(Order).where(Order.client_order_id == cid)).one()
            category = one_of(row.category, CATEGORIES, "category")
            found = self.ctx.exchange.get_order(self.name, category, row.symbol, cid)
            if found is not None:
                apply_state(row, found)
            elif row.status in ("pending", "sent", "unknown"):
                row.status = "cancelled"
                row.error = "cancelled before it reached the exchange"

    def _leg_request(self, plan: Plan, i: int) -> OrderRequest:
        side: Side = "Buy" if plan.side > 0 else "Sell"
        cid = leg_client_id(self.name, plan.bar_ts, i)
        if plan.method == SPLIT_PRICE and i > 0:
            price = leg_limit_price(
                plan.ref, plan.side, i, self.params[P_SPLIT_STEP], self.params[P_TICK]
            )
            return OrderRequest(
                cid, self.bot.symbol, side, plan.leg_qty, "Limit", as_price(price, self.inst),
                time_in_force="GTC",
            )  # fmt: skip
        tp = sl = None
        if i == 0 and self.bot.category == "linear":
            tp = as_price(plan.tp, self.inst) if plan.tp > 0 else None
            sl = as_price(plan.sl, self.inst) if plan.sl > 0 else None
        return OrderRequest(cid, self.bot.symbol, side, plan.leg_qty, take_profit=tp, stop_loss=sl)

    def _send_leg(self, t: int, plan: Plan, i: int, report: StepReport) -> bool:
        request = self._leg_request(plan, i)
        ok = self._submit(
            t, request, report, decision_id=plan.decision_id, plan_id=plan.plan_id,
            leg_index=i, reason=plan.reason,
        )  # fmt: skip
        return ok

    def _start_plan(self, t: int, plan: Plan, report: StepReport) -> int:
        legs = range(plan.n) if plan.method == SPLIT_PRICE else range(1)
        for i in legs:
            self._send_leg(t, plan, i, report)
        side = "BUY" if plan.side > 0 else "SELL"
        record_event(
            self.ctx.engine, "INFO", EventType.ORDER,
            f"{side} {plan.leg_qty * plan.n} {self.bot.symbol} in {plan.n} leg(s)",
            {"plan_id": plan.plan_id, "ref": plan.ref, "legs": plan.n, "deadline": plan.deadline},
            bot=self.name, now=from_ms(t),
        )  # fmt: skip
        return len(legs)
