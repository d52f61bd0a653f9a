"""Rebalancing: move capital between the sub-accounts to the market phase's allocation.

The plan (:func:`plan_rebalance`, pure and deterministic):

- Taking part: the enabled bots that are not halted (a halted bot is left alone: it neither
  gives nor receives). Their equities (wallet plus unrealised PnL plus spot holdings at market)
  add up to ``total``.
- Shares come from ``master_bot.allocations.<phase>``; a bot missing from the phase's table has
  share 0 (everything it can give goes to the others). Shares of bots that do not take part are
  spread pro rata over those that do (shares are divided by their sum).
- ``target = total x share`` and ``deviation = equity - target`` per bot. The tolerance band is
  ``rebalance_tolerance_pct x total``: a bot with ``|deviation| <= band`` is within it.
- If every bot is within the band, nothing moves (small drifts never cost a transfer).
  Otherwise every bot outside the band is brought back to its target: donors outside the band
  give to receivers outside the band first; whatever is still missing comes from bots within the
  band that are above target, and whatever is still left over goes to bots within the band that
  are below it. Bots within the band never trade with each other.
- A donor gives at most its AVAILABLE balance (never margin that open positions or open orders
  need), so it may end above target.
- Pairing is greedy and deterministic: largest amount first, ties by bot name.
- Each transfer is rounded DOWN to whole cents and must reach ``min_transfer_usdt``; a smaller
  leg is skipped and says so.

Execution (:func:`run_rebalance`): globally halted -> :class:`~jiritsu.errors.Halted` (exit 4)
before anything happens. Otherwise, under the master lock, earlier unfinished transfers are
settled first (:mod:`jiritsu.master.transfers`), then balances are measured, the plan made, and
each transfer goes through the write-ahead journal. When something was attempted, a REBALANCE
event and a Discord report say what moved and why (nothing is recorded when nothing had to
move; the phase reading is recorded either way). ``dry_run`` measures and plans only: no
transfers rows, no events, no phase row, no lock.

Outside paper mode a stale phase (candles stopped arriving) is refused with
:class:`~jiritsu.master.phase.StalePhase`; paper mode replays stored candles, which may be old,
so it goes ahead with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.errors import ExitCode, Halted
from jiritsu.master.transfers import CENT, cents

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.config.master import MasterBotSettings
    from jiritsu.config.settings import Settings
    from jiritsu.controls import StateReader
    from jiritsu.exchange.base import Exchange
    from jiritsu.exchange.types import Balance
    from jiritsu.market.data import MarketData
    from jiritsu.master.phase import PhaseReading
    from jiritsu.master.transfers import SettleReport, TransferOutcome
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.master.rebalance")


@dataclass(frozen=True)
class BotTarget:
    """One bot's numbers in a plan."""

    bot: str
    equity: Decimal
    available: Decimal
    share: Decimal
    target: Decimal
    deviation: Decimal
    out_of_band: bool


@dataclass(frozen=True)
class PlannedTransfer:
    from_bot: str
    to_bot: str
    amount: Decimal
    reason: str


@dataclass(frozen=True)
class RebalancePlan:
    """What should move, and why (see the module docstring)."""

    phase: str
    total: Decimal
    band: Decimal
    bots: tuple[BotTarget, ...]
    transfers: tuple[PlannedTransfer, ...]
    skipped: tuple[str, ...]

    @property
    def targets(self) -> dict[str, Decimal]:
        return {b.bot: b.target for b in self.bots}

    def bot(self, name: str) -> BotTarget:
        for b in self.bots:
            if b.bot == name:
                return b
        raise KeyError(name)


def _pct(share: Decimal) -> str:
    return f"{float(share) * 100:.1f} %"


def plan_rebalance(
    phase: str, equities: Mapping[str, Balance], settings: MasterBotSettings
) -> RebalancePlan:
    """The transfers that bring the bots in ``equities`` to the phase's shares."""
    allocation = settings.allocations.phase(phase)
    names = sorted(equities)
    skipped: list[str] = []
    total = sum((Decimal(equities[b].equity) for b in names), Decimal(0))
    raw = {b: Decimal(allocation.get(b, 0)) for b in names}
    weight = sum(raw.values(), Decimal(0))
    absent = sorted(b for b, s in allocation.items() if b not in equities and s > 0)
    if absent and weight > 0:
        skipped.append(
            f"{', '.join(absent)} not taking part (disabled or halted): their shares are spread "
            "pro rata over the others"
        )
    band = (Decimal(settings.rebalance_tolerance_pct) * total).quantize(CENT)
    rows: list[BotTarget] = []
    for b in names:
        share = raw[b] / weight if weight > 0 else Decimal(0)
        target = (total * share).quantize(CENT, rounding=ROUND_HALF_EVEN)
        equity = Decimal(equities[b].equity)
        deviation = equity - target
        rows.append(
            BotTarget(
                bot=b,
                equity=equity,
                available=Decimal(equities[b].available),
                share=share,
                target=target,
                deviation=deviation,
                out_of_band=abs(deviation) > band,
            )
        )

    def plan(transfers: list[PlannedTransfer]) -> RebalancePlan:
        return RebalancePlan(phase, total, band, tuple(rows), tuple(transfers), tuple(skipped))

    if not names:
        skipped.append("no bot takes part")
        return plan([])
    if total <= 0:
        skipped.append("the bots hold no capital")
        return plan([])
    if weight <= 0:
        skipped.append(f"no bot taking part has a share in phase {phase}")
        return plan([])
    if not any(r.out_of_band for r in rows):
        skipped.append(
            f"every bot is within the tolerance band (±{band} = "
            f"{_pct(Decimal(settings.rebalance_tolerance_pct))} of {total.quantize(CENT)})"
        )
        return plan([])

    by_name = {r.bot: r for r in rows}
    give: dict[str, Decimal] = {}
    need: dict[str, Decimal] = {}
    for r in rows:
        if r.deviation > 0:
            give[r.bot] = max(min(r.deviation, r.available), Decimal(0))
            if r.available < r.deviation:
                skipped.append(
                    f"{r.bot} is {r.deviation.quantize(CENT)} above target but only "
                    f"{max(r.available, Decimal(0)).quantize(CENT)} is available (the rest "
                    "backs open positions or orders)"
                )
        elif r.deviation < 0:
            need[r.bot] = -r.deviation

    def order(pool: dict[str, Decimal], out: bool) -> list[str]:
        chosen = [b for b, v in pool.items() if v > 0 and by_name[b].out_of_band == out]
        return sorted(chosen, key=lambda b: (-pool[b], b))

    transfers: list[PlannedTransfer] = []
    minimum = max(Decimal(settings.min_transfer_usdt), CENT)

    def reason(d: BotTarget, r: BotTarget) -> str:
        return (
            f"{phase}: {d.bot} holds {d.equity.quantize(CENT)} (target {d.target}, "
            f"{_pct(d.share)}), {r.bot} holds {r.equity.quantize(CENT)} (target {r.target}, "
            f"{_pct(r.share)})"
        )

    def pair(donors: list[str], receivers: list[str]) -> None:
        i = j = 0
        while i < len(donors) and j < len(receivers):
            d, r = donors[i], receivers[j]
            x = min(give[d], need[r])
            amount = cents(x)
            if amount >= minimum:
                transfers.append(PlannedTransfer(d, r, amount, reason(by_name[d], by_name[r])))
            elif x > 0:
                skipped.append(f"{d} -> {r}: {amount} is below min_transfer_usdt ({minimum})")
            give[d] -= x
            need[r] -= x
            if give[d] <= 0:
                i += 1
            if need[r] <= 0:
                j += 1

    pair(order(give, True), order(need, True))
    pair(order(give, False), order(need, True))  # in-band donors cover what is still missing
    pair(order(give, True), order(need, False))  # leftovers go to in-band receivers
    return plan(transfers)


# --------------------------------------------------------------------------- the run


@dataclass
class RebalanceResult:
    """What a run did; ``exit_code`` is 1 when any transfer failed or is unknown."""

    plan: RebalancePlan
    reading: PhaseReading | None
    excluded: dict[str, str]
    outcomes: list[TransferOutcome] = field(default_factory=list)
    settled: SettleReport | None = None
    unsettled: list[TransferOutcome] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def moved(self) -> Decimal:
        return sum((o.amount for o in self.outcomes if o.ok), Decimal(0))

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.FAILURE


def participants(
    engine: Engine, settings: Settings, *, now: datetime, halt_states: StateReader | None = None
) -> tuple[list[str], dict[str, str]]:
    """Bots taking part (enabled, not halted) and why the others do not (``halt_states``: see
    :func:`jiritsu.controls.state`)."""
    from jiritsu.controls import state

    taking: list[str] = []
    excluded: dict[str, str] = {}
    for bot in settings.sub_bots:
        if not bot.enabled:
            excluded[bot.name] = "disabled"
            continue
        halt = state(engine, bot.name, now=now, states=halt_states)
        if halt.halted:
            excluded[bot.name] = f"halted: {halt.reason or 'no reason given'}"
            continue
        taking.append(bot.name)
    return taking, excluded


def measure(exchange: Exchange, bots: list[str], coin: str) -> dict[str, Balance]:
    """Each bot's balance, read together (the paper exchange: one transaction); any failure
    aborts (a plan on partial numbers would be wrong)."""
    return exchange.balances(bots, coin)


def _phase_of(
    engine: Engine,
    settings: Settings,
    phase: PhaseReading | str | None,
    *,
    now: datetime,
    market: MarketData | None,
    dry_run: bool,
) -> tuple[str, PhaseReading | None]:
    from jiritsu.master.phase import StalePhase, current_phase, record_reading

    if isinstance(phase, str):
        settings.master_bot.allocations.phase(phase)  # KeyError for a name that is no phase
        return phase, None
    if phase is not None:
        reading = phase
    elif market is not None:
        reading = current_phase(market, settings, now=now, refresh=True)
    else:
        raise ValueError("classifying the phase needs the market data (or pass a phase)")
    if reading.stale:
        text = (
            f"the market phase is stale: its newest closed {reading.timeframe} bar closed at "
            f"{reading.close_ts:%Y-%m-%d %H:%M} UTC"
        )
        if not settings.is_paper:
            raise StalePhase(f"{text}; refusing to move money (backfill the index candles)")
        log.warning("%s (paper mode replays stored candles; going ahead)", text)
    if not dry_run:
        record_reading(engine, reading)
    return reading.phase, reading


def run_rebalance(
    engine: Engine,
    exchange: Exchange,
    settings: Settings,
    *,
    phase: PhaseReading | str | None = None,
    now: datetime,
    dry_run: bool = False,
    notifier: Notifier | None = None,
    market: MarketData | None = None,
    halt_states: StateReader | None = None,
) -> RebalanceResult:
    """One rebalancing run (see the module docstring). ``phase``: a reading, a phase name, or
    None to classify now from ``market``'s stored candles (topped up when it is live);
    ``halt_states``: the halt states from a reader that knows when they moved (see
    :func:`jiritsu.controls.state`)."""
    from jiritsu.controls import halted
    from jiritsu.events import EventType, record_event
    from jiritsu.locks import master_lock
    from jiritsu.master.transfers import (
        UnsettledTransfers,
        execute_transfer,
        member_id,
        quote_coin,
        record_settlement,
        settle_transfers,
        unsettled_rows,
    )

    halt = halted(engine, now=now, states=halt_states)
    if halt.halted:
        raise Halted(
            f"trading is halted globally ({halt.reason or 'no reason given'}); rebalance moves "
            "nothing (jiritsu resume lifts the halt)"
        )
    name, reading = _phase_of(engine, settings, phase, now=now, market=market, dry_run=dry_run)
    coin = quote_coin(settings)
    mb = settings.master_bot

    if dry_run:
        bots, excluded = participants(engine, settings, now=now, halt_states=halt_states)
        plan = plan_rebalance(name, measure(exchange, bots, coin), mb)
        return RebalanceResult(
            plan, reading, excluded, unsettled=unsettled_rows(engine), dry_run=True
        )

    with master_lock(engine, settings.general.data_dir):
        settled = settle_transfers(engine, exchange, now=now)
        record_settlement(engine, settled, EventType.REBALANCE, notifier=notifier, now=now)
        if settled.unsettled:
            record_event(
                engine,
                "WARNING",
                EventType.REBALANCE,
                f"rebalance postponed: {len(settled.unsettled)} earlier transfer(s) unsettled",
                {"unsettled": [o.key for o in settled.unsettled]},
                notifier=notifier,
                now=now,
            )
            raise UnsettledTransfers(settled.unsettled)
        bots, excluded = participants(engine, settings, now=now, halt_states=halt_states)
        plan = plan_rebalance(name, measure(exchange, bots, coin), mb)
        result = RebalanceResult(plan, reading, excluded, settled=settled)
        for t in plan.transfers:
            source, target = plan.bot(t.from_bot), plan.bot(t.to_bot)
            result.outcomes.append(
                execute_transfer(
                    engine,
                    exchange,
                    kind="rebalance",
                    from_account=t.from_bot,
                    to_account=t.to_bot,
                    amount=t.amount,
                    coin=coin,
                    environment=settings.general.environment,
                    reason=t.reason,
                    details=_transfer_details(plan, reading, source, target),
                    member_ids=(member_id(settings, t.from_bot), member_id(settings, t.to_bot)),
                    now=now,
                )
            )
    if result.outcomes:
        _report(engine, result, notifier, now=now)
    return result


def _transfer_details(
    plan: RebalancePlan, reading: PhaseReading | None, source: BotTarget, target: BotTarget
) -> dict[str, Any]:
    details: dict[str, Any] = {
        "phase": plan.phase,
        "total": str(plan.total),
        "band": str(plan.band),
        "from": {"equity": str(source.equity), "target": str(source.target)},
        "to": {"equity": str(target.equity), "target": str(target.target)},
    }
    if reading is not None:
        details["indicator"] = reading.indicator
        details["value"] = reading.value
        details["bar_close"] = reading.close_ts.isoformat()
    return details


def describe_transfers(outcomes: list[TransferOutcome]) -> str:
    """One line per transfer, for reports."""
    lines = []
    for o in outcomes:
        mark = "ok" if o.ok else o.status.upper()
        error = f": {o.error}" if o.error and not o.ok else ""
        lines.append(f"[{mark}] {o.from_account} -> {o.to_account} {o.amount:.2f} USDT{error}")
    return "\n".join(lines)


def _report(
    engine: Engine, result: RebalanceResult, notifier: Notifier | None, *, now: datetime
) -> None:
    from jiritsu.events import EventType, record_event

    plan = result.plan
    failed = [o for o in result.outcomes if not o.ok]
    why = result.reading.summary() if result.reading is not None else plan.phase
    message = (
        f"rebalance for {plan.phase}: moved {result.moved} USDT in "
        f"{len(result.outcomes) - len(failed)} of {len(result.outcomes)} transfer(s)"
    )
    if failed:
        message += f"; {len(failed)} failed or unknown"
    details = {
        "phase": plan.phase,
        "why": why,
        "total": str(plan.total),
        "band": str(plan.band),
        "targets": {b.bot: str(b.target) for b in plan.bots},
        "equities": {b.bot: str(b.equity) for b in plan.bots},
        "transfers": [
            {
                "key": o.key,
                "from": o.from_account,
                "to": o.to_account,
                "amount": str(o.amount),
                "status": o.status,
                "error": o.error,
            }
            for o in result.outcomes
        ],
        "skipped": list(plan.skipped),
        "excluded": result.excluded,
    }
    level = "INFO" if not failed else "ERROR"
    record_event(
        engine,
        level,
        EventType.REBALANCE,
        message,
        details,
        notifier=notifier if failed else None,
        now=now,
    )
    if notifier is None:
        return
    targets = "\n".join(
        f"{b.bot}: {b.equity.quantize(CENT)} -> target {b.target} ({_pct(b.share)})"
        for b in plan.bots
    )
    sections = [
        ("Why", why),
        ("Moved", describe_transfers(result.outcomes)),
        ("Targets", targets),
    ]
    notes = list(plan.skipped) + [f"{b}: {why}" for b, why in result.excluded.items()]
    if notes:
        sections.append(("Notes", "\n".join(notes)))
    notifier.send_report(f"Rebalance: {plan.phase}", sections)
