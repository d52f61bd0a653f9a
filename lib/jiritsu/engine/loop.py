"""The trade loop (``jiritsu trade-loop``, live or ``--replay``) and the one-shot tick
(``jiritsu trade-tick``).

The loop works in *steps* at logical times ``t`` (ms) on the 1-minute grid:

- at start: take each bot's lock (:func:`jiritsu.locks.bot_lock`, held for the whole run, so
  no second loop or tick trades the bot and ``jiritsu reconcile`` leaves it alone), reconcile
  with the exchange, then a step at once (a bar that closed while the process was down is still
  decided if it closed less than half a bar ago); live, every :data:`RECONCILE_EVERY_MS` the
  loop records its bots' fills and order states and reconciles again;
- then at every close of a bot's bar, at every minute while a bot has minute work (a split
  entry in progress, a closing order out, a spot holding whose TP/SL the bot watches), and at
  the exact due time of a time-split leg or of a maximum holding time;
- each step: move the paper clock (replay), read the halt switches (lifting elapsed
  cool-downs), check the global breakers (crash at every step; drawdown and daily loss every
  :data:`BREAKER_EVERY_MS` on the clock's grid and at the lift of a global halt, a portfolio
  snapshot every :data:`SNAPSHOT_EVERY_MS` on the grid and at that lift), step the bots that
  are due (:class:`~jiritsu.engine.bot.BotRunner`; a bot's own breakers right before it
  decides, its exchange failures again after a failed step), beat the heartbeats. The one-shot
  tick runs this same step code, so both trip the breakers in the one order of
  :data:`jiritsu.engine.risk.ORDER`.

Signals: SIGTERM/SIGINT finish the current step and exit 0; SIGHUP reloads the configuration and
the tuned overlay between steps (a CONFIG event lists what changed). A new tuned overlay
(``<data_dir>/tuned.toml``, written by ``jiritsu tune``) is reloaded the same way without a
signal: the loop checks its size and modification time at every step and while it waits (and
its content hash when those moved), so tuning needs no privilege over the loop's process.
Live, sleeps are at most :data:`SLEEP_CHUNK` seconds so a signal is honoured within one.

Database trouble: a step is retried as a whole with back-off (every order id in it is
deterministic, so a retry sends nothing twice); when the database stays away the loop stops
before sending anything more, logs CRITICAL and exits 3.

Replay (``--replay FROM..TO [--speed N]``): the paper exchange over the stored 1-minute candles
with a simulated clock that jumps from one step to the next (``speed`` N = simulated seconds per
real second; 0 = as fast as possible). It runs exactly the live code; only the runtime differs
(:func:`jiritsu.runtime.build_runtime` in mode "replay" instead of "live" or "paper"). The live
loop wakes every minute; a replay skips the minutes where nothing can happen, so it also wakes
where a breaker could act: at every minute the crash rule holds on the stored index bars, at the
end of a global halt's cool-down, and when the equity breakers or a snapshot are due. So the
breakers trip at the minute they would live (the backtester's portfolio model,
:mod:`jiritsu.backtest.portfolio`, follows the same schedule).
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiritsu.clock import Clock, RealClock, SimClock, from_ms, to_ms
from jiritsu.controls import GLOBAL
from jiritsu.errors import DatabaseUnavailable, ExitCode, JiritsuError, UsageError
from jiritsu.events import EventType, record_event
from jiritsu.exchange.base import Simulated
from jiritsu.strategy.params import MINUTE_MS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.config import LoadedConfig
    from jiritsu.engine.bot import BotRunner, EngineContext, StepReport
    from jiritsu.engine.risk import CrashMoves, SnapshotHistory, Trip
    from jiritsu.exchange.base import Exchange
    from jiritsu.runtime import Runtime

log = logging.getLogger("jiritsu.loop")

BREAKER_EVERY_MS = 5 * MINUTE_MS  # live; a replay checks every REPLAY_BREAKER_EVERY_MS
REPLAY_BREAKER_EVERY_MS = 60 * MINUTE_MS  # with the snapshot: one portfolio valuation
SNAPSHOT_EVERY_MS = 60 * MINUTE_MS
VALUATION_LOCK_WAIT = 5.0  # seconds a step waits for a rebalance or saving to finish
RECONCILE_EVERY_MS = 60 * MINUTE_MS  # live: the loop's own periodic reconciliation
BOT_LOCK_WAIT = 30.0  # seconds to wait for a bot a reconcile or a tick is working
HEARTBEAT_SECONDS = 20.0
SLEEP_CHUNK = 0.5
SETTLE_SECONDS = 2.0  # live: wait after a bar close until the exchange has published the bar
WARMUP_DAYS = 2  # "--replay .." starts this long after the first stored candle
DAY_MS = 86_400_000


@dataclass
class LoopOptions:
    replay: tuple[int | None, int | None] | None = None  # (from ms, to ms); None: stored range
    speed: float = 0.0
    bots: list[str] | None = None  # default: every enabled bot
    max_steps: int | None = None
    settle_seconds: float = SETTLE_SECONDS
    install_signals: bool = True
    # replay: skip the minutes in which nothing can happen (see TradeLoop._quiet_until)
    skip_quiet: bool = True
    snapshots: bool = True  # the hourly portfolio snapshot (a one-shot tick takes none)


@dataclass
class LoopResult:
    exit_code: int
    steps: int = 0
    decisions: int = 0
    orders: int = 0
    errors: int = 0
    trips: list[str] = field(default_factory=list)
    start_ms: int | None = None
    end_ms: int | None = None
    wall_seconds: float = 0.0
    last_ms: int | None = None  # the time of the last step run: where the loop stopped
    # "finished" (the replay's end), "signal" (SIGTERM/SIGINT), "max-steps", "database" (exit 3)
    stop_reason: str = ""


def next_on_grid(t: int, every: int) -> int:
    """The first multiple of ``every`` after ``t`` (ms): breaker checks and snapshots keep to
    the clock's grid whatever the step times, so a replay and the backtester agree on them."""
    return (t // every + 1) * every


def parse_replay(text: str) -> tuple[int | None, int | None]:
    """``FROM..TO`` in ms (see :func:`jiritsu.clock.parse_range`; empty sides: the stored
    range)."""
    from jiritsu.clock import parse_range

    start, stop = parse_range(text, "--replay")
    return (None if start is None else to_ms(start)), (None if stop is None else to_ms(stop))


class _Flags:
    def __init__(self) -> None:
        self.stop = threading.Event()
        self.reload = threading.Event()


def _install(flags: _Flags) -> Callable[[], None]:
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {
        sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    signal.signal(signal.SIGTERM, lambda *_: flags.stop.set())
    signal.signal(signal.SIGINT, lambda *_: flags.stop.set())
    signal.signal(signal.SIGHUP, lambda *_: flags.reload.set())

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _param_diff(old: Any, new: Any) -> dict[str, str]:
    """``{"BOT.key": "old -> new"}`` for every changed strategy parameter, plus enabled."""
    from jiritsu.strategy.params import build_params, describe

    out: dict[str, str] = {}
    old_bots = {b.name: b for b in old.sub_bots}
    for bot in new.sub_bots:
        before = old_bots.get(bot.name)
        if before is None:
            out[bot.name] = "added"
            continue
        if before.enabled != bot.enabled:
            out[f"{bot.name}.enabled"] = f"{before.enabled} -> {bot.enabled}"
        a, b = describe(build_params(before, old)), describe(build_params(bot, new))
        for key in a:
            if a[key] != b[key]:
                out[f"{bot.name}.{key}"] = f"{a[key]:g} -> {b[key]:g}"
    return out


class OverlayWatch:
    """Notices a changed tuned overlay: its (mtime, size) first, its content hash to be sure."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stat = self._stat_now()
        self._digest = self._digest_now()

    def _stat_now(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _digest_now(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def moved(self) -> bool:
        """True when the file's size or modification time moved since :meth:`changed` looked."""
        return self._stat_now() != self._stat

    def changed(self) -> bool:
        """True once per change of the file's content (appearing and vanishing included)."""
        stat = self._stat_now()
        if stat == self._stat:
            return False
        self._stat = stat
        digest = self._digest_now()
        if digest == self._digest:
            return False
        self._digest = digest
        return True


class TradeLoop:
    """See the module docstring. ``load`` returns the configuration (called again on SIGHUP and
    when the tuned overlay changes)."""

    def __init__(
        self,
        load: Callable[[], LoadedConfig],
        options: LoopOptions | None = None,
        *,
        on_step: Callable[[int, TradeLoop], None] | None = None,
    ) -> None:
        self.load = load
        self.options = options or LoopOptions()
        self.on_step = on_step
        self.flags = _Flags()
        self.loaded = load()
        self.settings = self.loaded.settings
        self._overlay = OverlayWatch(self.loaded.overlay_path)
        self.replay = self.options.replay is not None
        self.runtime: Runtime | None = None
        self.engine: Engine | None = None
        self.exchange: Exchange | None = None
        self.ctx: EngineContext | None = None
        self.runners: dict[str, BotRunner] = {}
        self.clock: Any = None  # the runtime's: what every step, row and event is stamped with
        # When steps happen: live, the loop waits for real bar closes (a replay never asks it).
        self.wall: Clock = RealClock()
        self.result = LoopResult(exit_code=0)
        self.tripped: list[Trip] = []  # the breakers this run tripped, in order
        self._last_beat = 0.0
        self._ticked = False
        self._next_breakers = 0
        self._next_snapshot = 0
        self._crash_at: Any = None  # replay: the minutes at which the crash rule holds
        self._moves: CrashMoves | None = None  # replay: the crash rule's move at every minute
        self._lift_at: int | None = None  # when the global halt's cool-down ends
        self._replay_end: int | None = None
        self._next_market_warning = 0
        self._next_reconcile = 0
        self._bot_locks: dict[str, Any] = {}  # bot -> its held lock (live only)
        # The database is this run's alone (a simulation's): the halt states are read again
        # only after this process changed one (see jiritsu.controls.writes).
        self.private_db = False
        self._states_read: tuple[int, list[Any]] | None = None
        self._history: SnapshotHistory | None = None  # the snapshots, held when private_db
        self._phase_read: tuple[int, str, str | None] | None = None  # (writes, symbol, phase)

    # --- set-up --------------------------------------------------------------------------

    def _bots(self, settings: Any) -> list[Any]:
        only = self.options.bots
        bots = [b for b in settings.sub_bots if b.enabled and (not only or b.name in only)]
        if only:
            missing = sorted(set(only) - {b.name for b in bots})
            if missing:
                raise UsageError(f"no enabled bot named {', '.join(map(repr, missing))}")
        return bots

    def _symbols(self) -> list[str]:
        bots = self._bots(self.settings)
        return sorted({b.symbol for b in bots} | {self.settings.master_bot.index_symbol})

    def _replay_setup(self) -> tuple[Runtime, int, int]:
        from jiritsu.runtime import build_runtime

        if self.settings.general.environment != "paper":
            raise UsageError("--replay runs against the paper exchange: set environment = paper")
        clock = SimClock(0)
        rt = build_runtime(self.loaded, "replay", clock, symbols=self._symbols())
        try:
            frames = rt.market.frames()
            empty = [s for s, f in frames.items() if f.height == 0]
            if empty:
                raise UsageError(
                    f"no stored 1-minute candles for {', '.join(empty)}: run `jiritsu data "
                    "synth`, `jiritsu data import FILE` or `jiritsu data backfill` first"
                )
            first = max(int(f["ts"][0]) for f in frames.values())
            last = min(int(f["ts"][-1]) for f in frames.values()) + MINUTE_MS
            assert self.options.replay is not None
            lo, hi = self.options.replay
            start = lo if lo is not None else (first // DAY_MS + WARMUP_DAYS) * DAY_MS
            end = min(hi if hi is not None else last, last)
            if start >= end:
                raise UsageError(
                    f"--replay: nothing to replay between {from_ms(start):%Y-%m-%d %H:%M} and "
                    f"{from_ms(end):%Y-%m-%d %H:%M} (stored: {from_ms(first):%Y-%m-%d %H:%M} "
                    f".. {from_ms(last):%Y-%m-%d %H:%M})"
                )
        except BaseException:
            rt.close()
            raise
        clock.advance_to(start)
        return rt, start, end

    def _live_setup(self) -> Runtime:
        from jiritsu.runtime import build_runtime, default_mode

        mode = default_mode(self.loaded)
        # Paper runs on the loop's step clock: an order sent at a bar close fills at the next
        # 1-minute open, exactly as in a replay and a backtest.
        clock = SimClock(self.wall.now_ms()) if mode == "paper" else self.wall
        return build_runtime(self.loaded, mode, clock, symbols=self._symbols())

    def _context(self, rt: Runtime) -> EngineContext:
        from jiritsu.advisors.record import DecisionBatch
        from jiritsu.engine.bot import EngineContext
        from jiritsu.engine.snapshot import SentimentCache

        news = self.settings.news_sentiment
        return EngineContext(
            engine=rt.db,
            exchange=rt.exchange,
            journal=rt.journal,
            feed=rt.market,
            loaded=self.loaded,
            notifier=rt.notifier,
            environment=rt.environment,
            sentiment=SentimentCache(rt.db, news.moving_average_period_hours, news.enabled),
            probe_changes=rt.simulated,
            decisions=DecisionBatch(rt.db) if self.replay else None,
        )

    def _make_runners(self) -> None:
        from jiritsu.engine.bot import BotRunner

        assert self.ctx is not None
        wanted = {b.name: b for b in self._bots(self.settings)}
        for name in list(self.runners):
            if name not in wanted:
                del self.runners[name]
        for name, bot in wanted.items():
            if name in self.runners:
                self.runners[name].reconfigure(bot, self.loaded)
            else:
                self.runners[name] = BotRunner(self.ctx, bot)

    def _hold_bot_locks(self) -> list[str]:
        """Live: hold the lock of every bot this loop trades (see the module docstring);
        returns the bots another process holds, which are dropped from the loop."""
        from jiritsu.locks import BotBusy, bot_lock

        if self.replay:
            return []
        for name in [n for n in self._bot_locks if n not in self.runners]:
            self._bot_locks.pop(name).__exit__(None, None, None)
        busy = []
        for name in [n for n in self.runners if n not in self._bot_locks]:
            lock = bot_lock(self.settings.general.data_dir, name, wait_seconds=BOT_LOCK_WAIT)
            try:
                lock.__enter__()
            except BotBusy:
                busy.append(name)
                del self.runners[name]
                continue
            self._bot_locks[name] = lock
        return busy

    def _release_bot_locks(self) -> None:
        while self._bot_locks:
            self._bot_locks.popitem()[1].__exit__(None, None, None)

    # --- running -------------------------------------------------------------------------

    def run(self) -> LoopResult:
        """Run until the replay ends, a stop signal, or the database stays away (exit 3)."""
        started = time.monotonic()
        restore = _install(self.flags) if self.options.install_signals else (lambda: None)
        try:
            self.result.exit_code = self._run()
        except DatabaseUnavailable as exc:
            log.critical("database unreachable, trading stopped: %s", exc)
            self.result.exit_code = int(ExitCode.DB_UNREACHABLE)
            self.result.stop_reason = "database"
        finally:
            restore()
            self._release_bot_locks()
            self.result.wall_seconds = time.monotonic() - started
            if self.runtime is not None:
                self.runtime.close()
        return self.result

    def _run(self) -> int:
        from jiritsu.ops import sdnotify

        end: int | None
        if self.replay:
            rt, start, end = self._replay_setup()
            self._replay_end = end
        else:
            rt = self._live_setup()
            start, end = rt.clock.now_ms(), None
        self.runtime = rt
        self.engine = engine = rt.db
        self.exchange = rt.exchange
        self.clock = rt.clock
        self._refresh(start, engine)
        self.ctx = self._context(rt)
        self.ctx.before_decide = self._before_decide
        self._make_runners()
        if not self.replay:
            from jiritsu.heartbeat import clear_simulated

            clear_simulated(engine)  # a live run: the data's clock is the wall clock again
        busy = self._hold_bot_locks()
        if busy:
            raise UsageError(
                f"another trade loop or tick is trading {', '.join(busy)} (its lock in "
                f"{self.settings.general.data_dir / 'locks'} is held): stop it first"
            )
        self.result.start_ms, self.result.end_ms = start, end
        mode = "replay" if self.replay else "live"
        record_event(
            engine, "INFO", EventType.STARTUP,
            f"trade loop starting ({mode}, {self.settings.general.environment}, "
            f"bots {', '.join(self.runners)})",
            {"mode": mode, "from": from_ms(start), "to": from_ms(end) if end else None},
            now=from_ms(start),
        )  # fmt: skip
        self._reconcile(start)
        self._next_reconcile = start + RECONCILE_EVERY_MS
        sdnotify.ready(f"trading {', '.join(self.runners)}")
        t = start
        while True:
            why = self._reload_due()
            if why:
                self._reload(t, why)
            self.result.last_ms = t
            self._step_with_retry(t)
            self.result.steps += 1
            if self.on_step is not None:
                self.on_step(t, self)
            if self.flags.stop.is_set():
                self.result.stop_reason = "signal"
                break
            if self.options.max_steps is not None and self.result.steps >= self.options.max_steps:
                self.result.stop_reason = "max-steps"
                break
            t_next = self._next_wake(t)
            if end is not None and t_next > end:
                self.result.stop_reason = "finished"
                break
            if not self._wait(t, t_next):
                self.result.stop_reason = "signal"
                break
            t = t_next
        sdnotify.stopping()
        self.flush_decisions()
        self._final_sync(t)
        record_event(
            engine, "INFO", EventType.SHUTDOWN,
            f"trade loop stopped after {self.result.steps} steps",
            {"decisions": self.result.decisions, "orders": self.result.orders},
            now=from_ms(t),
        )  # fmt: skip
        self._beat(t, force=True, stopped=True)
        return int(ExitCode.OK)

    def flush_decisions(self) -> None:
        """Write the decision rows a replay holds back (before anything reads them)."""
        if self.ctx is not None and self.ctx.decisions is not None:
            self.ctx.decisions.flush()

    def _final_sync(self, t: int) -> None:
        """Record the fills and order states the last step caused (before exiting or a periodic
        reconciliation: a market order on Bybit fills at once; the next step would record it).
        Nothing is sent here: an order whose answer was lost waits for the bot's next step."""
        now = t if self.replay else max(t, self.wall.now_ms())
        for runner in self.runners.values():
            try:
                runner.read_state(now, resend=False)
            except DatabaseUnavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - shutting down: log and go on
                log.warning("%s: final sync failed: %s", runner.name, exc)

    def _refresh(self, t: int, engine: Engine) -> None:
        """Fresh candles for the step when the runtime tops them up from Bybit (a failure is a
        WARNING, once per hour)."""
        assert self.runtime is not None
        error = self.runtime.market.refresh(t)
        if error is not None and t >= self._next_market_warning:
            self._next_market_warning = t + 60 * MINUTE_MS
            record_event(
                engine, "WARNING", EventType.EXCHANGE_ERROR,
                f"market data for paper trading could not be refreshed: {error}", None,
                now=from_ms(t),
            )  # fmt: skip

    def _reconcile(self, t: int) -> None:
        from jiritsu.exchange.reconcile import BotAccount, reconcile

        assert self.ctx is not None
        accounts = [BotAccount(r.name, r.bot.category, r.bot.symbol) for r in self.runners.values()]
        report = reconcile(
            self.ctx.engine, self.ctx.exchange, accounts, environment=self.ctx.environment,
            notifier=self.ctx.notifier, clock=self.clock,
        )  # fmt: skip
        if not report.clean:
            log.warning("reconciliation settled %d differences", len(report.differences))

    def _reload_due(self) -> str | None:
        """Why the configuration should be reloaded now (None: it should not)."""
        changed = self._overlay.changed()  # always looked at: a SIGHUP reload reads it too
        if self.flags.reload.is_set():
            self.flags.reload.clear()
            return "SIGHUP"
        return "tuned overlay changed" if changed else None

    def _reload(self, t: int, why: str) -> None:
        assert self.ctx is not None
        try:
            loaded = self.load()
        except Exception as exc:  # noqa: BLE001 - a bad reload keeps the running configuration
            record_event(
                self.ctx.engine, "ERROR", EventType.CONFIG,
                f"configuration reload failed, keeping the running one: {exc}", None,
                notifier=self.ctx.notifier, now=from_ms(t),
            )  # fmt: skip
            return
        changed = _param_diff(self.settings, loaded.settings)
        self.loaded = loaded
        self.settings = loaded.settings
        self.ctx.loaded = loaded
        self._crash_at = None  # the crash limits may have changed
        self._moves = None
        if loaded.overlay_path != self._overlay.path:
            self._overlay = OverlayWatch(loaded.overlay_path)
        self._make_runners()
        for name in self._hold_bot_locks():
            record_event(
                self.ctx.engine, "ERROR", EventType.CONFIG,
                f"{name} not traded after the reload: another process holds its lock", None,
                bot=name, notifier=self.ctx.notifier, now=from_ms(t),
            )  # fmt: skip
        record_event(
            self.ctx.engine, "INFO", EventType.CONFIG,
            f"configuration reloaded ({why}): {len(changed)} change(s)",
            {"changed": changed}, now=from_ms(t),
        )  # fmt: skip

    def _wait(self, t: int, t_next: int) -> bool:
        """Sleep until ``t_next`` (live: plus the settle delay; replay: ``speed``); False when a
        stop signal arrived meanwhile."""
        if self.replay:
            if self.options.speed > 0:
                deadline = time.monotonic() + (t_next - t) / 1000 / self.options.speed
                while (left := deadline - time.monotonic()) > 0:
                    if self.flags.stop.wait(min(left, SLEEP_CHUNK)):
                        return False
            return not self.flags.stop.is_set()
        from jiritsu.ops import sdnotify

        settle = self.options.settle_seconds if t_next % MINUTE_MS == 0 else 0.0
        target = t_next / 1000 + settle
        while (left := target - self.wall.now_ms() / 1000) > 0:
            if self.flags.stop.wait(min(left, SLEEP_CHUNK)):
                return False
            sdnotify.watchdog()  # alive while waiting for the next bar
            why = self._reload_due()
            if why:  # reload now, then keep waiting for the step's time
                self._reload(t, why)
        return not self.flags.stop.is_set()

    def _next_wake(self, t: int) -> int:
        wake = min((r.next_wake(t) for r in self.runners.values()), default=t + MINUTE_MS)
        if self.replay:
            if self.options.skip_quiet:
                wake = self._quiet_until(t, wake)
            due = self._breaker_wake(t)
            wake = wake if due is None else min(wake, due)
        else:
            wake = min(wake, (t // MINUTE_MS + 1) * MINUTE_MS)  # heartbeats, crash checks
            now = self.wall.now_ms()
            if wake < now - 2 * MINUTE_MS:  # fell behind (suspended, a slow exchange)
                log.warning("trade loop %d s behind: skipping to now", (now - wake) // 1000)
                wake = now - now % MINUTE_MS
        return max(wake, t + 1)

    def _quiet_until(self, t: int, wake: int) -> int:
        """Replay: when the next minute is wanted only because a bot watches a spot holding's
        levels, the first minute in which something can happen instead -- a bar reaching the
        levels, a bar that could trip the crash breaker (any close of the window before it
        further than ``crash_move_pct`` away: a superset of the breaker's own test), a
        snapshot or equity check due, a halt's cool-down ending, another bot's or a job's
        time (:meth:`_no_skip_before`). Every minute skipped is a step that would have done
        nothing, so the replay's fills, snapshots and events are those of stepping each one."""
        minute = (t // MINUTE_MS + 1) * MINUTE_MS
        runners = list(self.runners.values())
        if wake != minute or not any(r.minute_work and r.spot_levels for r in runners):
            return wake
        if any(r.minute_work and r.spot_levels is None for r in runners):
            return wake
        # (the loop's own times are met at the first minute step at or after them)
        due = min(self._no_skip_before(t), self._next_snapshot, self._next_breakers)
        until = min(-(-due // MINUTE_MS) * MINUTE_MS,
                    *(r.next_wake(t, watched=False) for r in runners))  # fmt: skip
        if until <= minute:
            return wake
        import numpy as np

        assert self.runtime is not None
        market = self.runtime.market
        risk = self.settings.risk
        index = market.minute_columns(self.settings.master_bot.index_symbol)
        window = risk.crash_window_minutes + 1
        limit = risk.crash_move_pct
        for m in range(minute, until, MINUTE_MS):
            for r in runners:
                if r.spot_levels is None:
                    continue
                cols = market.minute_columns(r.bot.symbol)
                i = int(np.searchsorted(cols["ts"], m - MINUTE_MS)) if cols else -1
                if cols is None or i >= len(cols["ts"]) or cols["ts"][i] != m - MINUTE_MS:
                    continue  # no bar closed at m: the step would see none
                tp, sl = r.spot_levels
                if (tp > 0 and cols["high"][i] >= tp) or (sl > 0 and cols["low"][i] <= sl):
                    return m
            if index is not None:
                i = int(np.searchsorted(index["ts"], m - MINUTE_MS))
                if i < len(index["ts"]) and index["ts"][i] == m - MINUTE_MS and i > 0:
                    now = index["close"][i]
                    before = index["close"][max(0, i - window) : i]
                    lo, hi = float(before.min()), float(before.max())
                    if not lo > 0 or now / lo - 1.0 > limit or 1.0 - now / hi > limit:
                        return m
        return until

    def _no_skip_before(self, t: int) -> int:
        """The earliest time a step must happen whatever the bots want: the end of a halt's
        cool-down; right away after a reload request or when the tuned overlay moved."""

        assert self.ctx is not None
        if self.flags.reload.is_set() or self._overlay.moved():
            return t
        ends = [
            to_ms(st.cooldown_until)
            for st in self._halt_states()
            if st.halted and st.cooldown_until is not None
        ]
        return min(ends, default=t + DAY_MS)

    def _breaker_wake(self, t: int) -> int | None:
        """Replay: the next time after ``t`` at which a breaker could act or a snapshot is due
        (see the module docstring); None when none."""
        import numpy as np

        if self._crash_at is None:
            self._crash_at = self._crash_minutes()
        due = [x for x in (self._lift_at, self._next_breakers, self._next_snapshot)
               if x is not None and x > t]  # fmt: skip
        i = int(np.searchsorted(self._crash_at, t, side="right"))
        if i < self._crash_at.shape[0]:
            due.append(int(self._crash_at[i]))
        return min(due, default=None)

    def _crash_minutes(self) -> Any:
        """Replay: the step times (bar closes) at which the crash rule holds on the stored
        index symbol's bars (:func:`jiritsu.engine.risk.crash_moves`)."""
        return self._crash_moves().minutes(self.settings)

    # --- a step --------------------------------------------------------------------------

    def _step_with_retry(self, t: int) -> None:
        from jiritsu.db.engine import retry_db

        db = self.settings.database
        retry_db(
            lambda: self._step(t),
            attempts=max(1, db.reconnect_attempts),
            base_delay=db.reconnect_base_delay_seconds,
            what="trade loop step",
        )

    def _halts(self, t: int) -> tuple[bool, set[str]]:
        from jiritsu import controls

        assert self.ctx is not None
        now = from_ms(t)
        glob = False
        bots: set[str] = set()
        self._lift_at = None
        for st in self._halt_states():
            if not st.halted:
                continue
            if st.cooldown_until is not None and st.cooldown_until <= now:
                st = controls.state(self.ctx.engine, st.scope, now=now)  # lifts it
                if not st.halted:
                    record_event(
                        self.ctx.engine, "WARNING", EventType.RESUME,
                        f"halt of {st.scope} lifted: cool-down elapsed", None,
                        bot=None if st.scope == GLOBAL else st.scope,
                        notifier=self.ctx.notifier, now=now,
                    )  # fmt: skip
                    if st.scope == GLOBAL:
                        self._valuation(t, snapshot=True)  # the breakers' new baseline
                    continue
            if st.scope == GLOBAL:
                glob = True
                until = st.cooldown_until
                self._lift_at = None if until is None else to_ms(until)
            else:
                bots.add(st.scope)
        return glob, bots

    def _halt_states(self) -> list[Any]:
        """Every scope's stored halt state (read at every step; see :attr:`private_db`)."""
        from jiritsu import controls

        assert self.ctx is not None
        engine = self.ctx.engine
        if not self.private_db:
            return controls.all_states(engine)
        mark = controls.writes(engine)
        if self._states_read is None or self._states_read[0] != mark:
            self._states_read = (mark, controls.all_states(engine))
        return self._states_read[1]

    def _valuation(self, t: int, *, snapshot: bool) -> Any:
        """The portfolio's value (recorded as a snapshot when ``snapshot``), read under the
        master lock so no transfer is half-way (a false drawdown); None when a rebalance or a
        saving holds the lock longer than :data:`VALUATION_LOCK_WAIT` (the next step retries)."""
        from jiritsu.engine.risk import portfolio_value, take_snapshot
        from jiritsu.locks import MasterBusy, master_lock

        assert self.ctx is not None
        data_dir = self.settings.general.data_dir
        try:
            with master_lock(self.ctx.engine, data_dir, wait_seconds=VALUATION_LOCK_WAIT,
                             poll_seconds=0.2):  # fmt: skip
                if not snapshot:
                    return portfolio_value(self.ctx.exchange, self.settings)
                value = take_snapshot(
                    self.ctx.engine, self.ctx.exchange, self.settings, now=from_ms(t), locked=True,
                    history=self._snapshot_history(), phase=self._latest_phase(),
                )  # fmt: skip
        except MasterBusy:
            log.info("money is being moved between accounts: portfolio valuation postponed")
            return None
        self._next_snapshot = next_on_grid(t, SNAPSHOT_EVERY_MS)
        return value

    def _breakers(self, t: int, glob: bool) -> bool:
        """Snapshot and the global breakers when due (one portfolio valuation serves both);
        True when trading is halted globally."""
        from jiritsu.engine.risk import apply_first, check_portfolio

        assert self.ctx is not None
        now = from_ms(t)
        equity = t >= self._next_breakers and not glob
        snapshot = self.options.snapshots and t >= self._next_snapshot
        value = None
        if snapshot or equity:
            value = self._valuation(t, snapshot=snapshot)
            equity = equity and value is not None  # postponed: checked at the next step
        if equity:
            every = REPLAY_BREAKER_EVERY_MS if self.replay else BREAKER_EVERY_MS
            self._next_breakers = next_on_grid(t, every)
        trips = check_portfolio(
            self.ctx.engine, self.ctx.exchange, self.ctx.feed, self.settings, now=now,
            value=value, equity=equity, crash=not glob, history=self._snapshot_history(),
            moves=self._crash_moves() if self.replay else None,
        )  # fmt: skip
        for trip in apply_first(self.ctx.engine, trips, self.settings, now=now,
                                notifier=self.ctx.notifier):  # fmt: skip
            self._tripped(t, trip)
            glob = True
        return glob

    def _snapshot_history(self) -> SnapshotHistory | None:
        """The snapshots held in memory when the database is this run's alone (None: the
        breakers read the database, which other processes write)."""
        from jiritsu.engine.risk import SnapshotHistory

        assert self.ctx is not None
        if not self.private_db:
            return None
        if self._history is None or self._history.engine is not self.ctx.engine:
            self._history = SnapshotHistory(self.ctx.engine)
        return self._history

    def _latest_phase(self) -> str | None:
        """The newest phase reading a snapshot records, kept while no reading was stored when
        the database is this run's alone (None: the snapshot looks it up)."""
        from jiritsu.master.phase import latest_phase, writes

        assert self.ctx is not None
        if not self.private_db:
            return None
        mark, symbol = writes(self.ctx.engine), self.settings.master_bot.index_symbol
        if self._phase_read is None or self._phase_read[:2] != (mark, symbol):
            self._phase_read = (mark, symbol, latest_phase(self.ctx.engine, symbol))
        return self._phase_read[2]

    def _crash_moves(self) -> CrashMoves:
        """Replay: the crash rule's moves over the index symbol's stored bars (made again when
        the bars or the crash window changed)."""
        from jiritsu.engine.risk import CrashMoves

        assert self.runtime is not None
        market = self.runtime.market
        if self._moves is None or not self._moves.serves(market, self.settings):
            self._moves = CrashMoves(market, self.settings)
        return self._moves

    def _tripped(self, t: int, trip: Trip) -> None:
        from jiritsu.engine.risk import cooldown_minutes

        self.tripped.append(trip)
        cooldown = cooldown_minutes(trip.breaker, self.settings.risk)
        if trip.scope == GLOBAL and cooldown > 0:
            self._lift_at = t + cooldown * MINUTE_MS
        who = "" if trip.scope == GLOBAL else f" {trip.scope}"
        self.result.trips.append(f"{from_ms(t):%Y-%m-%d %H:%M}{who} {trip.breaker}")

    def _step(self, t: int) -> None:
        assert self.ctx is not None
        assert self.exchange is not None
        if isinstance(self.clock, SimClock) and self.clock.now_ms() < t:
            self.clock.advance_to(t)
        self._refresh(t, self.ctx.engine)
        exchange = self.exchange
        busy = any(r.has_orders or r.guarded for r in self.runners.values())
        if self.ctx.probe_changes and busy and isinstance(exchange, Simulated):
            filled = exchange.step_accounts()
            for runner in self.runners.values():
                if runner.name in filled:  # (the others' books did not move)
                    runner.dirty = True
        glob, halted_bots = self._halts(t)
        glob = self._breakers(t, glob)
        decided = False
        for runner in list(self.runners.values()):
            go, decide = runner.wants(t)
            if not go:
                continue
            halted = glob or runner.name in halted_bots
            report = self._run_bot(runner, t, halted, decide)
            decided = decided or report.decided
            self._after_bot(runner, report, t, halted)
        if not self.replay and t >= self._next_reconcile:
            self._periodic_reconcile(t)
        self._beat(t, ticked=decided)

    def _periodic_reconcile(self, t: int) -> None:
        """Record the bots' own fills and order states first (what the next step would do),
        so reconciliation reports only what the loop did not do itself; an exchange failure
        waits for the next time."""
        self._next_reconcile = t + RECONCILE_EVERY_MS
        try:
            self._final_sync(t)
            self._reconcile(t)
        except DatabaseUnavailable:
            raise
        except JiritsuError as exc:
            log.warning("periodic reconciliation failed (next in an hour): %s", exc)
        for runner in self.runners.values():
            runner.resync()  # re-read what reconciliation may have recorded

    def _run_bot(
        self, runner: BotRunner, t: int, halted: bool, decide: bool, fresh: bool = False
    ) -> StepReport:
        from jiritsu.db.engine import is_disconnect
        from jiritsu.engine.bot import StepReport

        try:
            return runner.step(t, halted=halted, decide=decide, fresh=fresh)
        except DatabaseUnavailable:
            raise
        except Exception as exc:
            if is_disconnect(exc):
                raise
            # a bug in one bot must not stop the others; the traceback goes to the log
            log.exception("%s: step at %s failed", runner.name, from_ms(t))
            assert self.ctx is not None
            runner.resync()
            record_event(
                self.ctx.engine, "ERROR", EventType.ORDER_ERROR,
                f"step failed: {type(exc).__name__}: {exc}", None, bot=runner.name,
                notifier=self.ctx.notifier, now=from_ms(t),
            )  # fmt: skip
            return StepReport(runner.name, t, error=str(exc))

    def _after_bot(self, runner: BotRunner, report: StepReport, t: int, halted: bool) -> None:
        from jiritsu.engine.risk import pause_on_failures

        assert self.ctx is not None
        self.result.decisions += int(report.decided)
        self.result.orders += len(report.orders)
        self.result.errors += int(report.error is not None)
        if halted or not report.failed:
            return
        trip = pause_on_failures(self.ctx.engine, runner.name, self.settings, now=from_ms(t),
                                 notifier=self.ctx.notifier)  # fmt: skip
        if trip is not None:
            self._tripped(t, trip)

    def _before_decide(self, runner: BotRunner, t: int) -> bool:
        """The bot's breakers (loss streak, then exchange failures), right before it decides
        (as the kernel's backtest driver does with ``loss_streak_pause``); True when one
        tripped."""
        from jiritsu.engine.risk import apply_first, check_bot

        assert self.ctx is not None
        trips = check_bot(self.ctx.engine, runner.name, self.settings)
        applied = apply_first(self.ctx.engine, trips, self.settings, now=from_ms(t),
                              notifier=self.ctx.notifier)  # fmt: skip
        for trip in applied:
            self._tripped(t, trip)
        return bool(applied)

    def _beat(
        self, t: int, *, ticked: bool = False, force: bool = False, stopped: bool = False
    ) -> None:
        """Heartbeat (at most every HEARTBEAT_SECONDS unless forced); the last one of a run
        says ``stopped`` so that status and health do not take it for a live loop."""
        from jiritsu.heartbeat import TRADE_LOOP, TRADE_TICK, beat, mark_simulated
        from jiritsu.ops import sdnotify

        assert self.ctx is not None
        sdnotify.watchdog()
        wall = time.monotonic()
        details = {
            "mode": "replay" if self.replay else "live",
            "step_time": from_ms(t).isoformat(),
            "pid": os.getpid(),
            "bots": sorted(self.runners),
        }
        if stopped:
            details["stopped"] = True
        self._ticked = self._ticked or ticked
        if force or wall - self._last_beat >= HEARTBEAT_SECONDS:
            beat(self.ctx.engine, TRADE_LOOP, details)
            if self.replay:
                mark_simulated(self.ctx.engine, from_ms(t), "replay")
            if self._ticked:
                beat(self.ctx.engine, TRADE_TICK, details)
                self._ticked = False
            self._last_beat = wall


def run_loop(
    loaded_or_load: Any,
    options: LoopOptions | None = None,
    *,
    on_step: Callable[[int, TradeLoop], None] | None = None,
) -> LoopResult:
    """Run a :class:`TradeLoop` (``loaded_or_load``: a LoadedConfig or a function giving one)."""
    load = loaded_or_load if callable(loaded_or_load) else (lambda: loaded_or_load)
    return TradeLoop(load, options, on_step=on_step).run()


# --- one tick --------------------------------------------------------------------------------


@dataclass
class TickResult:
    exit_code: int
    reports: list[StepReport]
    halted: list[str]
    trips: list[str]


def run_tick(
    loaded: LoadedConfig, *, bots: list[str] | None = None, now_ms: int | None = None
) -> TickResult:
    """One cycle for every enabled bot (or ``bots``): exit 0 ok, 1 errors, 4 halted.

    The bots' locks are held throughout (a running trade loop makes this wait, then fail), and
    the fills and order states the cycle caused are recorded before it ends, so nothing of its
    own is left for a reconciliation to find. That record sends nothing: an order whose answer
    was lost is resent (same client id) by the bot's next step, where a failure counts."""
    from contextlib import ExitStack

    from jiritsu.locks import bot_lock

    settings = loaded.settings
    t = int(now_ms if now_ms is not None else RealClock().now_ms())
    options = LoopOptions(bots=bots, install_signals=False, snapshots=False)
    loop = TradeLoop(lambda: loaded, options)
    selected = loop._bots(settings)
    with ExitStack() as locks:
        for bot in selected:
            locks.enter_context(
                bot_lock(settings.general.data_dir, bot.name, wait_seconds=BOT_LOCK_WAIT)
            )
        return _tick(loaded, loop, selected, t)


def _tick(loaded: LoadedConfig, loop: TradeLoop, selected: list[Any], t: int) -> TickResult:
    """The loop's step once, through the loop's own halts, breakers and bot steps (so the
    breakers run in the same order), with every bot deciding on a fresh sync."""
    from jiritsu.engine.bot import BotRunner
    from jiritsu.heartbeat import TRADE_TICK, beat, clear_simulated
    from jiritsu.runtime import build_runtime, default_mode

    mode = default_mode(loaded)
    clock = SimClock(t) if mode == "paper" else RealClock()
    with build_runtime(loaded, mode, clock, symbols=loop._symbols()) as rt:
        engine = rt.db
        loop.runtime, loop.exchange, loop.clock = rt, rt.exchange, rt.clock
        loop._refresh(t, engine)
        loop.ctx = ctx = loop._context(rt)
        ctx.before_decide = loop._before_decide
        glob, halted_bots = loop._halts(t)
        glob = loop._breakers(t, glob)
        reports: list[StepReport] = []
        for bot in selected:
            runner = BotRunner(ctx, bot)
            halted = glob or bot.name in halted_bots
            report = loop._run_bot(runner, t, halted, decide=True, fresh=True)
            reports.append(report)
            try:
                runner.read_state(max(t, rt.clock.now_ms()), resend=False)
            except JiritsuError as exc:  # the next tick records them
                log.warning("%s: could not record the cycle's fills yet: %s", bot.name, exc)
            loop._after_bot(runner, report, t, halted)
        clear_simulated(engine)  # a tick on real time: the data's clock is the wall clock
        beat(engine, TRADE_TICK, {"mode": "tick", "step_time": from_ms(t).isoformat()})
        paused = {trip.scope for trip in loop.tripped}
        halted_names = [r.bot for r in reports if r.halted or r.bot in paused]
        trips = [trip.breaker if trip.scope == GLOBAL else f"{trip.scope} {trip.breaker}"
                 for trip in loop.tripped]  # fmt: skip
        code = ExitCode.OK
        if any(r.error for r in reports):
            code = ExitCode.FAILURE
        elif halted_names:
            code = ExitCode.HALTED
        return TickResult(int(code), reports, halted_names, trips)
