"""What ``jiritsu status`` shows, collected as data so that the CLI only renders it.

The configuration, the schema, halt state and the latest events; per bot its equity and
positions (from the exchange), its open orders (from the journal) and its last decisions; the
trade loop's and the last tick's heartbeats; optionally each bot's performance
(:mod:`jiritsu.engine.performance`).

The paper exchange is read at the time its ledger has reached (the newest bar it worked, or now),
so ``status`` never fills a paper order as a side effect; before the ledger exists the
configured starting balances are shown. A failing exchange does not fail ``status``: the report
says what could not be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.clock import wall_now

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig


@dataclass
class PositionLine:
    symbol: str
    side: str
    size: Decimal
    avg_price: Decimal
    take_profit: Decimal | None
    stop_loss: Decimal | None
    unrealised_pnl: Decimal


@dataclass
class OrderLine:
    client_order_id: str
    side: str
    order_type: str
    qty: Decimal
    price: Decimal | None
    status: str
    leg_index: int | None
    created_at: datetime | None


@dataclass
class DecisionLine:
    created_at: datetime
    bar_ts: datetime | None
    provider: str
    action: str | None
    outcome: str | None
    confidence: float | None
    reason: str | None


@dataclass
class BotStatus:
    name: str
    enabled: bool
    symbol: str
    category: str
    advisor: str
    halted: bool = False
    halt_reason: str | None = None
    equity: Decimal | None = None
    available: Decimal | None = None
    positions: list[PositionLine] = field(default_factory=list)
    open_orders: list[OrderLine] = field(default_factory=list)
    last_decisions: list[DecisionLine] = field(default_factory=list)


@dataclass
class BeatLine:
    component: str
    last_seen: datetime
    started_at: datetime | None
    details: Any


@dataclass
class EventLine:
    timestamp: datetime
    level: str
    event_type: str
    message: str


@dataclass
class LoopState:
    """Is a trade loop alive? Judged by the age of its heartbeat, like ``jiritsu health``."""

    alive: bool
    message: str
    simulated_until: datetime | None = None


@dataclass
class StatusReport:
    environment: str
    config_path: str
    database: str
    schema_revision: str | None
    schema_head: str
    global_halt: bool = False
    global_halt_reason: str | None = None
    bots: list[BotStatus] = field(default_factory=list)
    recent_events: list[EventLine] = field(default_factory=list)
    heartbeats: list[BeatLine] = field(default_factory=list)
    savings: Decimal | None = None
    exchange_error: str | None = None
    performance: list[dict[str, Any]] = field(default_factory=list)
    loop: LoopState | None = None

    @property
    def total_equity(self) -> Decimal | None:
        values = [b.equity for b in self.bots if b.equity is not None]
        return sum(values, Decimal(0)) if values else None

    @property
    def schema_ok(self) -> bool:
        return self.schema_revision == self.schema_head

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["schema_ok"] = self.schema_ok
        return data


def masked_url(url: str) -> str:
    """The database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def collect_status(
    loaded: LoadedConfig,
    *,
    events: int = 5,
    decisions: int = 3,
    performance: bool = False,
    exchange: bool = True,
    now: datetime | None = None,
) -> StatusReport:
    """Connect (bounded retries; DatabaseUnavailable when down, DatabaseMissing when there is
    no SQLite file: status never creates one) and gather the report as of ``now``."""

    import sqlalchemy as sa

    from jiritsu.db import migrate
    from jiritsu.db.engine import connect
    from jiritsu.db.models import Control, SystemEvent

    settings = loaded.settings
    engine = connect(
        loaded.db_url,
        attempts=settings.database.reconnect_attempts,
        base_delay=settings.database.reconnect_base_delay_seconds,
        create=False,
    )
    try:
        report = StatusReport(
            environment=settings.general.environment,
            config_path=str(loaded.path),
            database=masked_url(loaded.db_url),
            schema_revision=migrate.current(loaded.db_url),
            schema_head=migrate.head(),
        )
        halts: dict[str, Any] = {}
        if report.schema_ok:
            from sqlalchemy.orm import Session

            with Session(engine) as session:
                halts = {c.scope: c for c in session.scalars(sa.select(Control))}
                rows = session.scalars(
                    sa.select(SystemEvent).order_by(SystemEvent.id.desc()).limit(events)
                ).all()
                report.recent_events = [
                    EventLine(r.timestamp, r.level, r.event_type, r.message) for r in rows
                ]
        glob = halts.get("global")
        if glob is not None and glob.halted:
            report.global_halt, report.global_halt_reason = True, glob.reason
        for bot in settings.sub_bots:
            control = halts.get(bot.name)
            report.bots.append(
                BotStatus(
                    name=bot.name,
                    enabled=bot.enabled,
                    symbol=bot.symbol,
                    category=bot.category,
                    advisor=bot.advisor,
                    halted=bool(control and control.halted),
                    halt_reason=control.reason if control and control.halted else None,
                )
            )
        if report.schema_ok:
            now = now or wall_now()  # an operator's view: as of the wall clock
            _trading(engine, loaded, report, decisions=decisions, with_exchange=exchange, now=now)
            if performance:
                from jiritsu.engine.performance import performance as perf

                names = [b.name for b in settings.sub_bots]
                report.performance = [
                    p.as_dict() for p in perf(engine, names, settings.paper.quote_coin)
                ]
        return report
    finally:
        engine.dispose()


def _journal(engine: Any, bot: BotStatus, decisions: int) -> None:
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from jiritsu.db.models import OPEN_ORDER_STATUSES, Decision, Order

    with Session(engine) as session:
        rows = session.scalars(
            sa.select(Order)
            .where(Order.bot == bot.name, Order.status.in_(OPEN_ORDER_STATUSES))
            .order_by(Order.id)
        ).all()
        bot.open_orders = [
            OrderLine(r.client_order_id, r.side, r.order_type, r.qty - (r.filled_qty or 0),
                      r.price, r.status, r.leg_index, r.created_at)
            for r in rows
        ]  # fmt: skip
        latest = session.scalars(
            sa.select(Decision)
            .where(Decision.bot == bot.name)
            .order_by(Decision.id.desc())
            .limit(decisions)
        ).all()
        bot.last_decisions = [
            DecisionLine(d.created_at, d.bar_ts, d.provider, d.action, d.outcome, d.confidence,
                         d.reason)
            for d in latest
        ]  # fmt: skip


def _paper_exchange(engine: Any, loaded: LoadedConfig) -> Any:
    """The paper exchange on a clock at its ledger's newest worked bar (None: no ledger yet)."""
    import sqlalchemy as sa

    from jiritsu.clock import RealClock, SimClock
    from jiritsu.db.models import PaperAccount
    from jiritsu.exchange.ledger import worked_until_ms
    from jiritsu.runtime import build_runtime

    with engine.connect() as conn:
        if conn.execute(sa.select(sa.func.count()).select_from(PaperAccount)).scalar_one() == 0:
            return None
    worked = worked_until_ms(engine)
    clock = SimClock(worked) if worked is not None else RealClock()
    return build_runtime(loaded, "paper", clock, db=engine, notify=False).exchange


def loop_state(beat: Any, max_age_seconds: float, now: datetime, simulated: Any) -> LoopState:
    """Is a trade loop alive, judged as ``jiritsu health`` judges it (heartbeat age)?"""
    from jiritsu.ops.health import OK, trade_loop_check

    check = trade_loop_check(beat, max_age_seconds, now, simulated=simulated)
    until = simulated.until if simulated is not None else None
    stopped = isinstance(beat.details if beat else None, dict) and beat.details.get("stopped")
    return LoopState(check.status == OK and not stopped, check.message, until)


def _trading(
    engine: Any,
    loaded: LoadedConfig,
    report: StatusReport,
    *,
    decisions: int,
    with_exchange: bool,
    now: datetime,
) -> None:
    from jiritsu.heartbeat import TRADE_LOOP, TRADE_TICK, last_beat, simulated_time

    for component in (TRADE_LOOP, TRADE_TICK):
        beat = last_beat(engine, component)
        if beat is not None:
            report.heartbeats.append(
                BeatLine(beat.component, beat.last_seen, beat.started_at, beat.details)
            )
    report.loop = loop_state(
        last_beat(engine, TRADE_LOOP),
        loaded.settings.health.heartbeat_max_age_seconds,
        now,
        simulated_time(engine),
    )
    for bot in report.bots:
        _journal(engine, bot, decisions)
    if not with_exchange:
        return
    try:
        _balances(engine, loaded, report)
    except Exception as exc:  # noqa: BLE001 - status must show what it can
        from jiritsu.redact import redact

        report.exchange_error = redact(f"{type(exc).__name__}: {exc}")


def _balances(engine: Any, loaded: LoadedConfig, report: StatusReport) -> None:
    from jiritsu.exchange.types import MAIN

    settings = loaded.settings
    quote = settings.paper.quote_coin
    if settings.is_paper:
        exchange = _paper_exchange(engine, loaded)
        if exchange is None:  # nothing traded yet: the configured starting balances
            for bot in report.bots:
                start = settings.paper.starting_balances.get(bot.name, Decimal(0))
                bot.equity = bot.available = Decimal(start)
            report.savings = Decimal(settings.paper.main_balance)
            return
    else:
        from jiritsu.runtime import build_runtime

        exchange = build_runtime(loaded, db=engine, notify=False).exchange
    try:
        for bot in report.bots:
            cfg = settings.bot(bot.name)
            bal = exchange.balance(bot.name, quote)
            bot.equity, bot.available = bal.equity, bal.available
            inst = exchange.instrument(cfg.symbol, cfg.category)
            for p in exchange.positions(bot.name, cfg.category, cfg.symbol):
                if p.side and p.size >= inst.min_qty:  # spot dust left by fees is no position
                    bot.positions.append(
                        PositionLine(p.symbol, p.side, p.size, p.avg_price, p.take_profit,
                                     p.stop_loss, p.unrealised_pnl)
                    )  # fmt: skip
        report.savings = exchange.balance(MAIN, quote).equity
    finally:
        exchange.close()
