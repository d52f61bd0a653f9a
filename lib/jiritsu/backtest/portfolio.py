"""The portfolio-level breakers (crash, drawdown, daily loss) in the backtester, as the trade loop
evaluates them (:mod:`jiritsu.engine.loop`, :mod:`jiritsu.engine.risk`).

What is modelled, step for step like a replay:

- **The portfolio** is every enabled bot (plus the backtested one), each trading its configured
  strategy from its ``paper.starting_balances`` wallet over the same period, plus the savings
  (``paper.main_balance``, which nothing moves here: there is no rebalancing nor profit saving in
  a backtest). Its value at a time ``t`` is the sum of the bots' equity at the close of their
  newest 1-minute bar closed by ``t`` (what the paper exchange marks at ``t``) plus the savings.
- **When** the breakers look, as the loop does: the crash rule at every minute (the live loop
  wakes every minute; a replay wakes where the rule holds), drawdown and daily loss at the start,
  at every :data:`~jiritsu.engine.loop.REPLAY_BREAKER_EVERY_MS` on the clock's grid and at the
  lift of a global halt, never while halted. Snapshots (the drawdown's peaks, the daily base) at
  the start, every :data:`~jiritsu.engine.loop.SNAPSHOT_EVERY_MS` on the grid and at each lift.
- **The rules** are the live ones (:func:`~jiritsu.engine.risk.crash_moves`,
  :func:`~jiritsu.engine.risk.crash_rule`, :func:`~jiritsu.engine.risk.drawdown_rule`,
  :func:`~jiritsu.engine.risk.daily_loss_rule`, the daily base of
  :func:`~jiritsu.engine.risk.daily_base`, the order :data:`~jiritsu.engine.risk.ORDER`).
- **A trip** halts every bot from that minute for its breaker's cool-down
  (:func:`~jiritsu.engine.risk.cooldown_minutes`; 0: for the rest of the run, as only
  ``jiritsu resume`` lifts it live). Halted, a bot makes no new entry and its
  split entry is cancelled; open positions keep their TP/SL and exits (the kernel's ``halts``).

Because drawdown and daily loss watch the combined equity, the bots are coupled: every bot is
run with the halts found so far, the breakers are evaluated over the combined equity, and where
they first disagree with the halts the run assumed, the bots are run again with the new ones.
What happens before a time depends only on the halts before it, so each round settles at least
one more trip; the rounds are bounded by :data:`MAX_ROUNDS`.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from jiritsu.backtest.runner import BacktestResult, CandleArrays, GlobalHalt, halts_array, run_bot
from jiritsu.engine.risk import crash_moves
from jiritsu.errors import JiritsuError

if TYPE_CHECKING:
    from jiritsu.config.settings import Settings
    from jiritsu.market.data import MarketData

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MAX_ROUNDS = 1000  # two rounds settle at least one trip; more means a bug, not a busy year


@dataclass
class Portfolio:
    """The bots a backtest assumes around the one it runs, with their candles: ``members`` maps
    each enabled bot to its 1-minute data (from :func:`load_portfolio`); ``index`` holds the
    index symbol's minutes (the crash rule's). Runs of the members other than the backtested
    one are kept per set of halts (a grid's candidates mostly share them)."""

    settings: Settings
    members: dict[str, CandleArrays]
    index: CandleArrays
    _runs: dict[tuple[Any, ...], BacktestResult] = field(default_factory=dict, repr=False)
    _crash: dict[int, np.ndarray] = field(default_factory=dict, repr=False)  # per window
    _guess: dict[tuple[int, int], tuple[GlobalHalt, ...]] = field(
        default_factory=dict, repr=False
    )  # the crash halts alone, per period

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_runs"], state["_crash"], state["_guess"] = {}, {}, {}  # each worker its own
        return state

    def assumption(self, bot: str) -> str:
        """What a backtest of ``bot`` assumed about the rest of the portfolio, for the user."""
        others = [n for n in self.members if n != bot]
        who = (f"{', '.join(others)} trading as configured beside it" if others
               else "no other enabled bot")  # fmt: skip
        return (
            f"portfolio breakers (crash, drawdown, daily loss) on {bot} with {who}, from "
            f"their paper starting balances, savings {self.settings.paper.main_balance} "
            "untouched (no rebalancing or profit saving)"
        )

    def run(
        self,
        settings: Settings,
        bot: str,
        data: CandleArrays,
        start_ms: int | None = None,
        end_ms: int | None = None,
        **kwargs: Any,
    ) -> BacktestResult:
        """:func:`~jiritsu.backtest.runner.run_bot` of ``bot`` (with ``settings``, perhaps a
        candidate's) under the portfolio breakers it meets in this portfolio; the result
        carries the global halts and the assumption."""
        first, last = data.span()
        lo = first if start_ms is None else max(int(start_ms), first)
        hi = last if end_ms is None else min(int(end_ms), last)
        found, mine, _rounds = self.halts(
            bot, lambda h: run_bot(settings, bot, data, lo, hi, halts=h, **kwargs), lo, hi
        )
        return replace(mine, halts=found, portfolio=self.assumption(bot))

    def halts(
        self,
        bot: str,
        run: Any,
        start_ms: int,
        end_ms: int,
    ) -> tuple[tuple[GlobalHalt, ...], BacktestResult, int]:
        """The global halts over ``[start_ms, end_ms)`` with ``bot`` run by ``run(halts)`` (its
        settings may be a candidate's) and the other members as configured; returns (halts,
        ``bot``'s run under them, rounds).

        The first round assumes the crash halts alone (the index's, as if no equity rule ever
        tripped): in most periods they are the answer, found in one round instead of two. Any
        first guess ends at the same halts, the only ones that reproduce themselves: the scan
        is right up to the first time it differs from the guess, so two answers that differed
        would have to differ before their first difference."""
        found = self._crash_halts(start_ms, end_ms)
        settled = 0  # how many of the first trips are known to be right
        for rounds in range(1, MAX_ROUNDS + 1):
            mine = run(halts_array(found))
            curves = [mine] + [self._member(n, found, start_ms, end_ms)
                               for n in self.members if n != bot]  # fmt: skip
            trips = scan(self.settings, self.index, curves, start_ms, end_ms, self._moves())
            if trips == found:  # (the latest scan's messages: its numbers are the final ones)
                return trips, mine, rounds
            # Nothing before a time depends on a later halt: the scan is right up to its first
            # difference from the halts the run assumed, and at it too unless the run halted
            # earlier there (a wrong guess). Keep what followed as a guess the next round
            # checks (crash trips mostly stand); when a round settled nothing new, drop them.
            same = next((i for i, (a, b) in enumerate(zip(trips, found, strict=False)) if a != b),
                        min(len(trips), len(found)))  # fmt: skip
            right = same + int(
                same < len(trips) and (same >= len(found) or found[same].time >= trips[same].time)
            )
            if right > settled:
                settled, found = right, trips
            else:
                found = trips[:same]
        raise JiritsuError(f"portfolio breakers did not settle in {MAX_ROUNDS} rounds")

    def prewarm(self) -> None:
        """Resample every member's bars in this process. A grid forks its workers, and polars'
        thread pool does not survive a fork: a worker that resampled would hang for ever."""
        for name, data in self.members.items():
            data.bars(self.settings.bot(name).timeframe)

    def _crash_halts(self, start_ms: int, end_ms: int) -> tuple[GlobalHalt, ...]:
        """The crash breaker's trips over the period when nothing else trips (no equity: the
        equity rules have nothing at risk)."""
        key = (start_ms, end_ms)
        if key not in self._guess:
            self._guess[key] = scan(self.settings, self.index, [], start_ms, end_ms,
                                    self._moves())  # fmt: skip
        return self._guess[key]

    def _moves(self) -> np.ndarray:
        """The index's crash moves (the same for every round and candidate)."""
        window = self.settings.risk.crash_window_minutes
        if window not in self._crash:
            self._crash[window] = crash_moves(self.index.ts.astype(np.int64), self.index.close,
                                              window)  # fmt: skip
        return self._crash[window]

    def _member(
        self, name: str, halts: tuple[GlobalHalt, ...], start_ms: int, end_ms: int
    ) -> BacktestResult:
        key = (name, tuple((h.time, h.until) for h in halts), start_ms, end_ms)
        found = self._runs.get(key)
        if found is None:
            found = run_bot(self.settings, name, self.members[name], start_ms, end_ms,
                            halts=halts_array(halts))  # fmt: skip
            self._runs[key] = found
        return found


class _Value:
    """The portfolio's value at a step time from the bots' equity curves, at every hour of the
    snapshot grid computed at once (the scan asks for those thousands of times)."""

    def __init__(self, curves: list[BacktestResult], savings: float, start: int, end: int) -> None:
        from jiritsu.engine.loop import SNAPSHOT_EVERY_MS

        self.curves = [(c.ts, c.equity, c.metrics.initial_equity) for c in curves]
        self.savings = savings
        self.every = SNAPSHOT_EVERY_MS
        self.first = -(-start // self.every) * self.every
        self.grid = self._many(np.arange(self.first, end, self.every, dtype=np.int64))

    def on_grid(self, start: int, end: int, every: int) -> tuple[np.ndarray, np.ndarray]:
        """The times of a grid of ``every`` from ``start`` (on it) to ``end`` and the values
        there (:meth:`at` of each), those of the snapshot grid read from it."""
        times = np.arange(start, end, every, dtype=np.int64)
        i = (start - self.first) // self.every
        if every == self.every and start % every == 0 and i >= 0:
            held = self.grid[i : i + times.shape[0]]
            if held.shape[0] == times.shape[0]:
                return times, held
        return times, self._many(times)

    def _many(self, times: np.ndarray) -> np.ndarray:
        total = np.full(times.shape[0], self.savings)
        for ts, eq, initial in self.curves:
            j = np.searchsorted(ts, times - MINUTE_MS, side="right") - 1
            total += np.where(j >= 0, eq[np.maximum(j, 0)], initial)
        return total

    def at(self, t: int) -> float:
        i = (t - self.first) // self.every
        if t % self.every == 0 and 0 <= i < self.grid.shape[0]:
            return float(self.grid[i])
        return float(self._many(np.array([t], dtype=np.int64))[0])


def scan(
    settings: Settings,
    index: CandleArrays,
    curves: list[BacktestResult],
    start_ms: int,
    end_ms: int,
    moves: np.ndarray | None = None,
    *,
    skip_quiet: bool = True,
) -> tuple[GlobalHalt, ...]:
    """The global breakers' trips over ``[start_ms, end_ms)`` given the bots' runs (their
    equity at each bar close): the trade loop's schedule and rules, see the module docstring.
    ``moves``: the index's :func:`~jiritsu.engine.risk.crash_moves`, when already computed.
    ``skip_quiet``: pass over the hours where nothing can trip (:func:`_quiet`; False steps
    through every snapshot and check, the same trips a few times slower)."""
    from jiritsu.engine.loop import REPLAY_BREAKER_EVERY_MS, SNAPSHOT_EVERY_MS, next_on_grid
    from jiritsu.engine.risk import (
        ORDER,
        cooldown_minutes,
        crash_rule,
        daily_base,
        daily_loss_rule,
        drawdown_rule,
    )

    risk = settings.risk
    savings = float(settings.paper.main_balance)
    value = _Value(curves, savings, start_ms, end_ms)
    if moves is None:
        moves = crash_moves(index.ts.astype(np.int64), index.close, risk.crash_window_minutes)
    with np.errstate(invalid="ignore"):
        crashing = np.abs(moves) > risk.crash_move_pct
    crash_at = index.ts[crashing].astype(np.int64) + MINUTE_MS

    snap_t: list[int] = []  # the snapshots: times and values, oldest first
    snap_v: list[float] = []
    peak = -math.inf  # the highest snapshot since the last lift (drawdown_trip's peak)
    trips: list[GlobalHalt] = []
    until: float | None = None  # the global halt's end while halted
    lift: int | None = None  # the last halt or lift (controls' halted_at / resumed_at)
    next_snap = next_check = start_ms
    t = start_ms

    def snapshot(at: int) -> None:
        nonlocal next_snap, peak
        snap_t.append(at)
        snap_v.append(value.at(at))
        peak = max(peak, snap_v[-1])
        next_snap = next_on_grid(at, SNAPSHOT_EVERY_MS)

    while t < end_ms:
        if until is not None and until <= t:  # the cool-down ended: lifted, a new baseline
            until, lift, peak = None, t, -math.inf
            snapshot(t)
        glob = until is not None
        check = t >= next_check and not glob
        if t >= next_snap:
            snapshot(t)
        if check:
            next_check = next_on_grid(t, REPLAY_BREAKER_EVERY_MS)
        found = []
        if not glob:
            k = int(index.ts.searchsorted(t - MINUTE_MS, side="right")) - 1
            if k >= 0 and crashing[k]:
                found.append(crash_rule(float(moves[k]), settings, {"to": float(index.close[k])}))
        if check:
            now = value.at(t)
            found.append(drawdown_rule(max(peak, now), savings, now, risk.max_drawdown_pct))
            day = t - t % DAY_MS
            # the rows live reads (since two days before 00:00), and of those only the ones
            # the daily base can be: the last at or before 00:00, the first after it and the
            # first after the lift
            since = bisect.bisect_left(snap_t, day - 2 * DAY_MS)
            picks = {bisect.bisect_right(snap_t, day) - 1, bisect.bisect_left(snap_t, day)}
            if lift is not None:
                picks.add(bisect.bisect_left(snap_t, lift))
            rows = [(snap_t[i], snap_v[i], savings)
                    for i in sorted(picks) if since <= i < len(snap_t)]  # fmt: skip
            base = daily_base(rows, day, lift)
            if base is not None:
                found.append(daily_loss_rule(base[1], savings, now, risk.daily_loss_pct))
        tripped = sorted((f for f in found if f is not None), key=lambda f: ORDER.index(f.breaker))
        if tripped:
            first = tripped[0]
            cooldown = cooldown_minutes(first.breaker, risk) * MINUTE_MS
            until = t + cooldown if cooldown > 0 else math.inf
            lift = t
            trips.append(GlobalHalt(t, until, first.breaker, first.message))
            if math.isinf(until):
                break  # halted for the rest of the run: nothing more can trip
        # the next time anything can happen: a crash minute, a check or snapshot, the lift
        i = int(crash_at.searchsorted(t, side="right"))
        due = [x for x in (next_snap, next_check if until is None else None, until)
               if x is not None and x > t]  # fmt: skip
        crash = min(int(crash_at[i]), end_ms) if i < crash_at.shape[0] else end_ms
        t = min(int(min(due, default=end_ms)), crash)
        if skip_quiet and until is None and t < crash:
            # Unhalted, the hours to the next crash minute are only snapshots and checks:
            # pass over those at which neither equity rule can trip at once.
            quiet = _quiet(value, snap_t, snap_v, peak, lift, next_snap, next_check, crash, risk)
            if quiet is not None:
                t, snaps, values, next_snap, next_check = quiet
                snap_t.extend(snaps)
                snap_v.extend(values)
                if values:
                    peak = max(peak, max(values))
    return tuple(trips)


_MARGIN = 1e-9  # a loss this close to its limit is left to the rules themselves


def _quiet(
    value: _Value,
    snap_t: list[int],
    snap_v: list[float],
    peak: float,
    lift: int | None,
    next_snap: int,
    next_check: int,
    horizon: int,
    risk: Any,
) -> tuple[int, list[int], list[float], int, int] | None:
    """The stretch of :func:`scan`'s loop from its next snapshot or check up to ``horizon``
    (the next crash minute or the end) that cannot trip, all at once: the drawdown and daily
    loss of every check in it, with the snapshots before each, computed as the loop would (the
    same peak since the lift, the same daily base rows, the same float operations) over arrays.
    Returns (the first check at which a rule may trip, else ``horizon``; the snapshots' times
    and values before it; the loop's next snapshot and check times), None when the arrays hold
    a NaN (the loop then steps as before). Losses within :data:`_MARGIN` of their limit count
    as trips here, so the loop's own rules decide every trip."""
    from jiritsu.engine.loop import REPLAY_BREAKER_EVERY_MS, SNAPSHOT_EVERY_MS, next_on_grid

    snaps, vals = value.on_grid(next_snap, horizon, SNAPSHOT_EVERY_MS)
    checks, now = value.on_grid(next_check, horizon, REPLAY_BREAKER_EVERY_MS)
    if np.isnan(vals).any() or np.isnan(now).any():
        return None
    savings = value.savings
    # drawdown: the highest snapshot since the lift (those at the check included), or now
    high = np.full(checks.shape[0], peak)
    if vals.shape[0]:
        k = np.searchsorted(snaps, checks, side="right") - 1  # the snapshots by each check
        runmax = np.maximum.accumulate(vals)
        high = np.where(k >= 0, np.maximum(runmax[np.maximum(k, 0)], peak), high)
    high = np.maximum(high, now)
    with np.errstate(divide="ignore", invalid="ignore"):
        capital = high - savings
        drawdown = (high - now) / capital
        safe = (capital <= 0) | (drawdown <= risk.max_drawdown_pct - _MARGIN)
        # daily loss: the base daily_base picks among the snapshots up to each check
        times = np.concatenate([np.asarray(snap_t, dtype=np.int64), snaps])
        values = np.concatenate([np.asarray(snap_v, dtype=np.float64), vals])
        day = checks - checks % DAY_MS
        since = np.searchsorted(times, day - 2 * DAY_MS, side="left")
        held = np.searchsorted(times, checks, side="right")  # snapshots taken by the check
        last = np.searchsorted(times, day, side="right") - 1  # the last at or before 00:00
        first = np.searchsorted(times, day, side="left")  # the first after it
        base = np.where(last >= since, last, np.where(first < held, first, -1))
        if lift is not None:
            after = int(np.searchsorted(times, lift, side="left"))  # the first after the lift
            base = np.where(lift > day, np.where(after < held, after, -1), base)
        base_v = values[np.maximum(base, 0)]
        capital = base_v - savings
        loss = (base_v - now) / capital
        safe &= (base < 0) | (capital <= 0) | (loss <= risk.daily_loss_pct - _MARGIN)
    unsafe = np.flatnonzero(~safe)
    stop = int(checks[unsafe[0]]) if unsafe.shape[0] else horizon
    n = int(np.searchsorted(snaps, stop, side="left"))
    m = int(np.searchsorted(checks, stop, side="left"))
    if n:
        next_snap = next_on_grid(int(snaps[n - 1]), SNAPSHOT_EVERY_MS)
    if m:
        next_check = next_on_grid(int(checks[m - 1]), REPLAY_BREAKER_EVERY_MS)
    return stop, snaps[:n].tolist(), vals[:n].tolist(), next_snap, next_check


def load_portfolio(
    market: MarketData,
    settings: Settings,
    bot: str,
    start_ms: int,
    end_ms: int,
    data: CandleArrays,
) -> Portfolio:
    """The portfolio a backtest of ``bot`` assumes (see the module docstring): every enabled bot
    with its own stored candles read through ``market`` (``data`` is ``bot``'s), and the index
    symbol's."""
    from jiritsu.backtest.runner import load_data
    from jiritsu.errors import UsageError

    members: dict[str, CandleArrays] = {}
    for other in settings.enabled_bots:
        if other.name != bot:
            members[other.name] = load_data(market, settings, other.name, start_ms, end_ms)[0]
    members[bot] = data
    index_symbol = settings.master_bot.index_symbol
    index = next((d for d in members.values() if d.symbol == index_symbol), None)
    if index is None:
        window = settings.risk.crash_window_minutes + 2
        frame = market.stored(index_symbol, "1", start_ms - window * MINUTE_MS, end_ms)
        if frame.height == 0:
            raise UsageError(
                f"no stored 1-minute candles for the index symbol {index_symbol} in that period "
                "(the crash breaker watches it): run `jiritsu data backfill` first"
            )
        index = CandleArrays(index_symbol, frame)
    return Portfolio(settings, members, index)
