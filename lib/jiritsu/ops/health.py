"""``jiritsu health``: named checks of the machine, the database, the trade loop, market data and
the exchange, each ``ok``, ``warn``, ``bad`` or ``skipped``, with the value measured and its limit.

The health timer runs this every few minutes, so it alerts on *changes* only: a check that turns
worse than it was alerts once (WARNING for ``warn``, ERROR for ``bad``) and once more when it
recovers (INFO), never on every run. The previous status of each check is the newest row of
``health_checks``; when the database cannot be used (unreachable, or never migrated) the statuses
of those runs go to ``<data_dir>/health-offline.json`` instead, so that an outage alerts once and
its end alerts once too.

What the checks measure, and when they turn ``warn`` or ``bad`` (thresholds in ``[health]``):

- ``cpu``: CPU use over half a second; warn at ``cpu_pct`` when the previous run measured at
  least that too (one busy half second is a spike, not a finding).
- ``memory``: RAM in use; bad at ``memory_pct``.
- ``swap``: swap in use; warn at ``memory_pct`` (no swap configured is ok).
- ``load``: 5-minute load average per CPU; warn at ``cpu_pct / 100``.
- ``disk``: use of the file system holding ``general.data_dir``; bad at ``disk_pct``.
- ``database``: round trip of ``SELECT 1`` in ms; warn above ``db_latency_ms``; bad when the
  schema is missing; unreachable is bad and makes the run exit 3.
- ``trade_loop``: age of the ``trade-loop`` heartbeat; bad above ``heartbeat_max_age_seconds``;
  warn when it never beat ("not running").
- ``tick``: age of the ``trade-tick`` heartbeat (the last completed trading cycle); bad above
  ``tick_max_age_minutes``.
- ``candles``: minutes since the newest stored 1-minute bar of each traded symbol
  closed; bad above one bar length plus ``candle_max_age_minutes``; warn when there are none.
- ``exchange``: latency of the exchange's server time; bad when unreachable, warn when our
  clock is off by more than half of ``exchange.recv_window_ms``.
- ``errors``: ERROR and CRITICAL events in the last hour (health's own alerts excluded); bad at
  ``max_errors_per_hour``.

Before the trade loop has ever run (a fresh install, the offline demo) there is nothing to be
stale: a missing trade-loop heartbeat is ``warn`` ("not running"), and stale candles or ticks are
``warn`` rather than ``bad``. Once the loop has beaten, they count in full.

A database that ran on simulated time (a replay, ``jiritsu simulate``: the marker of
:func:`jiritsu.heartbeat.simulated_time`) is judged on that clock: candles, the last cycle and
the error rate are measured against the simulated "now", and a loop that is not running is
``warn`` (nothing live is expected of it), not ``bad``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from jiritsu.clock import wall_now
from jiritsu.errors import DatabaseUnavailable, ExitCode

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.config import LoadedConfig, Settings
    from jiritsu.config.ops import HealthSettings
    from jiritsu.exchange.base import Exchange
    from jiritsu.heartbeat import Beat, SimulatedTime
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.health")

__all__ = [
    "BAD",
    "CHECK_NAMES",
    "OK",
    "SKIPPED",
    "WARN",
    "Alert",
    "Check",
    "HealthReport",
    "PsutilProbe",
    "SystemProbe",
    "candle_check",
    "database_check",
    "error_rate_check",
    "exchange_check",
    "plan_alerts",
    "probe_error",
    "run_health",
    "sustained_cpu",
    "system_checks",
    "tick_check",
    "trade_loop_check",
]

OK, WARN, BAD, SKIPPED = "ok", "warn", "bad", "skipped"
_RANK = {SKIPPED: -1, OK: 0, WARN: 1, BAD: 2}
_ALERT_LEVEL = {WARN: "WARNING", BAD: "ERROR"}
CHECK_NAMES = (
    "cpu",
    "memory",
    "swap",
    "load",
    "disk",
    "database",
    "trade_loop",
    "tick",
    "candles",
    "errors",
    "exchange",
)
OFFLINE_STATE = "health-offline.json"
PROBE_TIMEOUT_SECONDS = 5.0  # a probe of the exchange (health, doctor): one short try
_SCHEMA_TABLES = ("health_checks", "heartbeats", "candles", "system_events")
# Bybit interval -> bar length in minutes ("M" is at most 31 days).
_BAR_MINUTES = {
    "1": 1,
    "3": 3,
    "5": 5,
    "15": 15,
    "30": 30,
    "60": 60,
    "120": 120,
    "240": 240,
    "360": 360,
    "720": 720,
    "D": 1440,
    "W": 10080,
    "M": 44640,
}


# --------------------------------------------------------------------------- results


@dataclass
class Check:
    """One check's verdict: what was measured (``value`` in ``unit``) against ``threshold``."""

    name: str
    status: str
    message: str
    value: float | None = None
    threshold: float | None = None
    unit: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Alert:
    """A change of a check's status, as recorded.

    ``notified``: it passed ``min_level`` and went to the notifier. ``delivery`` says what became
    of it: ``sent`` (a channel such as Discord took it), ``logged only`` (no webhook
    configured), ``send failed`` or ``recorded`` (below ``min_level``, stored only).
    """

    check: str
    level: str
    previous: str | None
    status: str
    message: str
    notified: bool
    delivery: str = "recorded"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class HealthReport:
    """Every check of one run, the alerts it raised and whether it reached the database.

    ``data_time`` is the simulated "now" the data was judged against (None: the wall clock).
    """

    checked_at: datetime
    checks: list[Check]
    database_reachable: bool = True
    recorded: bool = False
    alerts: list[Alert] = field(default_factory=list)
    data_time: datetime | None = None
    data_clock: str | None = None

    @property
    def status(self) -> str:
        """The worst status of any check (``skipped`` counts as ``ok``)."""
        worst = max((_RANK[c.status] for c in self.checks), default=0)
        return {0: OK, 1: WARN, 2: BAD}[max(worst, 0)]

    @property
    def healthy(self) -> bool:
        return self.status != BAD and self.database_reachable

    @property
    def exit_code(self) -> ExitCode:
        """3 when the database is unreachable, 1 when any check is bad, else 0."""
        if not self.database_reachable:
            return ExitCode.DB_UNREACHABLE
        return ExitCode.FAILURE if self.status == BAD else ExitCode.OK

    def check(self, name: str) -> Check:
        """The check called ``name`` (KeyError if this run has none)."""
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "healthy": self.healthy,
            "exit_code": int(self.exit_code),
            "checked_at": self.checked_at.isoformat(),
            "database_reachable": self.database_reachable,
            "recorded": self.recorded,
            "data_time": self.data_time.isoformat() if self.data_time else None,
            "data_clock": self.data_clock,
            "checks": [c.as_dict() for c in self.checks],
            "alerts": [a.as_dict() for a in self.alerts],
        }


# --------------------------------------------------------------------------- formatting


def _duration(seconds: float) -> str:
    seconds = int(max(0.0, seconds))
    if seconds < 120:
        return f"{seconds}s"
    minutes, _ = divmod(seconds, 60)
    if minutes < 120:
        return f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def probe_error(exc: BaseException) -> str:
    """A failed probe's exception as one line (type and text) that is safe to show and store:
    redacted, white space squeezed, at most 300 characters."""
    from jiritsu.redact import redact

    text = " ".join(str(exc).split()) or "no details"
    return redact(f"{type(exc).__name__}: {text}")[:300]


# --------------------------------------------------------------------------- the machine


class SystemProbe(Protocol):
    """Where the machine's numbers come from (psutil in production, a fake in tests)."""

    def cpu_percent(self) -> float: ...

    def memory_percent(self) -> float: ...

    def swap(self) -> tuple[float, int]:
        """(percent used, total bytes)."""
        ...

    def load_per_cpu(self) -> tuple[float, float, float]:
        """1-, 5- and 15-minute load averages divided by the number of CPUs."""
        ...

    def disk(self, path: Path) -> tuple[float, int]:
        """(percent used, free bytes) of the file system holding ``path``."""
        ...


@dataclass
class PsutilProbe:
    """The real machine, through psutil (imported on first use) and ``os.getloadavg``."""

    cpu_interval: float = 0.5

    def cpu_percent(self) -> float:
        import psutil

        return float(psutil.cpu_percent(interval=self.cpu_interval))

    def memory_percent(self) -> float:
        import psutil

        return float(psutil.virtual_memory().percent)

    def swap(self) -> tuple[float, int]:
        import psutil

        swap = psutil.swap_memory()
        return float(swap.percent), int(swap.total)

    def load_per_cpu(self) -> tuple[float, float, float]:
        cpus = os.cpu_count() or 1
        one, five, fifteen = os.getloadavg()
        return one / cpus, five / cpus, fifteen / cpus

    def disk(self, path: Path) -> tuple[float, int]:
        import psutil

        usage = psutil.disk_usage(str(_existing(path)))
        return float(usage.percent), int(usage.free)


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the data dir may not exist yet)."""
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _measured(name: str, measure: Callable[[], Check]) -> Check:
    try:
        return measure()
    except Exception as exc:  # noqa: BLE001 - one broken probe must not hide the other checks
        return Check(name, WARN, f"could not measure: {probe_error(exc)}")


def system_checks(health: HealthSettings, data_dir: Path, probe: SystemProbe) -> list[Check]:
    """CPU, memory, swap, load and the disk of the data directory."""

    def cpu() -> Check:
        pct = probe.cpu_percent()
        status = WARN if pct >= health.cpu_pct else OK
        return Check(
            "cpu", status, f"CPU {pct:.0f}% (limit {health.cpu_pct:g}%)", pct, health.cpu_pct, "%"
        )

    def memory() -> Check:
        pct = probe.memory_percent()
        status = BAD if pct >= health.memory_pct else OK
        return Check(
            "memory",
            status,
            f"memory {pct:.0f}% used (limit {health.memory_pct:g}%)",
            pct,
            health.memory_pct,
            "%",
        )

    def swap() -> Check:
        pct, total = probe.swap()
        if total <= 0:
            return Check("swap", OK, "no swap configured", 0.0, health.memory_pct, "%")
        status = WARN if pct >= health.memory_pct else OK
        return Check(
            "swap",
            status,
            f"swap {pct:.0f}% of {_bytes(total)} used " f"(limit {health.memory_pct:g}%)",
            pct,
            health.memory_pct,
            "%",
        )

    def load() -> Check:
        one, five, fifteen = probe.load_per_cpu()
        limit = health.cpu_pct / 100
        status = WARN if five >= limit else OK
        return Check(
            "load",
            status,
            f"load per CPU {one:.2f} / {five:.2f} / {fifteen:.2f} "
            f"(1/5/15 min; limit {limit:.2f})",
            five,
            limit,
            "per CPU",
        )

    def disk() -> Check:
        pct, free = probe.disk(data_dir)
        status = BAD if pct >= health.disk_pct else OK
        return Check(
            "disk",
            status,
            f"{pct:.0f}% used, {_bytes(free)} free on "
            f"{_existing(data_dir)} (limit {health.disk_pct:g}%)",
            pct,
            health.disk_pct,
            "%",
        )

    return [
        _measured(name, fn)
        for name, fn in (
            ("cpu", cpu),
            ("memory", memory),
            ("swap", swap),
            ("load", load),
            ("disk", disk),
        )
    ]


# --------------------------------------------------------------------------- the database


def missing_tables(engine: Engine) -> list[str]:
    """The tables health needs that the database lacks (all of them before ``db upgrade``)."""
    import sqlalchemy as sa

    inspector = sa.inspect(engine)
    return [t for t in _SCHEMA_TABLES if not inspector.has_table(t)]


def database_check(engine: Engine, limit_ms: float) -> Check:
    """Round trip of ``SELECT 1`` on the (already reachable) database, and its schema."""
    import sqlalchemy as sa

    start = time.perf_counter()
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
    ms = (time.perf_counter() - start) * 1000
    missing = missing_tables(engine)
    if missing:
        return Check(
            "database",
            BAD,
            "reachable, but the schema is missing ("
            f"{', '.join(missing)}): run `jiritsu db upgrade`",
            ms,
            limit_ms,
            "ms",
        )
    status = WARN if ms > limit_ms else OK
    return Check(
        "database", status, f"SELECT 1 in {ms:.1f} ms (limit {limit_ms:g} ms)", ms, limit_ms, "ms"
    )


# --------------------------------------------------------------------------- the trade loop


def trade_loop_check(
    loop: Beat | None,
    max_age_seconds: float,
    now: datetime,
    *,
    simulated: SimulatedTime | None = None,
) -> Check:
    """Liveness of the trade loop from the age of its (wall-clock) heartbeat.

    On a database that ran on simulated time no live loop is expected: not running is ``warn``.
    """
    sim = (
        f"; this database ran on simulated time up to {simulated.until:%Y-%m-%d %H:%M} UTC "
        f"({simulated.source})"
        if simulated is not None
        else ""
    )
    if loop is None:
        return Check(
            "trade_loop", WARN, f"not running (no heartbeat yet){sim}", None, max_age_seconds, "s"
        )
    age = loop.age_seconds(now)
    who = f"pid {loop.pid} on {loop.host}" if loop.pid else "unknown process"
    details = loop.details if isinstance(loop.details, dict) else {}
    if details.get("stopped") and (simulated is not None or age <= max_age_seconds):
        # It said goodbye: a finished replay, or a live loop stopped for a restart (bad only
        # when no new one beats within the limit, as for a loop that died).
        at = f" at step {details['step_time']}" if details.get("step_time") else ""
        return Check(
            "trade_loop",
            WARN if simulated is not None else OK,
            f"not running: stopped{at}, {_duration(age)} ago ({who}){sim}",
            age,
            max_age_seconds,
            "s",
        )
    if age > max_age_seconds:
        return Check(
            "trade_loop",
            WARN if simulated is not None else BAD,
            f"no heartbeat for {_duration(age)} (limit "
            f"{_duration(max_age_seconds)}); last from {who}{sim}",
            age,
            max_age_seconds,
            "s",
        )
    up = f", up {_duration((now - loop.started_at).total_seconds())}" if loop.started_at else ""
    return Check(
        "trade_loop",
        OK,
        f"alive: heartbeat {_duration(age)} ago ({who}{up})",
        age,
        max_age_seconds,
        "s",
    )


def tick_check(
    tick: Beat | None, loop: Beat | None, max_age_minutes: float, now: datetime
) -> Check:
    """How long ago the last trading cycle completed (the ``trade-tick`` heartbeat)."""
    limit = max_age_minutes * 60
    if tick is None:
        if loop is None:
            return Check(
                "tick",
                WARN,
                "no trading cycle yet (the trade loop has never run)",
                None,
                limit,
                "s",
            )
        running = (now - (loop.started_at or loop.last_seen)).total_seconds()
        if running > limit:
            return Check(
                "tick",
                BAD,
                f"no trading cycle completed since the trade loop started "
                f"{_duration(running)} ago (limit {_duration(limit)})",
                running,
                limit,
                "s",
            )
        return Check(
            "tick",
            OK,
            f"first trading cycle pending (loop up {_duration(running)})",
            running,
            limit,
            "s",
        )
    age = tick.age_seconds(now)
    if age > limit:
        status = BAD if loop is not None else WARN
        why = "" if loop is not None else "; the trade loop has never run"
        return Check(
            "tick",
            status,
            f"last trading cycle {_duration(age)} ago (limit " f"{_duration(limit)}){why}",
            age,
            limit,
            "s",
        )
    return Check("tick", OK, f"last trading cycle {_duration(age)} ago", age, limit, "s")


def candle_check(engine: Engine, settings: Settings, now: datetime, *, loop_has_run: bool) -> Check:
    """Staleness of the newest stored 1-minute bar of every traded symbol (and the index).

    Candles are stored as 1-minute bars and resampled to each bot's timeframe when read, so the
    1-minute series is what must stay fresh. A bar is late when the bar after it should have
    closed more than ``candle_max_age_minutes`` ago.
    """
    import sqlalchemy as sa

    from jiritsu.db.models import Candle

    symbols = {bot.symbol for bot in settings.enabled_bots}
    if symbols:
        symbols.add(settings.master_bot.index_symbol)
    pairs = sorted((symbol, "1") for symbol in symbols)
    if not pairs:
        return Check("candles", SKIPPED, "skipped: no enabled bot")
    grace = settings.health.candle_max_age_minutes
    now_ms = now.timestamp() * 1000
    missing: list[str] = []
    late: list[str] = []
    worst: tuple[float, float] | None = None  # (minutes since close, limit) furthest over
    with engine.connect() as conn:
        for symbol, interval in pairs:
            newest = conn.execute(
                sa.select(sa.func.max(Candle.ts)).where(
                    Candle.symbol == symbol, Candle.interval == interval
                )
            ).scalar()
            if newest is None:
                missing.append(f"{symbol} {interval}")
                continue
            bar = _BAR_MINUTES.get(interval, 1)
            closed_ago = max(0.0, (now_ms - (int(newest) + bar * 60_000)) / 60_000)
            limit = bar + grace
            if worst is None or closed_ago - limit > worst[0] - worst[1]:
                worst = (closed_ago, limit)
            if closed_ago > limit:
                late.append(f"{symbol} {interval} closed {_duration(closed_ago * 60)} ago")
    worst_value, worst_limit = worst if worst else (None, None)
    if late:
        status = BAD if loop_has_run else WARN
        why = "" if loop_has_run else " (the trade loop has never run)"
        return Check(
            "candles", status, "stale: " + "; ".join(late) + why, worst_value, worst_limit, "min"
        )
    if len(missing) == len(pairs):
        return Check("candles", WARN, "no candles yet for " + ", ".join(missing))
    if missing:
        return Check(
            "candles", WARN, "no candles for " + ", ".join(missing), worst_value, worst_limit, "min"
        )
    return Check(
        "candles",
        OK,
        f"newest bars closed within {_duration((worst_value or 0) * 60)}",
        worst_value,
        worst_limit,
        "min",
    )


def error_rate_check(engine: Engine, limit: int, now: datetime) -> Check:
    """ERROR and CRITICAL events of the last hour (health's own alerts do not count)."""
    import sqlalchemy as sa

    from jiritsu.db.models import SystemEvent
    from jiritsu.events import EventType

    with engine.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count())
            .select_from(SystemEvent)
            .where(
                SystemEvent.timestamp >= now - timedelta(hours=1),
                SystemEvent.level.in_(("ERROR", "CRITICAL")),
                SystemEvent.event_type != EventType.HEALTH.value,
            )
        ).scalar_one()
    status = BAD if count >= limit else OK
    return Check(
        "errors",
        status,
        f"{count} ERROR/CRITICAL events in the last hour (limit " f"{limit})",
        float(count),
        float(limit),
        "per hour",
    )


# --------------------------------------------------------------------------- the exchange

ExchangeBuilder = Callable[..., "Exchange"]


def probe_config(loaded: LoadedConfig, timeout: float) -> LoadedConfig:
    """The configuration with a short request timeout and no retries: a probe, not a trade."""
    settings = loaded.settings
    exchange = settings.exchange.model_copy(
        update={
            "request_timeout_seconds": min(settings.exchange.request_timeout_seconds, timeout),
            "max_retries": 0,
        }
    )
    return dataclasses.replace(loaded, settings=settings.model_copy(update={"exchange": exchange}))


def exchange_check(
    loaded: LoadedConfig,
    *,
    builder: ExchangeBuilder | None = None,
    timeout: float = PROBE_TIMEOUT_SECONDS,
) -> Check:
    """Reachability of the exchange (its server time) and the skew of our clock against it.

    Paper mode builds the paper exchange, which answers locally.
    """
    settings = loaded.settings
    environment = settings.general.environment
    runtimes: list[Any] = []
    if builder is None:
        from jiritsu.runtime import build_runtime

        def builder(quick: LoadedConfig, *, require_keys: bool) -> Exchange:
            runtimes.append(build_runtime(quick, require_keys=require_keys, notify=False))
            return runtimes[-1].exchange

    try:
        exchange = builder(probe_config(loaded, timeout), require_keys=False)
    except Exception as exc:  # noqa: BLE001 - any failure to build it is the finding
        return Check(
            "exchange", BAD, f"{environment}: cannot set up the exchange: " f"{probe_error(exc)}"
        )
    try:
        before = wall_now()  # the skew of the wall clock against the exchange's
        start = time.perf_counter()
        server = exchange.server_time()
        ms = (time.perf_counter() - start) * 1000
        after = wall_now()
    except Exception as exc:  # noqa: BLE001 - unreachable, whatever the reason
        return Check("exchange", BAD, f"{environment}: unreachable: {probe_error(exc)}")
    finally:
        try:
            exchange.close()
            for runtime in runtimes:
                runtime.close()
        except Exception as exc:  # noqa: BLE001 - closing is best effort
            log.debug("closing the exchange failed: %s", exc)
    skew = server.timestamp() - (before.timestamp() + after.timestamp()) / 2
    max_skew = settings.exchange.recv_window_ms / 2000
    where = "paper exchange (local)" if environment == "paper" else environment
    if abs(skew) > max_skew:
        return Check(
            "exchange",
            WARN,
            f"{where}: our clock is {skew:+.1f}s off the exchange's "
            f"(limit {max_skew:g}s: signed requests fail beyond recv_window); fix NTP",
            ms,
            None,
            "ms",
        )
    return Check(
        "exchange",
        OK,
        f"{where}: server time in {ms:.0f} ms, clock skew {skew:+.2f}s",
        ms,
        None,
        "ms",
    )


# --------------------------------------------------------------------------- alerts


def plan_alerts(
    checks: Iterable[Check], previous: Mapping[str, str]
) -> list[tuple[Check, str | None, str, str]]:
    """(check, previous status, event level, gate level) for every check whose status changed.

    Worse than before alerts at WARNING (warn) or ERROR (bad); back to ok alerts at INFO
    ("recovered"); bad to warn at INFO ("improved"). ``skipped`` never alerts and a previous
    ``skipped`` counts as unknown. The gate is the level the operator's ``min_level`` is
    compared with: a recovery is sent when the alert it ends was.
    """
    planned: list[tuple[Check, str | None, str, str]] = []
    for check in checks:
        if check.status == SKIPPED:
            continue
        prev = previous.get(check.name)
        prev = None if prev == SKIPPED or prev not in _RANK else prev
        if check.status == prev:
            continue
        if check.status == OK:
            if prev in (WARN, BAD):
                planned.append((check, prev, "INFO", _ALERT_LEVEL[prev]))
        elif prev is None or _RANK[check.status] > _RANK[prev]:
            level = _ALERT_LEVEL[check.status]
            planned.append((check, prev, level, level))
        else:  # bad -> warn
            planned.append((check, prev, "INFO", _ALERT_LEVEL[BAD]))
    return planned


def _alert_message(check: Check, prev: str | None) -> str:
    if check.status == OK:
        return f"{check.name} recovered (was {prev}): {check.message}"
    if prev == BAD:
        return f"{check.name} improved to {check.status}: {check.message}"
    return f"{check.name} is {check.status}: {check.message}"


def _send_alerts(
    engine: Engine | None,
    checks: list[Check],
    previous: Mapping[str, str],
    notifier: Notifier | None,
    min_level: str,
    now: datetime,
) -> list[Alert]:
    from jiritsu.events import EventType, record_event
    from jiritsu.notify.base import LogNotifier, level_number

    alerts = []
    for check, prev, level, gate in plan_alerts(checks, previous):
        send = notifier is not None and level_number(gate) >= level_number(min_level)
        message = _alert_message(check, prev)
        details = {
            "check": check.name,
            "status": check.status,
            "previous": prev,
            "value": check.value,
            "threshold": check.threshold,
            "unit": check.unit or None,
        }
        record_event(engine, level, EventType.HEALTH, message, details, now=now)
        delivery = "recorded"
        if notifier is not None and send:
            delivered = notifier.notify(level, EventType.HEALTH.value, message, details)
            if isinstance(notifier, LogNotifier):
                delivery = "logged only"  # no channel configured: "sent" would be a lie
            else:
                delivery = "sent" if delivered else "send failed"
        alerts.append(Alert(check.name, level, prev, check.status, message, send, delivery))
    return alerts


# --------------------------------------------------------------------------- state


@dataclass
class _OfflineState:
    """Statuses of the runs that could not be stored in the database (outage, no schema)."""

    path: Path

    def read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            statuses = data.get("statuses", {})
            return (
                {str(k): str(v) for k, v in statuses.items()} if isinstance(statuses, dict) else {}
            )
        except (OSError, ValueError, AttributeError):
            return {}

    def write(self, now: datetime, checks: list[Check]) -> None:
        data = {"checked_at": now.isoformat(), "statuses": {c.name: c.status for c in checks}}
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)

    def clear(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.path, exc)


def _previous_value(engine: Engine, name: str) -> float | None:
    import sqlalchemy as sa

    from jiritsu.db.models import HealthCheck

    with engine.connect() as conn:
        value = conn.execute(
            sa.select(HealthCheck.value)
            .where(HealthCheck.check_name == name)
            .order_by(HealthCheck.ts.desc(), HealthCheck.id.desc())
            .limit(1)
        ).scalar()
    return None if value is None else float(value)


def sustained_cpu(check: Check, previous_value: float | None) -> Check:
    """A CPU reading over the limit warns only when the previous run's reading was over it too.

    Half a second of CPU is noisy; without this, a busy box would alert and recover every few
    runs. The 5-minute ``load`` check covers a machine that is saturated for longer.
    """
    if check.status != WARN or check.threshold is None:
        return check
    if previous_value is not None and previous_value >= check.threshold:
        return dataclasses.replace(check, message=f"{check.message}; also in the previous check")
    return dataclasses.replace(
        check, status=OK, message=f"{check.message}: a spike (warns if the next check agrees)"
    )


def _previous_statuses(engine: Engine, names: Iterable[str]) -> dict[str, str]:
    import sqlalchemy as sa

    from jiritsu.db.models import HealthCheck

    found: dict[str, str] = {}
    with engine.connect() as conn:
        for name in names:
            status = conn.execute(
                sa.select(HealthCheck.status)
                .where(HealthCheck.check_name == name)
                .order_by(HealthCheck.ts.desc(), HealthCheck.id.desc())
                .limit(1)
            ).scalar()
            if status is not None:
                found[name] = str(status)
    return found


def _store(engine: Engine, checks: list[Check], now: datetime, keep_days: int) -> None:
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import HealthCheck

    cutoff = now - timedelta(days=keep_days)
    with session_scope(engine) as session:
        for c in checks:
            session.add(
                HealthCheck(
                    ts=now,
                    check_name=c.name,
                    status=c.status,
                    value=c.value,
                    message=c.message,
                    details={"threshold": c.threshold, "unit": c.unit or None},
                )
            )
            session.execute(
                sa.delete(HealthCheck).where(
                    HealthCheck.check_name == c.name, HealthCheck.ts < cutoff
                )
            )


# --------------------------------------------------------------------------- the run


def _on_data_clock(found: Beat | None, simulated: SimulatedTime | None) -> Beat | None:
    """A heartbeat as seen on the simulated clock: its step time instead of its wall time."""
    if found is None or simulated is None or not isinstance(found.details, dict):
        return found
    step = found.details.get("step_time")
    if not step:
        return found
    when = datetime.fromisoformat(str(step))
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    return dataclasses.replace(found, last_seen=when, started_at=None)


def _skipped(names: Iterable[str], why: str) -> list[Check]:
    return [Check(name, SKIPPED, f"skipped: {why}") for name in names]


def run_health(
    loaded: LoadedConfig,
    *,
    notifier: Notifier | None = None,
    min_level: str = "WARNING",
    probe: SystemProbe | None = None,
    exchange_builder: ExchangeBuilder | None = None,
    now: datetime | None = None,
) -> HealthReport:
    """Run every check, store the results, alert on changes and beat the ``health`` heartbeat.

    ``notifier`` must pass INFO (build it with ``min_level="INFO"``): recoveries are INFO, and
    which alerts reach the operator is decided here against ``min_level`` (the configured
    ``notifications.min_level``), so that a recovery is sent exactly when its alert was.
    Never raises for an unhealthy system: the report's ``exit_code`` says it (3 when the
    database is unreachable, 1 when any check is bad).
    """
    from jiritsu.db.engine import connect
    from jiritsu.heartbeat import HEALTH, TRADE_LOOP, TRADE_TICK, beat, last_beat, simulated_time

    settings = loaded.settings
    health = settings.health
    now = now or wall_now()  # a health check asks about now
    checks = system_checks(health, settings.general.data_dir, probe or PsutilProbe())
    offline = _OfflineState(settings.general.data_dir / OFFLINE_STATE)
    db_dependent = ("trade_loop", "tick", "candles", "errors")

    try:
        engine = connect(
            loaded.db_url,
            attempts=max(1, settings.database.reconnect_attempts),
            base_delay=settings.database.reconnect_base_delay_seconds,
            connect_timeout=settings.database.connect_timeout_seconds,
            create=False,
        )
    except DatabaseUnavailable as exc:
        checks.append(Check("database", BAD, str(exc)))
        checks += _skipped(db_dependent, "database unreachable")
        if settings.is_paper:  # the paper exchange keeps its books in the database
            checks += _skipped(["exchange"], "database unreachable")
        else:
            checks.append(exchange_check(loaded, builder=exchange_builder))
        report = HealthReport(now, checks, database_reachable=False)
        report.alerts = _send_alerts(None, checks, offline.read(), notifier, min_level, now)
        offline.write(now, checks)
        return report

    try:
        db = database_check(engine, health.db_latency_ms)
        checks.append(db)
        if db.status == BAD:  # reachable but not migrated: nothing to read or store
            checks += _skipped([*db_dependent, "exchange"], "database schema missing")
            report = HealthReport(now, checks)
            report.alerts = _send_alerts(None, checks, offline.read(), notifier, min_level, now)
            offline.write(now, checks)
            return report

        checks = [
            sustained_cpu(c, _previous_value(engine, "cpu")) if c.name == "cpu" else c
            for c in checks
        ]
        loop = last_beat(engine, TRADE_LOOP)
        tick = last_beat(engine, TRADE_TICK)
        simulated = simulated_time(engine)
        data_now = simulated.until if simulated is not None else now
        checks.append(
            trade_loop_check(loop, health.heartbeat_max_age_seconds, now, simulated=simulated)
        )
        checks.append(
            tick_check(
                _on_data_clock(tick, simulated),
                _on_data_clock(loop, simulated),
                health.tick_max_age_minutes,
                data_now,
            )
        )
        checks.append(candle_check(engine, settings, data_now, loop_has_run=loop is not None))
        checks.append(error_rate_check(engine, health.max_errors_per_hour, data_now))
        checks.append(exchange_check(loaded, builder=exchange_builder))

        previous = _previous_statuses(engine, [c.name for c in checks])
        previous.update(offline.read())  # runs during an outage are newer than the table
        report = HealthReport(now, checks)
        if simulated is not None:
            report.data_time, report.data_clock = simulated.until, simulated.source
        _store(engine, checks, now, keep_days=settings.general.log_retention_days)
        report.recorded = True
        offline.clear()
        report.alerts = _send_alerts(engine, checks, previous, notifier, min_level, now)
        beat(
            engine,
            HEALTH,
            {
                "status": report.status,
                "bad": [c.name for c in checks if c.status == BAD],
                "warn": [c.name for c in checks if c.status == WARN],
            },
            now=now,
        )
        return report
    finally:
        engine.dispose()
