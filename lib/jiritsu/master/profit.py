"""Weekly profit saving: a share of each bot's profit moves to the main account's savings.

The saving moment and its window
    The timer fires on ``profit_save_day`` at ``profit_save_hour``:00 UTC (Sunday 00:00 by
    default). A run at ``now`` belongs to the latest scheduled moment ``S <= now``
    (:func:`save_window`): Saturday 23:59 belongs to the previous Sunday's moment, Sunday 00:00
    and 00:01 to the new one. At most ONE saving happens per moment: once a run for ``S`` has
    completed (its PROFIT_SAVE event carries ``window = S``), every later run until the next
    moment moves nothing, ``--force`` included. Only a run whose transfers all succeeded closes
    the moment; after a failed or unknown transfer the next run settles it and tries again (a
    bot whose saving for ``S`` succeeded is never saved twice). Each transfer's id is also
    derived from (installation id, environment, bot, S, attempt) by UUID5, so even a run that
    bypassed the checks could not save twice: the database's unique key and Bybit's transferId
    both refuse a repeat. The installation id (``meta`` table, made once per database) keeps a
    second installation on the same accounts from colliding with this one's ids.
    Without ``force`` a run saves only while it is due, from ``S`` until 24 hours after it (so a
    timer that fires late after downtime still saves); ``force`` skips only that check.

Profit per bot: trading profit only, by construction
    ``profit = realised PnL - accounted``. The realised PnL is the sum of the ``pnl`` of the
    bot's closing trades in this environment (``trades.pnl``: after the trade's own and its
    entry's fees, see :mod:`jiritsu.engine.book`), over its whole history, so a fill recorded
    late (reconciliation) or a trade whose PnL grows with later fills is counted when it lands.
    ``accounted`` is the realised PnL that earlier savings already covered: 0 before the bot's
    first saving, then the last saving's ``accounted`` (its details), which moves by
    ``saved / rate`` per saving, so a saving cut short by the available balance or by rounding
    carries the rest to next week, and a losing week must be made good before anything is saved
    again. A saving recorded before profit was measured this way (no ``accounted``) covered the
    realised PnL of the trades up to its time.

    No balance and no transfer enters the sum: rebalancing, savings and deposits made outside
    Jiritsu never count as profit or loss, whatever order the jobs run in, and a bot that did not
    trade has nothing to save. Unrealised PnL of open positions counts once it is realised.

The saving
    Where the profit is positive: ``profit x profit_save_rate``, rounded DOWN to cents, at most
    the bot's available balance (never margin), moves from the bot's UNIFIED wallet to the main
    account's FUND wallet (the savings; the bots never trade it). Less than
    ``min_transfer_usdt`` moves nothing (the profit stays counted for next week). Every enabled
    bot is considered, halted ones included: saving only takes money OUT of the trading
    accounts. A global halt stops the whole run (exit 4).

Records: a ``transfers`` row per saving (kind ``profit_save``; ``details`` hold the numbers and
the new ``accounted``), a PROFIT_SAVE event (which closes the window), a portfolio snapshot taken
under the same master lock right after the transfers (``profit_saved_balance``), and a Discord
report.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.errors import ExitCode, Halted, JiritsuError
from jiritsu.master.transfers import CENT, cents

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from jiritsu.config.master import MasterBotSettings
    from jiritsu.config.settings import Settings
    from jiritsu.exchange.base import Exchange
    from jiritsu.master.snapshot import PortfolioSnapshot
    from jiritsu.master.transfers import SettleReport, TransferOutcome
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.master.profit")

DUE_WINDOW = timedelta(hours=24)
WEEK = timedelta(days=7)
MAX_ATTEMPTS = 20  # failed attempts per bot and window before giving up until next week
KEY_NAMESPACE = uuid.UUID("6a1d7c3e-5b0f-4f43-9e2a-8c9b1f6d2e47")  # never change: keys derive
Q8 = Decimal("0.00000001")


@dataclass(frozen=True)
class SaveWindow:
    """The scheduled saving moment a run belongs to."""

    scheduled: datetime

    @property
    def due_until(self) -> datetime:
        return self.scheduled + DUE_WINDOW

    @property
    def next(self) -> datetime:
        return self.scheduled + WEEK

    @property
    def label(self) -> str:
        return self.scheduled.isoformat()


def save_window(now: datetime, settings: MasterBotSettings) -> SaveWindow:
    """The latest scheduled moment at or before ``now`` (UTC)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime refused (use UTC): {now!r}")
    now = now.astimezone(timezone.utc)
    at_hour = now.replace(hour=settings.profit_save_hour, minute=0, second=0, microsecond=0)
    moment = at_hour - timedelta(days=(now.weekday() - settings.profit_save_weekday) % 7)
    if moment > now:
        moment -= WEEK
    return SaveWindow(moment)


def is_due(now: datetime, settings: MasterBotSettings) -> bool:
    """Whether a timer run at ``now`` should save (within 24 hours after the moment)."""
    return now < save_window(now, settings).due_until


def transfer_key(install: str, environment: str, bot: str, window: SaveWindow, attempt: int) -> str:
    """The deterministic transfer id of one saving attempt (a UUID, as Bybit requires)."""
    name = f"jiritsu/profit_save/{install}/{environment}/{bot}/{window.label}/{attempt}"
    return str(uuid.uuid5(KEY_NAMESPACE, name))


# --------------------------------------------------------------------------- the numbers


@dataclass(frozen=True)
class Baseline:
    """Where a bot's profit is counted from: the realised PnL earlier savings covered."""

    accounted: Decimal
    source: str  # "start" | "last_saving" | "legacy_saving"


@dataclass(frozen=True)
class Saving:
    """The pure arithmetic of one bot's saving (see :func:`compute_saving`)."""

    profit: Decimal
    amount: Decimal
    new_accounted: Decimal | None
    note: str | None


def compute_saving(
    *,
    realised: Decimal,
    accounted: Decimal,
    available: Decimal,
    rate: Decimal,
    min_transfer: Decimal,
) -> Saving:
    """``profit = realised - accounted``; save ``profit x rate`` (cents, down), at most
    ``available``, nothing below ``min_transfer``; the new ``accounted`` covers only what the
    saving paid for (``saved / rate``), so the rest stays profit."""
    profit = realised - accounted
    if rate <= 0:
        return Saving(profit, Decimal(0), None, "profit_save_rate is 0")
    if profit <= 0:
        return Saving(profit, Decimal(0), None, "no trading profit since the last saving")
    wanted = cents(profit * rate)
    free = cents(max(available, Decimal(0)))
    amount = min(wanted, free)
    limited = amount < wanted
    minimum = max(min_transfer, CENT)
    if amount < minimum:
        why = f"only {free} is available" if limited else f"{wanted} is the saving"
        note = f"{why}; below min_transfer_usdt ({min_transfer}): nothing moves, kept for later"
        return Saving(profit, Decimal(0), None, note)
    new_accounted = (accounted + amount / rate).quantize(Q8)
    cut = f"limited to the available {free} (wanted {wanted})" if limited else None
    return Saving(profit, amount, new_accounted, cut)


def realised_pnl(
    session: Session, bot: str, environment: str, *, through: datetime | None = None
) -> Decimal:
    """The bot's realised trading PnL after fees in ``environment`` (its closing trades'
    ``pnl``), optionally only of trades up to ``through``."""
    import sqlalchemy as sa

    from jiritsu.db.models import Trade

    query = sa.select(Trade.pnl).where(
        Trade.sub_bot_name == bot, Trade.environment == environment, Trade.pnl.is_not(None)
    )
    if through is not None:
        query = query.where(Trade.timestamp <= through)
    values = session.scalars(query)
    return sum((Decimal(v) for v in values if v is not None), Decimal(0))  # exact, any backend


def find_baseline(session: Session, environment: str, bot: str) -> Baseline:
    """The realised PnL the bot's savings in ``environment`` have covered so far."""
    import sqlalchemy as sa

    from jiritsu.db.models import Transfer

    last = session.scalars(
        sa.select(Transfer)
        .where(
            Transfer.kind == "profit_save",
            Transfer.status == "success",
            Transfer.from_account == bot,
            Transfer.environment == environment,
        )
        .order_by(Transfer.id.desc())
        .limit(1)
    ).first()
    if last is None:
        return Baseline(Decimal(0), "start")
    details = last.details or {}
    if "accounted" in details:
        try:
            return Baseline(Decimal(str(details["accounted"])), "last_saving")
        except ArithmeticError:
            raise JiritsuError(
                f"profit_save transfer #{last.id} of {bot} has a malformed accounted value"
            ) from None
    # A saving made before profit was measured from trades: it covered what was realised then.
    return Baseline(
        realised_pnl(session, bot, environment, through=last.created_at), "legacy_saving"
    )


@dataclass(frozen=True)
class BotProfit:
    """One bot's line in a saving plan."""

    bot: str
    equity: Decimal
    available: Decimal
    baseline: Baseline
    realised: Decimal
    profit: Decimal
    amount: Decimal
    new_accounted: Decimal | None
    key: str | None
    attempt: int | None
    note: str | None


@dataclass(frozen=True)
class ProfitPlan:
    window: SaveWindow
    rate: Decimal
    bots: tuple[BotProfit, ...]

    @property
    def total(self) -> Decimal:
        return sum((b.amount for b in self.bots), Decimal(0))


def _key_for(
    session: Session, install: str, environment: str, bot: str, window: SaveWindow
) -> tuple[str | None, int | None, str | None]:
    """(key, attempt, None), or (None, None, why) when this window already has a saving."""
    import sqlalchemy as sa

    from jiritsu.db.models import Transfer

    for attempt in range(MAX_ATTEMPTS):
        key = transfer_key(install, environment, bot, window, attempt)
        row = session.scalars(sa.select(Transfer).where(Transfer.idempotency_key == key)).first()
        if row is None:
            return key, attempt, None
        if row.status != "failed":
            return None, None, f"already saved in this window (transfer #{row.id}, {row.status})"
    return None, None, f"{MAX_ATTEMPTS} failed attempts in this window; trying again next week"


def plan_profit_save(
    engine: Engine, exchange: Exchange, settings: Settings, *, now: datetime
) -> ProfitPlan:
    """Measure every enabled bot and work out what to save (moves nothing)."""
    from sqlalchemy.orm import Session

    from jiritsu.db.meta import install_id
    from jiritsu.master.transfers import quote_coin

    install = install_id(engine)
    mb = settings.master_bot
    window = save_window(now, mb)
    coin = quote_coin(settings)
    rate = Decimal(mb.profit_save_rate)
    environment = settings.general.environment
    balances = {b.name: exchange.balance(b.name, coin) for b in settings.enabled_bots}
    lines: list[BotProfit] = []
    with Session(engine) as session:
        for bot, bal in balances.items():
            equity, available = Decimal(bal.equity), Decimal(bal.available)
            base = find_baseline(session, environment, bot)
            realised = realised_pnl(session, bot, environment)
            saving = compute_saving(
                realised=realised,
                accounted=base.accounted,
                available=available,
                rate=rate,
                min_transfer=Decimal(mb.min_transfer_usdt),
            )
            key = attempt = None
            note = saving.note
            amount = saving.amount
            if amount > 0:
                key, attempt, why = _key_for(session, install, environment, bot, window)
                if key is None:
                    amount, note = Decimal(0), why
            lines.append(
                BotProfit(bot, equity, available, base, realised, saving.profit, amount,
                          saving.new_accounted if amount > 0 else None, key, attempt, note)
            )  # fmt: skip
    return ProfitPlan(window, rate, tuple(lines))


# --------------------------------------------------------------------------- the run


@dataclass
class SaveResult:
    """What a run did. ``status``: saved | not_due | already_saved | dry_run."""

    window: SaveWindow
    status: str
    plan: ProfitPlan | None = None
    outcomes: list[TransferOutcome] = field(default_factory=list)
    snapshot: PortfolioSnapshot | None = None
    settled: SettleReport | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def saved(self) -> Decimal:
        return sum((o.amount for o in self.outcomes if o.ok), Decimal(0))

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes) and not self.problems

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.FAILURE


def window_closed(engine: Engine, window: SaveWindow) -> bool:
    """Whether a run whose transfers all succeeded recorded this window's PROFIT_SAVE event."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from jiritsu.db.models import SystemEvent
    from jiritsu.events import EventType

    with Session(engine) as session:
        rows = session.scalars(
            sa.select(SystemEvent.details).where(
                SystemEvent.event_type == EventType.PROFIT_SAVE.value,
                SystemEvent.timestamp >= window.scheduled,
            )
        ).all()
    return any(
        isinstance(d, dict) and d.get("window") == window.label and d.get("complete", True)
        for d in rows
    )


def run_save_profit(
    engine: Engine,
    exchange: Exchange,
    settings: Settings,
    *,
    now: datetime,
    dry_run: bool = False,
    force: bool = False,
    notifier: Notifier | None = None,
) -> SaveResult:
    """One profit-saving run (see the module docstring)."""
    from jiritsu.controls import halted
    from jiritsu.events import EventType, record_event
    from jiritsu.exchange.types import MAIN
    from jiritsu.locks import master_lock
    from jiritsu.master.snapshot import take_snapshot
    from jiritsu.master.transfers import (
        UnsettledTransfers,
        execute_transfer,
        member_id,
        quote_coin,
        record_settlement,
        settle_transfers,
    )

    mb = settings.master_bot
    window = save_window(now, mb)
    halt = halted(engine, now=now)
    if halt.halted:
        raise Halted(
            f"trading is halted globally ({halt.reason or 'no reason given'}); profit saving "
            "moves nothing (jiritsu resume lifts the halt)"
        )
    if not force and not is_due(now, mb):
        return SaveResult(window, "not_due")
    if dry_run:
        status = "already_saved" if window_closed(engine, window) else "dry_run"
        plan = plan_profit_save(engine, exchange, settings, now=now)
        return SaveResult(window, status, plan)

    coin = quote_coin(settings)
    with master_lock(engine, settings.general.data_dir):
        settled = settle_transfers(engine, exchange, now=now)
        record_settlement(engine, settled, EventType.PROFIT_SAVE, notifier=notifier, now=now)
        if settled.unsettled:
            record_event(
                engine,
                "WARNING",
                EventType.PROFIT_SAVE,
                f"profit saving postponed: {len(settled.unsettled)} earlier transfer(s) "
                "unsettled",
                {"unsettled": [o.key for o in settled.unsettled]},
                notifier=notifier,
                now=now,
            )
            raise UnsettledTransfers(settled.unsettled)
        if window_closed(engine, window):
            return SaveResult(window, "already_saved", settled=settled)
        plan = plan_profit_save(engine, exchange, settings, now=now)
        result = SaveResult(window, "saved", plan, settled=settled)
        for line in plan.bots:
            if line.amount <= 0 or line.key is None:
                continue
            result.outcomes.append(
                execute_transfer(
                    engine,
                    exchange,
                    kind="profit_save",
                    from_account=line.bot,
                    to_account=MAIN,
                    amount=line.amount,
                    coin=coin,
                    from_wallet="UNIFIED",
                    to_wallet="FUND",
                    environment=settings.general.environment,
                    reason=_reason(plan, line),
                    details=saving_details(plan, line),
                    key=line.key,
                    member_ids=(member_id(settings, line.bot), member_id(settings, MAIN)),
                    now=now,
                )
            )
        stored = _record(engine, result, notifier, now=now)
        if not stored:
            result.problems.append("the PROFIT_SAVE event could not be stored")
        try:  # still under the lock: no transfer can be half-way while balances are read
            result.snapshot = take_snapshot(engine, exchange, settings, now=now, locked=True)
        except JiritsuError as exc:
            result.problems.append(f"snapshot after saving failed: {exc}")
    _send_report(result, notifier)
    return result


def _reason(plan: ProfitPlan, line: BotProfit) -> str:
    profit = cents(line.profit)
    return (
        f"{float(plan.rate) * 100:g} % of the profit {profit} for the saving of "
        f"{plan.window.scheduled:%Y-%m-%d %H:%M} UTC"
    )


def _text(value: Decimal | None) -> str | None:
    """A Decimal as plain text for JSON details: ``3300``, not ``3300.00000000`` or ``3.3E+3``."""
    return None if value is None else format(Decimal(value).normalize(), "f")


def saving_details(plan: ProfitPlan, line: BotProfit) -> dict[str, Any]:
    """The numbers a saving's ``transfers`` row keeps; ``accounted`` is where the bot's next
    profit is measured from (:func:`find_baseline`)."""
    return {
        "window": plan.window.label,
        "attempt": line.attempt,
        "rate": _text(plan.rate),
        "equity": _text(line.equity),
        "available": _text(line.available),
        "realised": _text(line.realised),
        "accounted_before": _text(line.baseline.accounted),
        "baseline_source": line.baseline.source,
        "profit": _text(line.profit),
        "accounted": _text(line.new_accounted),
    }


def _bot_summary(line: BotProfit, outcome: TransferOutcome | None) -> dict[str, Any]:
    return {
        "equity": _text(line.equity),
        "realised": _text(line.realised),
        "accounted": _text(line.baseline.accounted),
        "baseline_source": line.baseline.source,
        "profit": _text(line.profit),
        "saved": _text(outcome.amount) if outcome and outcome.ok else "0",
        "status": outcome.status if outcome else None,
        "transfer_id": outcome.key if outcome else None,
        "note": line.note or (outcome.error if outcome and not outcome.ok else None),
    }


def _record(
    engine: Engine, result: SaveResult, notifier: Notifier | None, *, now: datetime
) -> bool:
    from jiritsu.events import EventType, record_event

    assert result.plan is not None
    by_bot = {o.from_account: o for o in result.outcomes}
    failed = [o for o in result.outcomes if not o.ok]
    message = (
        f"profit saving for {result.window.scheduled:%Y-%m-%d %H:%M} UTC: saved "
        f"{result.saved} USDT from {len(result.outcomes) - len(failed)} bot(s)"
    )
    if failed:
        message += f"; {len(failed)} transfer(s) failed or unknown"
    details = {
        "window": result.window.label,
        "complete": not failed,  # a failed saving leaves the window open for the next run
        "rate": _text(result.plan.rate),
        "total_saved": _text(result.saved),
        "bots": {line.bot: _bot_summary(line, by_bot.get(line.bot)) for line in result.plan.bots},
    }
    return record_event(
        engine,
        "ERROR" if failed else "INFO",
        EventType.PROFIT_SAVE,
        message,
        details,
        notifier=notifier if failed else None,
        now=now,
    )


def _send_report(result: SaveResult, notifier: Notifier | None) -> None:
    if notifier is None or result.plan is None:
        return
    from jiritsu.master.rebalance import describe_transfers

    lines = []
    for line in result.plan.bots:
        profit = f"{cents(line.profit)}"
        note = f" ({line.note})" if line.note else ""
        lines.append(f"{line.bot}: profit {profit}, to save {line.amount}{note}")
    sections = [
        ("Profit", "\n".join(lines)),
        ("Moved", describe_transfers(result.outcomes) or "nothing"),
    ]
    if result.snapshot is not None:
        sections.append(
            (
                "Portfolio",
                f"trading capital {result.snapshot.total_balance_usdt}, savings "
                f"{result.snapshot.profit_saved_balance} USDT",
            )
        )
    if result.problems:
        sections.append(("Problems", "\n".join(result.problems)))
    notifier.send_report(
        f"Profit saving: {result.saved} USDT for {result.window.scheduled:%Y-%m-%d}", sections
    )
