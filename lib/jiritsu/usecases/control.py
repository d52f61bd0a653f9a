"""Halt, resume and flatten: the operator's controls, for ``jiritsu halt|resume|flatten`` and the
dashboard's buttons alike.

Every action records an event naming who asked and from where (the dashboard passes the logged-in
user and the client address) and sends its alert; the callers only parse and render. The
action's time comes from the caller's ``clock`` (the command line and the dashboard: the wall
clock; a simulation: its own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jiritsu import controls
from jiritsu.errors import UsageError
from jiritsu.events import EventType, record_event

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.clock import Clock
    from jiritsu.config import LoadedConfig, Settings
    from jiritsu.engine.flatten import FlattenReport
    from jiritsu.exchange.base import Exchange
    from jiritsu.notify import Notifier

ACTIONS = ("halt", "resume", "flatten")


@dataclass(frozen=True)
class Requester:
    """Who asked for an action: a name (``halted_by``) and, from the dashboard, an address."""

    name: str = "operator"
    via: str = "command line"
    address: str | None = None

    def __str__(self) -> str:
        where = f"{self.via} from {self.address}" if self.address else self.via
        return f"{self.name} ({where})"

    def details(self) -> dict[str, str]:
        out = {"by": self.name, "via": self.via}
        if self.address:
            out["address"] = self.address
        return out


@dataclass(frozen=True)
class ControlResult:
    """What an action did; ``changed`` is False when there was nothing to do."""

    action: str
    scope: str
    changed: bool
    message: str
    report: FlattenReport | None = None


def scope_for(settings: Settings, bot: str | None) -> str:
    """GLOBAL without a bot, else the bot's name; an unknown bot is a usage error."""
    if bot is None:
        return controls.GLOBAL
    if bot not in settings.bot_names:
        raise UsageError(f"no bot named {bot!r} (bots: {', '.join(settings.bot_names)})")
    return bot


def halt(
    engine: Engine,
    settings: Settings,
    *,
    bot: str | None,
    reason: str,
    by: Requester,
    clock: Clock,
    notifier: Notifier | None = None,
) -> ControlResult:
    """Halt everything (``bot`` None) or one bot until someone resumes it."""
    scope = scope_for(settings, bot)
    reason = reason.strip()
    if not reason:
        raise UsageError("a halt needs a reason (shown in status and the alert)")
    now = clock.now()
    if not controls.halt(engine, scope, reason, by=by.name, now=now):
        return ControlResult("halt", scope, False, f"{scope} was already halted")
    record_event(
        engine, "WARNING", EventType.HALT, f"{scope} halted by {by}: {reason}",
        {"scope": scope, "reason": reason, **by.details()}, bot=bot, notifier=notifier, now=now,
    )  # fmt: skip
    return ControlResult("halt", scope, True, f"{scope} halted: {reason}")


def resume(
    engine: Engine,
    settings: Settings,
    *,
    bot: str | None,
    by: Requester,
    clock: Clock,
    notifier: Notifier | None = None,
) -> ControlResult:
    """Lift the global halt (``bot`` None) or one bot's."""
    scope = scope_for(settings, bot)
    now = clock.now()
    if not controls.resume(engine, scope, now=now):
        return ControlResult("resume", scope, False, f"{scope} was not halted")
    record_event(
        engine, "WARNING", EventType.RESUME, f"{scope} resumed by {by}",
        {"scope": scope, **by.details()}, bot=bot, notifier=notifier, now=now,
    )  # fmt: skip
    return ControlResult("resume", scope, True, f"{scope} resumed")


def flatten(
    engine: Engine,
    loaded: LoadedConfig,
    *,
    bot: str | None,
    by: Requester,
    clock: Clock,
    notifier: Notifier | None = None,
    exchange_factory: Callable[[LoadedConfig], Exchange] | None = None,
) -> ControlResult:
    """Halt, cancel every open order and close every position at market (one bot or all).

    The exchange is built from the configuration (paper or Bybit) and closed afterwards; the
    paper exchange runs at its ledger's newest worked bar, so it closes the position ``status``
    shows rather than first working every stored bar up to ``clock``'s time (which stamps the
    halt, the orders and the event).
    """
    from jiritsu.engine.flatten import flatten as run

    scope = scope_for(loaded.settings, bot)
    if exchange_factory is None:
        from jiritsu.clock import SimClock
        from jiritsu.exchange.ledger import worked_until_ms
        from jiritsu.runtime import build_runtime

        worked = worked_until_ms(engine) if loaded.settings.is_paper else None
        ledger = SimClock(worked) if worked is not None else clock
        runtime = build_runtime(loaded, db=engine, notify=False, clock=ledger)
        exchange, close = runtime.exchange, runtime.close
    else:
        exchange = exchange_factory(loaded)
        close = exchange.close
    try:
        report = run(
            engine, exchange, loaded.settings, bot=bot, clock=clock, notifier=notifier, by=by.name,
            requested_by=str(by),
        )  # fmt: skip
    finally:
        close()
    cancelled = sum(1 for line in report.lines if line.action == "cancelled")
    closed = sum(1 for line in report.lines if line.action == "close")
    message = (
        f"{scope} flattened: {cancelled} order(s) cancelled, {closed} position(s) closing, "
        f"{len(report.errors)} error(s); halted: {', '.join(report.halted)}"
    )
    return ControlResult("flatten", scope, True, message, report)


def halt_states(engine: Engine) -> list[controls.HaltState]:
    """Every halt switch, the global one first."""
    states = controls.all_states(engine)
    return sorted(states, key=lambda s: (s.scope != controls.GLOBAL, s.scope))
