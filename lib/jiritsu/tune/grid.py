"""Parameter grids: parse ``key=start:end:step`` / ``key=value``, expand, and run every candidate
of a grid over the same candles -- on local processes or a Dask cluster -- in a fixed order, so
the results never depend on the number of workers.

A key is ``BOT.section.key`` (any tunable numeric sub-bot field, or a numeric parameter of the
bot's strategy under ``strategy_params``), or, with a bot given, ``section.key`` or just ``key``
when only one section has it (``sl_ratio``, ``fast_period``).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from jiritsu.errors import UsageError

if TYPE_CHECKING:
    from jiritsu.backtest.metrics import Metrics
    from jiritsu.backtest.portfolio import Portfolio
    from jiritsu.backtest.runner import BacktestResult, CandleArrays
    from jiritsu.config.settings import Settings

SECTIONS: tuple[tuple[str, ...], ...] = ((), ("strategy_params",), ("dynamic_sizing",),
                                          ("split_entry",))  # fmt: skip


def _kind(key: str, settings: Settings | None) -> str | None:
    from jiritsu.config.params import split_param_key, tunable_kind

    if settings is not None:
        try:
            return settings.param_kind(key)
        except KeyError:
            return None
    return tunable_kind(split_param_key(key)[1])


def resolve_key(
    name: str, bot: str | None, bot_names: Sequence[str], settings: Settings | None = None
) -> str:
    """The full ``BOT.section.key`` of a (possibly short) parameter name (``settings`` lets a
    name be one of the bot's strategy's own parameters)."""
    from jiritsu.config.params import param_key_problem

    first = name.split(".", 1)[0]
    if first in bot_names:
        problem = param_key_problem(name, bot_names)
        if problem is None and _kind(name, settings) is None:
            problem = "is not a tunable numeric parameter"
        if problem:
            raise UsageError(f"{name}: {problem}")
        return name
    if bot is None:
        raise UsageError(f"{name}: name the bot (BOT.section.key) or pass --bot")
    path = tuple(name.split("."))
    found = [
        sec + path
        for sec in SECTIONS
        if _kind(f"{bot}." + ".".join(sec + path), settings) is not None
    ]
    if len(found) != 1:
        why = "is ambiguous" if found else "is not a tunable numeric parameter"
        raise UsageError(f"{name}: {why}")
    return f"{bot}." + ".".join(found[0])


def _number(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UsageError(f"{what}: {text!r} is not a number") from None
    if not value.is_finite():
        raise UsageError(f"{what}: {text!r} is not a finite number")
    return value


def _typed(key: str, value: Decimal | int, settings: Settings | None = None) -> Any:
    if _kind(key, settings) == "int":
        if value != Decimal(value).to_integral_value():
            raise UsageError(f"{key}: {value} is not a whole number")
        return int(value)
    return value


def parse_sets(
    specs: Sequence[str],
    bot: str | None,
    bot_names: Sequence[str],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """``["sl_ratio=1.5", ...]`` -> ``{"BOT.strategy_params.sl_ratio": Decimal("1.5")}``."""
    out: dict[str, Any] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep:
            raise UsageError(f"--set {spec!r}: expected key=value")
        key = resolve_key(name.strip(), bot, bot_names, settings)
        out[key] = _typed(key, _number(value, key), settings)
    return out


def parse_grid(
    specs: Sequence[str],
    bot: str | None,
    bot_names: Sequence[str],
    settings: Settings | None = None,
) -> dict[str, list]:
    """``["sl_ratio=0.5:2.0:0.1"]`` -> ``{key: [0.5, 0.6, ..., 2.0]}`` (exact decimals, ends
    inclusive, like ``optimizer.param_ranges``)."""
    from jiritsu.config.params import ParamRange

    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, rng = spec.partition("=")
        parts = rng.split(":")
        if not sep or len(parts) != 3:
            raise UsageError(f"--grid {spec!r}: expected param=start:end:step")
        key = resolve_key(name.strip(), bot, bot_names, settings)
        if key in grid:
            raise UsageError(f"--grid {key} is given more than once; give each key once")
        start, end, step = (_number(p, key) for p in parts)
        try:
            pr = ParamRange(start=start, end=end, step=step)
        except ValueError as exc:
            raise UsageError(f"--grid {spec!r}: {exc}") from None
        grid[key] = [_typed(key, v, settings) for v in pr.values()]
    return grid


def check_grid(settings: Settings, grid: Mapping[str, Sequence[Any]]) -> None:
    """Every value of ``grid`` within its parameter's own limits, checked as ``--set`` checks
    one (the whole configuration re-validated); UsageError naming the key and value if not.
    Combinations that only clash with each other are left to the runs to report."""
    from jiritsu.config.params import split_param_key
    from jiritsu.errors import ConfigError

    for key in sorted(grid):
        own = "." + ".".join(split_param_key(key)[1])
        for value in grid[key]:
            try:
                settings.with_params({key: value})
            except ConfigError as exc:
                # a clash with another key's current value (fast_period 100 vs slow_period 26)
                # is the combination's business, not this value's
                why = "; ".join(msg for path, msg in exc.problems if path.endswith(own))
                if why:
                    raise UsageError(f"--grid {key}: the value {value} is invalid: {why}") from None


def expand(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination, keys sorted, values in range order (a deterministic order)."""
    keys = sorted(grid)
    return [
        dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(grid[k] for k in keys))
    ]


@dataclass(frozen=True)
class Candidate:
    """One grid point's outcome: its metrics over the whole period and over each segment."""

    index: int
    params: dict[str, Any]
    metrics: Metrics | None
    segments: tuple[Metrics, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class GridJob:
    """Everything a worker needs, shipped once per worker (not per candidate)."""

    settings: Settings
    bot: str
    data: CandleArrays
    start_ms: int
    end_ms: int
    boundaries: tuple[int, ...] = ()  # segment edges (ms) for walk-forward scoring
    # the rest of the portfolio, for its breakers (None: the portfolio is never halted)
    portfolio: Portfolio | None = None


def run_candidate(job: GridJob, index: int, params: Mapping[str, Any]) -> Candidate:
    """Backtest one grid point (a bad combination is reported, not raised)."""
    from jiritsu.backtest.runner import run_bot
    from jiritsu.errors import ConfigError

    try:
        settings = job.settings.with_params(params) if params else job.settings
    except ConfigError as exc:
        return Candidate(index, dict(params), None, (), str(exc))
    if job.portfolio is not None:
        result = job.portfolio.run(settings, job.bot, job.data, job.start_ms, job.end_ms)
    else:
        result = run_bot(settings, job.bot, job.data, job.start_ms, job.end_ms)
    return scored(job, index, params, result)


def scored(
    job: GridJob, index: int, params: Mapping[str, Any], result: BacktestResult
) -> Candidate:
    """A grid point's outcome from its run: the metrics over the period and each segment."""
    from jiritsu.backtest.runner import segment_metrics

    b = job.boundaries
    segs = tuple(segment_metrics(result, b[i], b[i + 1]) for i in range(len(b) - 1))
    return Candidate(index, dict(params), result.metrics, segs)


def prewarm(job: GridJob, candidates: Sequence[Mapping[str, Any]]) -> None:
    """Compile the kernel and, in THIS process, compute the signals (and the indicators behind
    them) of every set of strategy parameters that several candidates share, and every ATR
    period, so forked workers inherit them instead of each redoing the work. A set only one
    candidate uses is left to the worker that runs it: computing it here would only serialise
    work the workers do in parallel. Every resampling happens here (polars, which does it, is
    not fork-safe), the portfolio's other bots included."""
    from collections import Counter

    from jiritsu.backtest.runner import kernels
    from jiritsu.errors import ConfigError
    from jiritsu.strategy.inputs import strategy_signals
    from jiritsu.strategy.params import P_ATR_PERIOD, build_params
    from jiritsu.strategy.registry import resolve

    kernels()
    if job.portfolio is not None:
        job.portfolio.prewarm()
    uses: Counter[tuple[Any, ...]] = Counter()
    first: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
    for params in candidates:
        try:
            settings = job.settings.with_params(params) if params else job.settings
        except ConfigError:
            continue
        bot = settings.bot(job.bot)
        bars = job.data.bars(bot.timeframe)
        bars.atr(int(build_params(bot, settings)[P_ATR_PERIOD]))
        strategy, sparams = resolve(settings, bot)
        key = (bot.timeframe, type(strategy), sparams)
        uses[key] += 1
        first.setdefault(key, (strategy, sparams, bars))
    for key, count in uses.items():
        if count > 1:
            strategy, sparams, bars = first[key]
            strategy_signals(strategy, sparams, bars)  # memoised on bars


def worker_count(workers: int) -> int:
    """``optimizer.workers``: 0 = every local core."""
    return workers if workers > 0 else (os.cpu_count() or 1)


_JOB: GridJob | None = None


def _init_worker(job: GridJob | None) -> None:
    global _JOB
    if job is not None:
        _JOB = job
    _keep_freed_memory()


def _keep_freed_memory() -> None:
    """Let a worker's C allocator keep the memory a candidate freed for the next one (glibc).
    Every candidate allocates the same few 4 MB arrays (a year of minutes: equity, returns,
    confidences...); by default glibc hands them back to the system when freed, and the next
    candidate faults every page in again (7,000 page faults, a fifth of its time). A worker
    ends with its grid, so what it keeps is given back then."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: leave the allocator as it is
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    mallopt(m_mmap_threshold, 32 << 20)  # blocks up to 32 MB from the heap (glibc's maximum)
    mallopt(m_trim_threshold, 512 << 20)  # and the heap's free top kept up to 512 MB


def _run_chunk(items: list[tuple[int, dict[str, Any]]]) -> list[Candidate]:
    assert _JOB is not None
    return [_run_prewarmed(_JOB, i, p) for i, p in items]


def _run_prewarmed(job: GridJob, index: int, params: Mapping[str, Any]) -> Candidate:
    """:func:`run_candidate` after :func:`prewarm`: signals it had to compute belong to this
    candidate alone (prewarm computed every shared set), so they are dropped afterwards -- a
    year of minutes holds 8 MB of them per candidate, a gigabyte over a grid."""
    before = job.data.signal_keys()
    try:
        return run_candidate(job, index, params)
    finally:
        job.data.forget(job.data.signal_keys() - before)


def run_grid(
    job: GridJob,
    candidates: Sequence[Mapping[str, Any]],
    *,
    workers: int = 0,
    scheduler: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> list[Candidate]:
    """Run every candidate; results in candidate order whatever the execution.

    ``scheduler`` (``tcp://host:port``) sends the grid to a Dask cluster
    (:mod:`jiritsu.tune.distributed`); otherwise a process pool of ``workers`` local processes
    (0: all cores; 1: in this process).
    """
    items = [(i, dict(p)) for i, p in enumerate(candidates)]
    if scheduler:
        from jiritsu.tune.distributed import run_on_dask

        return run_on_dask(run_candidate, job, items, scheduler, progress=progress)
    n = min(worker_count(workers), max(1, len(items)))
    prewarm(job, candidates)
    done: list[Candidate] = []
    if n <= 1:
        for i, p in items:
            done.append(_run_prewarmed(job, i, p))
            if progress:
                progress(len(done), len(items))
        return done
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    global _JOB
    # fork: workers inherit the compiled kernel and the indicator caches (prewarmed above)
    ctx = mp.get_context("fork")
    size = max(1, min(8, len(items) // (n * 4) or 1))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    _JOB = job
    try:
        with ProcessPoolExecutor(
            n, mp_context=ctx, initializer=_init_worker, initargs=(None,)
        ) as ex:
            for batch in ex.map(_run_chunk, chunks):
                done.extend(batch)
                if progress:
                    progress(len(done), len(items))
    finally:
        _JOB = None
    done.sort(key=lambda c: c.index)
    return done
