"""``jiritsu simulate``: the whole autonomous system over stored candles, on a simulated clock.

One run is the trade loop of ``trade-loop --replay`` (the same :class:`~jiritsu.engine.loop.
TradeLoop`, bot steps, breakers and hourly snapshots) with the timer jobs woven in at the times
their systemd timers would fire (:func:`jiritsu.ops.systemd.schedules` reads the same settings):

- ``rebalance`` every ``master_bot.rebalance_interval_hours`` on the hour from midnight UTC
  (:func:`jiritsu.master.rebalance.run_rebalance`; with ``--no-rebalance`` the phase is still
  read and recorded at those times);
- ``save-profit`` at ``profit_save_day`` / ``profit_save_hour``
  (:func:`jiritsu.master.profit.run_save_profit`);
- ``tune`` at ``optimizer.schedule`` (:func:`jiritsu.tune.run_tuning` with ``end_ms`` = now: it
  sees only candles before the simulated time; its overlay goes to the simulation's data
  directory and the loop reloads it, as SIGHUP does live).

A job due at ``t`` runs right after the loop's step at ``t`` (the loop wakes at job times too),
on the same paper exchange and database. The database is a fresh SQLite file in the data
directory (default ``<data_dir>/sim``), filled with the candles copied from the configured store,
so ``jiritsu status`` and ``jiritsu dashboard serve`` work on it afterwards (point
``JIRITSU_GENERAL__DATA_DIR`` at it). The run leaves a ``simulated-clock`` heartbeat: this
database ran on simulated time up to the end.

Advisors: Gemini knows the history, so asking it about old candles would be lookahead. A
``gemini``/``hybrid`` bot answers each bar with the decision it recorded live for that bar in the
configured database, where there is one, and with its rule otherwise; the result counts both.
Stored news items are copied with their timestamps (:mod:`jiritsu.simulate.recorded`).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiritsu.clock import from_ms, to_ms
from jiritsu.engine.loop import LoopOptions, TradeLoop
from jiritsu.errors import Halted, UsageError
from jiritsu.simulate.recorded import advisor_note

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.advisors.base import Decision
    from jiritsu.config import LoadedConfig
    from jiritsu.simulate.ahead import TuningsAhead
    from jiritsu.simulate.recorded import RecordedAdvisor

log = logging.getLogger("jiritsu.simulate")

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
WARMUP_DAYS = 7  # without --from: the simulation starts this long after the first candle
HISTORY_DAYS = 60  # candles before FROM for the bots' indicators (1000 hourly bars = 42 days)
FRESH = ("jiritsu.db", "jiritsu.db-wal", "jiritsu.db-shm", "tuned.toml", "candles")


@dataclass
class SimOptions:
    start_ms: int
    end_ms: int
    data_dir: Path
    tune: bool = True
    rebalance: bool = True
    save_profit: bool = True
    progress: Callable[[int], None] | None = None  # called with the simulated time (ms)
    # the monthly tunings computed ahead in a worker process (:mod:`jiritsu.simulate.ahead`);
    # False: in the loop's process, at their times
    tune_ahead: bool = True


@dataclass
class JobRun:
    """One timer job the simulation ran: what, when, how long (wall) and what it did."""

    job: str
    t: int
    seconds: float
    outcome: Any = None
    cpu: float = 0.0  # CPU seconds, the tuner's worker processes included


@dataclass
class SimRun:
    """What a simulation produced (the summary is computed from its database)."""

    options: SimOptions
    loaded: LoadedConfig
    jobs: list[JobRun] = field(default_factory=list)
    tunings: list[dict[str, Any]] = field(default_factory=list)
    advisors: dict[str, str] = field(default_factory=dict)
    loop_seconds: float = 0.0
    setup_seconds: float = 0.0
    wall_seconds: float = 0.0
    loop_cpu: float = 0.0  # CPU seconds of the loop (jobs included) and of the set-up
    setup_cpu: float = 0.0
    exit_code: int = 0
    ahead: TuningsAhead | None = None  # the tunings' worker, when they run ahead


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended (a tuning's workers)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def sim_environ(loaded: LoadedConfig, data_dir: Path) -> dict[str, str]:
    """The environment that turns the configuration into the simulation's: paper on the stored
    candles, its own SQLite database and overlay in ``data_dir``, no alerts, rules advisors."""
    env = dict(os.environ)
    env.update(
        {
            "JIRITSU_GENERAL__ENVIRONMENT": "paper",
            "JIRITSU_GENERAL__DATA_DIR": str(data_dir),
            "JIRITSU_DATABASE__DB_TYPE": "sqlite",
            "JIRITSU_DATABASE__DB_URL": f"sqlite:///{data_dir / 'jiritsu.db'}",
            "JIRITSU_DATABASE__DB_URL_ENV": "",
            "JIRITSU_PAPER__PRICE_SOURCE": "replay",
            "JIRITSU_NOTIFICATIONS__ENABLED": "false",
        }
    )
    for i, bot in enumerate(loaded.settings.sub_bots):
        if bot.advisor != "rules":
            env[f"JIRITSU_SUB_BOTS__{i}__ADVISOR"] = "rules"
    return env


def _fresh_dir(data_dir: Path) -> None:
    """Remove what an earlier simulation left in ``data_dir`` (only the files it writes)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in FRESH:
        path = data_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def copy_candles(
    source: LoadedConfig, engine: Engine, settings: Any, lo_ms: int, hi_ms: int
) -> dict[str, int]:
    """Copy the stored 1-minute candles of every traded symbol and the index in
    ``[lo_ms, hi_ms)`` from the configured store into the simulation's; rows per symbol."""
    from jiritsu.db.engine import connect_configured
    from jiritsu.market.store import CandleStore, cache_root

    symbols = sorted({b.symbol for b in settings.enabled_bots} | {settings.master_bot.index_symbol})
    src_engine = connect_configured(source)
    try:
        src = CandleStore(src_engine, cache_root(source.settings.general.data_dir))
        dst = CandleStore(engine, cache_root(settings.general.data_dir))
        copied = {}
        for symbol in symbols:
            frame = src.load(symbol, "1", lo_ms, hi_ms)
            if frame.height == 0:
                raise UsageError(
                    f"no stored 1-minute candles for {symbol} between {from_ms(lo_ms):%Y-%m-%d} "
                    f"and {from_ms(hi_ms):%Y-%m-%d}: run `jiritsu data import FILE`, "
                    "`jiritsu data synth` or `jiritsu data backfill` first"
                )
            dst.write(symbol, "1", frame)
            copied[symbol] = frame.height
    finally:
        src_engine.dispose()
    return copied


def stored_range(loaded: LoadedConfig) -> tuple[int, int]:
    """The default period: the index symbol's stored minutes after :data:`WARMUP_DAYS` days
    (the bots' indicators and the tuner need history), to the last stored minute."""
    from jiritsu.db.migrate import open_database
    from jiritsu.market.store import CandleStore, cache_root

    settings = loaded.settings
    symbol = settings.master_bot.index_symbol
    with open_database(loaded) as engine:
        store = CandleStore(engine, cache_root(settings.general.data_dir))
        found = [s for s in store.info(with_gaps=False) if s.symbol == symbol and s.interval == "1"]
    if not found:
        raise UsageError(
            f"no stored 1-minute candles for {symbol}: run `jiritsu data import FILE`, "
            "`jiritsu data synth` or `jiritsu data backfill` first"
        )
    first = (found[0].first_ts // DAY_MS + WARMUP_DAYS) * DAY_MS
    last = found[0].last_ts + 60_000
    if first >= last:
        raise UsageError(f"simulate: fewer than {WARMUP_DAYS} days of candles are stored")
    return first, last


def history_days(settings: Any, tune: bool) -> int:
    """How far before FROM candles are copied: the bots' warm-up, plus the tuner's period."""
    days = HISTORY_DAYS
    if tune and settings.optimizer.auto_tuning_enabled:
        days += 31 * settings.optimizer.backtest_period_months
    return days


class Schedule:
    """When each timer job fires next (ms), from the settings the systemd timers use."""

    def __init__(self, settings: Any, options: SimOptions, start: int) -> None:
        master = settings.master_bot
        self.interval = master.rebalance_interval_hours * HOUR_MS
        self.save_weekday = master.profit_save_weekday
        self.save_hour = master.profit_save_hour
        self.cron = settings.optimizer.cron
        self.next: dict[str, int] = {"phase": self._next_interval(start)}
        if options.save_profit:
            self.next["save-profit"] = self._next_save(start)
        if options.tune and settings.optimizer.auto_tuning_enabled:
            self.next["tune"] = self._next_cron(start)
        self.rebalance = options.rebalance

    def _next_interval(self, at: int) -> int:
        """The first interval boundary at or after ``at`` (from midnight when 24 h divides)."""
        return -(-at // self.interval) * self.interval

    def _next_save(self, at: int) -> int:
        day = from_ms(at - at % DAY_MS)
        for i in range(8):
            when = day + timedelta(days=i, hours=self.save_hour)
            if when.weekday() == self.save_weekday and to_ms(when) >= at:
                return to_ms(when)
        raise AssertionError("a weekday recurs within 8 days")

    def _next_cron(self, at: int) -> int:
        return to_ms(self.cron.next_after(from_ms(at) - timedelta(minutes=1)))

    def following(self, job: str, t: int) -> int:
        """The firing of ``job`` after the one at ``t``."""
        if job == "phase":
            return self._next_interval(t + 1)
        if job == "save-profit":
            return self._next_save(t + 1)
        return self._next_cron(t + 60_000)

    def due(self, t: int) -> list[str]:
        return sorted((j for j, at in self.next.items() if at <= t), key=self.next.__getitem__)

    def earliest(self) -> int | None:
        return min(self.next.values(), default=None)

    def firings(self, job: str, end: int) -> list[int]:
        """Every firing of ``job`` before ``end`` (none when it is not scheduled)."""
        found: list[int] = []
        at = self.next.get(job)
        while at is not None and at < end:
            found.append(at)
            at = self.following(job, at)
        return found


class SimLoop(TradeLoop):
    """The trade loop of a replay that also wakes for, and runs, the timer jobs."""

    def __init__(
        self,
        load: Callable[[], LoadedConfig],
        options: LoopOptions,
        run: SimRun,
        recorded: dict[str, dict[datetime, Decision]] | None = None,
    ) -> None:
        self.run_info = run
        self.schedule: Schedule | None = None
        self._halt_told = ""
        self.recorded = recorded or {}
        self.advisors: dict[str, RecordedAdvisor] = {}  # kept across reloads (their counts)
        self._worker_cpu = 0.0  # the tunings' worker's CPU for the job being run
        super().__init__(load, options)
        self.private_db = True  # a fresh database of the simulation's own

    def _reload(self, t: int, why: str) -> None:
        """As the loop's, and the jobs' runtime carries the reloaded configuration too: live,
        each timer job is a process that loads the configuration (the tuned overlay included)
        afresh; here the next tuning must start from the parameters the last one applied."""
        super()._reload(t, why)
        if self.runtime is not None:
            self.runtime.loaded = self.loaded

    def _make_runners(self) -> None:
        """The loop's runners, a Gemini-backed bot's advisor answering from its recording."""
        from jiritsu.simulate.recorded import RecordedAdvisor

        super()._make_runners()
        for name, recorded in self.recorded.items():
            runner = self.runners.get(name)
            if runner is None or runner.advisor is self.advisors.get(name):
                continue
            advisor = self.advisors.setdefault(name, RecordedAdvisor(recorded, runner.advisor))
            advisor.rule = runner.advisor
            advisor.provider = runner.advisor.provider
            runner.advisor = advisor

    def _next_wake(self, t: int) -> int:
        wake = super()._next_wake(t)
        due = self.schedule.earliest() if self.schedule is not None else None
        return wake if due is None else max(min(wake, due), t + 1)

    def _step(self, t: int) -> None:
        if self.schedule is None:
            assert self.result.start_ms is not None
            self.schedule = Schedule(self.settings, self.run_info.options, self.result.start_ms)
        trips = len(self.result.trips)
        super()._step(t)
        for trip in self.result.trips[trips:]:
            log.info("%s circuit breaker: %s", _when(t), trip[17:])
        for job in self.schedule.due(t):
            at = self.schedule.next[job]
            started, cpu = time.monotonic(), cpu_seconds()
            try:
                outcome = self._job(job, t)
            except Halted as exc:  # the timer exits 4 live; the simulation goes on
                if str(exc) != self._halt_told:  # once per halt, not at every job
                    log.info("%s jobs skipped while halted: %s", _when(t), exc)
                    self._halt_told = str(exc)
                outcome = "halted"
            spent = time.monotonic() - started
            cpu = cpu_seconds() - cpu + self._worker_cpu
            self._worker_cpu = 0.0
            self.run_info.jobs.append(JobRun(job, t, spent, outcome, cpu))
            nxt = self.schedule.following(job, at)
            while nxt <= t:
                nxt = self.schedule.following(job, nxt)
            self.schedule.next[job] = nxt
        if self.run_info.options.progress is not None:
            self.run_info.options.progress(t)

    def _job(self, job: str, t: int) -> Any:
        """One timer job through the use-case its command calls, on the loop's runtime."""
        from jiritsu.usecases import master

        rt = self.runtime
        assert rt is not None
        if job == "phase" and self.run_info.options.rebalance:
            result = master.rebalance(rt, halt_states=self._halt_states)
            moved = [o for o in result.outcomes if o.ok]
            if moved:
                log.info("%s rebalance for %s: %s", _when(t), result.plan.phase,
                         ", ".join(f"{o.amount:.2f} {o.from_account} -> {o.to_account}"
                                   for o in moved))  # fmt: skip
            return [o.status for o in result.outcomes]
        if job == "phase":
            return master.phase(rt).reading.phase
        if job == "save-profit":
            saved = master.save_profit(rt)
            if saved.saved:
                log.info("%s profit saving: %.2f saved", _when(t), saved.saved)
            return saved.status
        return self._tune(t)

    def _tune(self, t: int) -> Any:
        """The monthly tuning; the loop reloads an applied overlay at its next step (as live)."""
        from jiritsu.usecases.tune import tune

        rt = self.runtime
        assert rt is not None
        ahead = self.run_info.ahead
        found = ahead.take(t, rt.settings) if ahead is not None else None
        if found is not None:
            self._worker_cpu = found[1]
        report = tune(rt, outcomes=None if found is None else found[0])
        if report is None:
            return None
        for o in report.outcomes:
            changes = ", ".join(
                f"{k.split('.')[-1]} {a} -> {b}" for k, (a, b) in o.changes().items()
            )
            verdict = f"applied {changes}" if o.apply else "kept the current parameters"
            log.info("%s tuning %s: %s", _when(t), o.bot, verdict)
            self.run_info.tunings.append(
                {
                    "time": from_ms(t).isoformat(),
                    "bot": o.bot,
                    "applied": o.apply,
                    "changes": {k: [_num(a), _num(b)] for k, (a, b) in o.changes().items()},
                    "in_sample": o.best_is,
                    "out_of_sample": o.best_oos,
                    "current_out_of_sample": o.current_oos,
                    "reason": o.reason,
                }
            )
        return report.applied


def _when(t: int) -> str:
    return f"{from_ms(t):%Y-%m-%d %H:%M}"


def _num(v: Any) -> Any:
    from decimal import Decimal

    return float(v) if isinstance(v, Decimal) else v


def run_simulation(loaded: LoadedConfig, options: SimOptions) -> SimRun:
    """Prepare a fresh simulation database, then run the loop with the timer jobs."""
    from jiritsu.config import load_config
    from jiritsu.db.migrate import open_database
    from jiritsu.heartbeat import mark_simulated

    started, cpu = time.monotonic(), cpu_seconds()
    if options.end_ms <= options.start_ms:
        raise UsageError("simulate: --to must be after --from")
    data_dir = options.data_dir.resolve()
    env = sim_environ(loaded, data_dir)
    path = loaded.path

    def load() -> LoadedConfig:
        return load_config(path, environ=env)

    _fresh_dir(data_dir)
    sim_loaded = load()
    run = SimRun(options, sim_loaded)
    gemini = {b.name: b.advisor for b in loaded.settings.enabled_bots if b.advisor != "rules"}
    settings = sim_loaded.settings
    lo = options.start_ms - history_days(settings, options.tune) * DAY_MS
    if options.tune_ahead and options.tune and settings.optimizer.auto_tuning_enabled:
        from jiritsu.simulate.ahead import TuningsAhead

        run.ahead = TuningsAhead(path, env)  # its imports overlap the copy below
    try:
        with open_database(sim_loaded) as engine:
            copy_candles(loaded, engine, settings, lo, options.end_ms)
            recorded = _copy_records(loaded, engine, list(gemini), options)
        if run.ahead is not None:
            run.ahead.start(Schedule(settings, options, options.start_ms).firings(
                "tune", options.end_ms))  # fmt: skip
        run.setup_seconds = time.monotonic() - started
        run.setup_cpu = cpu_seconds() - cpu
        loop = SimLoop(
            load,
            LoopOptions(replay=(options.start_ms, options.end_ms), install_signals=False),
            run,
            recorded,
        )
        cpu = cpu_seconds()
        result = loop.run()
    finally:
        if run.ahead is not None:
            run.ahead.close()
    run.loop_cpu = cpu_seconds() - cpu
    for name, configured in gemini.items():
        run.advisors[name] = advisor_note(configured, loop.advisors.get(name))
    run.exit_code = result.exit_code
    run.loop_seconds = result.wall_seconds
    end = result.end_ms or options.end_ms
    _final_snapshot(sim_loaded, end)
    with open_database(sim_loaded) as engine:  # health judges freshness by this clock
        mark_simulated(engine, from_ms(end), "simulate", now=from_ms(end))
    run.wall_seconds = time.monotonic() - started
    return run


def _copy_records(
    source: LoadedConfig, engine: Engine, bots: list[str], options: SimOptions
) -> dict[str, dict[datetime, Decision]]:
    """The decisions ``bots`` recorded live in the period, read from the configured database,
    whose news items are copied into the simulation's."""
    from jiritsu.db.engine import connect_configured
    from jiritsu.simulate.recorded import copy_sentiment, load_recorded

    hours = source.settings.news_sentiment.moving_average_period_hours
    src = connect_configured(source)
    try:
        copy_sentiment(src, engine, options.start_ms, options.end_ms, hours)
        return load_recorded(src, bots, options.start_ms, options.end_ms) if bots else {}
    finally:
        src.dispose()


def _final_snapshot(loaded: LoadedConfig, t: int) -> None:
    """A closing snapshot at the end, valued on the paper exchange at the last candle."""
    from jiritsu.clock import SimClock
    from jiritsu.runtime import build_runtime
    from jiritsu.usecases import master

    with build_runtime(loaded, "simulate", SimClock(t), notify=False) as rt:
        master.snapshot(rt)
