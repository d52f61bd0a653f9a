"""Weekly profit saving: a share of each bot's profit moves to the main account's savings.

The saving moment and its window
    The timer fires on ``profit_save_day`` at ``profit_save_hour``:00 UTC (Sunday 00:00 by
    default). A run at ``now`` belongs to the latest scheduled moment ``S <= now``
    (:func:`save_window`): Saturday 23:59 belongs to the previous Sunday's moment, Sunday 00:00
    and 00:01 to the new one. At most ONE saving happens per moment: once a run for ``S`` has
    completed (its PROFIT_SAVE event carries ``window = S``), every later run until the next
    moment moves nothing, ``--force`` included. Each transfer's id is also derived from
    (environment, bot, S, attempt) by UUID5, so even a run that bypassed the checks could not
    save twice: the database's unique key and Bybit's transferId both refuse a repeat.
    Without ``force`` a run saves only while it is due, from ``S`` until 24 hours after it (so a
    timer that fires late after downtime still saves); ``force`` skips only that check.

Profit per bot
    ``profit = equity now - (baseline + net transfers in since)``, where net transfers are the
    successful ``transfers`` rows into the bot minus those out of it (rebalancing, savings,
    manual), and the baseline is

    - after the bot's last successful saving: the equity measured then, minus the part of that
      profit not accounted for by what was saved (``profit - saved / rate``, normally cents),
      with transfers counted from that run on (its own saving included, as an outflow). So a
      saving cut short by the available balance or by rounding carries the rest to next week;
    - before the bot's first saving: paper mode, its ``paper.starting_balances`` entry with every
      transfer counted; otherwise its balance in the FIRST portfolio snapshot that has it, with
      the transfers made after that snapshot. Without a snapshot the bot is skipped (the snapshot
      this run takes becomes its baseline).

    The baseline moves only when something is saved: a losing week is carried, and later gains
    first make it good before anything is saved again (a high-water mark net of transfers).

The saving
    Where the profit is positive: ``profit x profit_save_rate``, rounded DOWN to cents, at most
    the bot's available balance (never margin), moves from the bot's UNIFIED wallet to the main
    account's FUND wallet (the savings; the bots never trade it). Less than
    ``min_transfer_usdt`` moves nothing (the profit stays counted for next week). Every enabled
    bot is considered, halted ones included: saving only takes money OUT of the trading
    accounts. A global halt stops the whole run (exit 4).

Records: a ``transfers`` row per saving (kind ``profit_save``; ``details`` hold the numbers and
the new baseline), a PROFIT_SAVE event (which closes the window), a portfolio snapshot taken
after the transfers (``profit_saved_balance``), and a Discord report.

Deposits or withdrawals made outside Jiritsu (e.g. in Bybit's web interface) are not in
``transfers`` and would count as profit or loss: record them as ``manual`` transfers.
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

    from jiritsu.config.models import MasterBotSettings, Settings
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


def transfer_key(environment: str, bot: str, window: SaveWindow, attempt: int) -> str:
    """The deterministic transfer id of one saving attempt (a UUID, as Bybit requires)."""
    name = f"jiritsu/profit_save/{environment}/{bot}/{window.label}/{attempt}"
    return str(uuid.uuid5(KEY_NAMESPACE, name))


# --------------------------------------------------------------------------- the numbers


@dataclass(frozen=True)
class Baseline:
    """Where a bot's profit is measured from, and which transfers count after it."""

    equity: Decimal
    source: str  # "last_saving" | "paper_start" | "first_snapshot"
    after_id: int | None = None  # count transfers with a larger id ...
    since: datetime | None = None  # ... or created after this time


@dataclass(frozen=True)
class Saving:
    """The pure arithmetic of one bot's saving (see :func:`compute_saving`)."""

    profit: Decimal
    amount: Decimal
    new_baseline: Decimal | None
    note: str | None


def compute_saving(
    *,
    equity: Decimal,
    baseline: Decimal,
    net_in: Decimal,
    available: Decimal,
    rate: Decimal,
    min_transfer: Decimal,
) -> Saving:
    """``profit = equity - (baseline + net_in)``; save ``profit x rate`` (cents, down), at most
    ``available``, nothing below ``min_transfer``; the new baseline keeps what was not saved."""
    profit = equity - (baseline + net_in)
    if rate <= 0:
        return Saving(profit, Decimal(0), None, "profit_save_rate is 0")
    if profit <= 0:
        return Saving(profit, Decimal(0), None, "no profit since the baseline")
    wanted = cents(profit * rate)
    free = cents(max(available, Decimal(0)))
    amount = min(wanted, free)
    limited = amount < wanted
    minimum = max(min_transfer, CENT)
    if amount < minimum:
        why = f"only {free} is available" if limited else f"{wanted} is the saving"
        note = f"{why}; below min_transfer_usdt ({min_transfer}): nothing moves, kept for later"
        return Saving(profit, Decimal(0), None, note)
    new_baseline = (equity - (profit - amount / rate)).quantize(Q8)
    return Saving(
        profit, amount, new_baseline,
        f"limited to the available {free} (wanted {wanted})" if limited else None,
    )  # fmt: skip


def find_baseline(session: Session, settings: Settings, bot: str) -> Baseline | None:
    """The bot's baseline (see the module docstring), None when there is none yet."""
    import sqlalchemy as sa

    from jiritsu.db.models import PortfolioBotBalance, Transfer
    from jiritsu.db.models import PortfolioSnapshot as SnapshotRow

    last = session.scalars(
        sa.select(Transfer)
        .where(
            Transfer.kind == "profit_save",
            Transfer.status == "success",
            Transfer.from_account == bot,
        )
        .order_by(Transfer.id.desc())
        .limit(1)
    ).first()
    if last is not None:
        details = last.details or {}
        try:
            return Baseline(
                Decimal(str(details["baseline"])),
                "last_saving",
                after_id=int(details["through_id"]),
            )
        except (KeyError, TypeError, ValueError, ArithmeticError):
            raise JiritsuError(
                f"profit_save transfer #{last.id} of {bot} lacks its baseline in details"
            ) from None
    if settings.is_paper:
        start = settings.paper.starting_balances.get(bot, Decimal(0))
        return Baseline(Decimal(start), "paper_start")
    first = session.execute(
        sa.select(PortfolioBotBalance.balance, SnapshotRow.timestamp)
        .join(SnapshotRow, SnapshotRow.id == PortfolioBotBalance.snapshot_id)
        .where(PortfolioBotBalance.bot_name == bot)
        .order_by(SnapshotRow.timestamp, SnapshotRow.id)
        .limit(1)
    ).first()
    if first is None:
        return None
    return Baseline(first[0], "first_snapshot", since=first[1])


@dataclass(frozen=True)
class BotProfit:
    """One bot's line in a saving plan."""

    bot: str
    equity: Decimal
    available: Decimal
    baseline: Baseline | None
    net_in: Decimal
    profit: Decimal | None
    amount: Decimal
    new_baseline: Decimal | None
    key: str | None
    attempt: int | None
    note: str | None


@dataclass(frozen=True)
class ProfitPlan:
    window: SaveWindow
    rate: Decimal
    through_id: int
    bots: tuple[BotProfit, ...]

    @property
    def total(self) -> Decimal:
        return sum((b.amount for b in self.bots), Decimal(0))


def _key_for(
    session: Session, environment: str, bot: str, window: SaveWindow
) -> tuple[str | None, int | None, str | None]:
    """(key, attempt, None), or (None, None, why) when this window already has a saving."""
    import sqlalchemy as sa

    from jiritsu.db.models import Transfer

    for attempt in range(MAX_ATTEMPTS):
        key = transfer_key(environment, bot, window, attempt)
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

    from jiritsu.master.transfers import last_transfer_id, net_transfers_in, quote_coin

    mb = settings.master_bot
    window = save_window(now, mb)
    coin = quote_coin(settings)
    rate = Decimal(mb.profit_save_rate)
    environment = settings.general.environment
    balances = {b.name: exchange.balance(b.name, coin) for b in settings.enabled_bots}
    lines: list[BotProfit] = []
    with Session(engine) as session:
        through = last_transfer_id(session)
        for bot, bal in balances.items():
            equity, available = Decimal(bal.equity), Decimal(bal.available)
            base = find_baseline(session, settings, bot)
            if base is None:
                lines.append(
                    BotProfit(bot, equity, available, None, Decimal(0), None, Decimal(0), None,
                              None, None, "no baseline yet: this run's snapshot becomes it")
                )  # fmt: skip
                continue
            net_in = net_transfers_in(session, bot, after_id=base.after_id, since=base.since)
            saving = compute_saving(
                equity=equity,
                baseline=base.equity,
                net_in=net_in,
                available=available,
                rate=rate,
                min_transfer=Decimal(mb.min_transfer_usdt),
            )
            key = attempt = None
            note = saving.note
            amount = saving.amount
            if amount > 0:
                key, attempt, why = _key_for(session, environment, bot, window)
                if key is None:
                    amount, note = Decimal(0), why
            lines.append(
                BotProfit(bot, equity, available, base, net_in, saving.profit, amount,
                          saving.new_baseline if amount > 0 else None, key, attempt, note)
            )  # fmt: skip
    return ProfitPlan(window, rate, through, tuple(lines))


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
    """Whether a completed run already recorded this window's PROFIT_SAVE event."""
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
    return any(isinstance(d, dict) and d.get("window") == window.label for d in rows)


def run_save_profit(
    engine: Engine,
    exchange: Exchange,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    force: bool = False,
    notifier: Notifier | None = None,
) -> SaveResult:
    """One profit-saving run (see the module docstring)."""
    from jiritsu.controls import halted
    from jiritsu.events import EventType, record_event
    from jiritsu.exchange.types import MAIN
    from jiritsu.master.snapshot import take_snapshot
    from jiritsu.master.transfers import (
        UnsettledTransfers,
        execute_transfer,
        master_lock,
        member_id,
        quote_coin,
        record_settlement,
        settle_transfers,
    )

    now = now or datetime.now(timezone.utc)
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
    try:
        result.snapshot = take_snapshot(engine, exchange, settings, now=now)
    except JiritsuError as exc:
        result.problems.append(f"snapshot after saving failed: {exc}")
    _send_report(result, notifier)
    return result


def _reason(plan: ProfitPlan, line: BotProfit) -> str:
    profit = cents(line.profit or Decimal(0))
    return (
        f"{float(plan.rate) * 100:g} % of the profit {profit} for the saving of "
        f"{plan.window.scheduled:%Y-%m-%d %H:%M} UTC"
    )


def _text(value: Decimal | None) -> str | None:
    """A Decimal as plain text for JSON details: ``3300``, not ``3300.00000000`` or ``3.3E+3``."""
    return None if value is None else format(Decimal(value).normalize(), "f")


def saving_details(plan: ProfitPlan, line: BotProfit) -> dict[str, Any]:
    """The numbers a saving's ``transfers`` row keeps; ``baseline`` and ``through_id`` are where
    the bot's next profit is measured from (:func:`find_baseline`)."""
    assert line.baseline is not None
    return {
        "window": plan.window.label,
        "attempt": line.attempt,
        "rate": _text(plan.rate),
        "equity": _text(line.equity),
        "available": _text(line.available),
        "baseline_before": _text(line.baseline.equity),
        "baseline_source": line.baseline.source,
        "net_in": _text(line.net_in),
        "profit": _text(line.profit),
        "baseline": _text(line.new_baseline),
        "through_id": plan.through_id,
    }


def _bot_summary(line: BotProfit, outcome: TransferOutcome | None) -> dict[str, Any]:
    return {
        "equity": _text(line.equity),
        "baseline": _text(line.baseline.equity) if line.baseline else None,
        "baseline_source": line.baseline.source if line.baseline else None,
        "net_in": _text(line.net_in),
        "profit": _text(line.profit) if line.profit is not None else None,
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
        profit = "-" if line.profit is None else f"{cents(line.profit)}"
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
