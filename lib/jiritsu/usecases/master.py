"""The master layer's use-cases: phase, rebalance, save-profit and snapshot, on a runtime.

The policy the commands used to hold lives here: where fresh index candles come from (the
runtime's market-data client, so ``price_source`` is honoured: offline means stored candles),
what time it is (the runtime's clock), who is notified (nobody on a dry run).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jiritsu.controls import StateReader
    from jiritsu.master.phase import PhaseReading
    from jiritsu.master.profit import SaveResult
    from jiritsu.master.rebalance import RebalanceResult
    from jiritsu.master.snapshot import PortfolioSnapshot
    from jiritsu.runtime import Runtime


@dataclass(frozen=True)
class PhaseNow:
    reading: PhaseReading
    stored: bool | None  # None: not recorded (asked not to)


@dataclass(frozen=True)
class PhaseHistory:
    readings: list[PhaseReading]
    added: int | None  # None: not recorded


def phase(rt: Runtime, *, at: datetime | None = None, record: bool = True) -> PhaseNow:
    """The phase as of ``at`` (default: now, topped up from the runtime's live client)."""
    from jiritsu.master import phase as ph

    now = at or rt.clock.now()
    reading = ph.current_phase(rt.market, rt.settings, now=now, refresh=at is None)
    return PhaseNow(reading, ph.record_reading(rt.db, reading) if record else None)


def phase_history(
    rt: Runtime, start: datetime, end: datetime, *, record: bool = False
) -> PhaseHistory:
    """The phase of every bar that closed in ``[start, end]``, from stored candles."""
    from jiritsu.master import phase as ph

    readings = ph.history(rt.market, rt.settings, start=start, end=end)
    return PhaseHistory(readings, ph.record_readings(rt.db, readings) if record else None)


def rebalance(
    rt: Runtime, *, dry_run: bool = False, halt_states: StateReader | None = None
) -> RebalanceResult:
    """Move capital between sub-accounts to the phase's allocation (``halt_states``: see
    :func:`jiritsu.controls.state`)."""
    from jiritsu.master.rebalance import run_rebalance

    return run_rebalance(
        rt.db, rt.exchange, rt.settings, now=rt.clock.now(), dry_run=dry_run,
        notifier=None if dry_run else rt.notifier, market=rt.market, halt_states=halt_states,
    )  # fmt: skip


def save_profit(rt: Runtime, *, dry_run: bool = False, force: bool = False) -> SaveResult:
    """Sweep a share of each bot's profit to the savings account."""
    from jiritsu.master.profit import run_save_profit

    return run_save_profit(
        rt.db, rt.exchange, rt.settings, now=rt.clock.now(), dry_run=dry_run, force=force,
        notifier=None if dry_run else rt.notifier,
    )  # fmt: skip


def snapshot(rt: Runtime) -> PortfolioSnapshot:
    """Record a portfolio snapshot now."""
    from jiritsu.master.snapshot import take_snapshot

    return take_snapshot(rt.db, rt.exchange, rt.settings, now=rt.clock.now())
