"""The monthly self-tuner: grid x walk-forward over recent candles, applied only when it wins
out of sample.

Per bot named in ``optimizer.param_ranges``: every grid combination (plus the current values)
is backtested over the last ``backtest_period_months`` with the bot's real strategy
(:mod:`jiritsu.backtest`), scored by ``target_metric`` under walk-forward validation
(:mod:`jiritsu.tune.walkforward`). The winner is applied only if its out-of-sample score beats
the current parameters' by ``min_improvement`` (relative): the overlay is written, a
PARAM_UPDATE event and a ``tuning_runs`` row (with the whole grid) are recorded, the overlay is
committed when its directory is a git repository (the running trade loop reloads the overlay at
its next step) and Discord gets a report. A dry run computes everything and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.clock import Clock
    from jiritsu.config.loader import LoadedConfig
    from jiritsu.config.settings import Settings
    from jiritsu.market.data import MarketData

log = logging.getLogger(__name__)


@dataclass
class BotOutcome:
    """What tuning one bot found and did."""

    bot: str
    current: dict[str, Any]
    best: dict[str, Any] | None
    current_oos: float | None
    best_is: float | None
    best_oos: float | None
    improvement: float | None
    apply: bool
    reason: str
    candidates: int
    eligible: int
    tuning_run_id: int | None = None
    grid: list[dict[str, Any]] = field(default_factory=list)
    fold_winners: list[int] = field(default_factory=list)
    period: tuple[int, int] = (0, 0)
    runs: dict[str, Any] = field(default_factory=dict, repr=False)  # "current"/"best" results
    notes: str = ""  # the current parameters were paused (see _current_score)

    def changes(self) -> dict[str, tuple[Any, Any]]:
        """key -> (current, new) for the values that would change."""
        if not self.best:
            return {}
        return {
            k: (self.current.get(k), v) for k, v in self.best.items() if self.current.get(k) != v
        }


@dataclass
class TuneReport:
    outcomes: list[BotOutcome]
    applied: bool
    overlay: str | None = None
    git: str | None = None
    reload: str | None = None  # how the running trade loop takes the new parameters up
    dry_run: bool = False


def _months_before(end_ms: int, months: int) -> int:
    end = datetime.fromtimestamp(end_ms / 1000, tz=timezone.utc)
    y, m = divmod(end.month - 1 - months, 12)
    day = min(end.day, 28)
    start = end.replace(year=end.year + y, month=m + 1, day=day)
    return int(start.timestamp() * 1000)


def _num(v: Any) -> Any:
    from decimal import Decimal

    return float(v) if isinstance(v, Decimal) else v


def bots_to_tune(settings: Settings) -> dict[str, dict[str, list[Any]]]:
    """``optimizer.param_ranges`` grouped by bot (enabled bots only), keys sorted."""
    out: dict[str, dict[str, list[Any]]] = {}
    enabled = {b.name for b in settings.sub_bots if b.enabled}
    for key, values in sorted(settings.param_grid().items()):
        bot = key.split(".", 1)[0]
        if bot in enabled:
            out.setdefault(bot, {})[key] = values
    return out


def tune_bot(
    market: MarketData,
    settings: Settings,
    bot: str,
    grid: dict[str, list[Any]],
    *,
    end_ms: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BotOutcome:
    """Grid + walk-forward for one bot; decides, applies nothing."""
    from jiritsu.backtest.portfolio import load_portfolio
    from jiritsu.backtest.runner import bot_values, load_data
    from jiritsu.tune import walkforward as wf
    from jiritsu.tune.grid import GridJob, expand, run_grid, scored

    opt = settings.optimizer
    data, earliest, end = load_data(market, settings, bot, None, end_ms)
    # the last N months, or everything stored after the warm-up days when that is less
    start = max(_months_before(end, opt.backtest_period_months), earliest)
    edges = wf.boundaries(start, end, opt.walk_forward_folds)
    portfolio = load_portfolio(market, settings, bot, start, end, data)
    job = GridJob(settings, bot, data, start, end, edges, portfolio)
    candidates = expand(grid)
    found = run_grid(
        job, candidates,
        workers=opt.workers if workers is None else workers,
        scheduler=opt.scheduler if scheduler is None else scheduler,
        progress=progress,
    )  # fmt: skip
    current = {k: v for k, v in bot_values(settings, bot).items() if k in grid}
    # the current parameters' run: scored as a candidate, and the one the dashboard shows
    cur_result = portfolio.run(settings, bot, data, start, end)
    cur_run = scored(job, -1, {}, cur_result)
    cur_eval = wf.evaluate(cur_run, opt.target_metric, opt.min_trades)
    evals = [wf.evaluate(c, opt.target_metric, opt.min_trades) for c in found]
    best = wf.pick(evals)
    winners = wf.fold_winners(found, opt.target_metric, opt.min_trades)
    out = BotOutcome(
        bot=bot, current=current, best=best.params if best else None,
        current_oos=cur_eval.out_of_sample, best_is=best.in_sample if best else None,
        best_oos=best.out_of_sample if best else None, improvement=None, apply=False, reason="",
        candidates=len(evals), eligible=sum(e.eligible for e in evals),
        grid=[e.as_dict() for e in evals], fold_winners=winners, period=(start, end),
    )  # fmt: skip
    out.runs["current"] = cur_result
    if best is not None:
        out.runs["best"] = portfolio.run(settings.with_params(best.params), bot, data, start, end)
    if best is None or best.out_of_sample is None:
        out.reason = f"no candidate has {opt.min_trades} trades in sample: nothing to apply"
    elif not out.changes():
        out.reason = "the current parameters are already the best in sample"
    else:
        cur, note = _current_score(cur_run, cur_eval, out.runs["current"].stopped_notes())
        out.notes = note
        if cur is None:  # paused through every out-of-sample fold: no score to beat
            out.apply = best.out_of_sample > 0
            verdict = "applied" if out.apply else "kept: not positive"
            out.reason = f"{note}; best out of sample {best.out_of_sample:.4f} ({verdict})"
            return out
        out.improvement = wf.improvement(best.out_of_sample, cur)
        if note:
            out.reason = f"{note}; "
        if out.improvement >= float(opt.min_improvement) and best.out_of_sample > cur:
            out.apply = True
            out.reason += (
                f"out of sample {best.out_of_sample:.4f} vs current {cur:.4f} "
                f"(+{out.improvement:.1%} >= {float(opt.min_improvement):.1%})"
            )
        else:
            out.reason += (
                f"out of sample {best.out_of_sample:.4f} vs current {cur:.4f}: improvement "
                f"{out.improvement:+.1%} below min_improvement {float(opt.min_improvement):.1%}"
            )
    return out


def _current_score(cand: Any, ev: Any, stopped: list[str]) -> tuple[float | None, str]:
    """The current parameters' out-of-sample score to beat, and a note when a breaker (the
    bot's loss streak or a portfolio halt) kept them from trading: then only the folds they
    traded in count (None: none did), so a score of 0 that only means "paused" is never the
    bar a candidate has to clear."""
    cur = ev.out_of_sample if ev.out_of_sample is not None else 0.0
    folds = list(cand.segments[1:])
    idle = [i for i, seg in enumerate(folds) if seg.trade_count == 0]
    if not stopped or not idle:
        return cur, ""
    note = (
        f"the current parameters were stopped by a breaker ({stopped[0]}"
        f"{f' and {len(stopped) - 1} more' if len(stopped) > 1 else ''}) and did not trade in "
        f"{len(idle)} of {len(folds)} out-of-sample folds"
    )
    traded = [s for i, s in enumerate(ev.folds_oos) if i not in idle]
    if not traded:
        return None, note
    return sum(traded) / len(traded), f"{note}: compared on the {len(traded)} it traded in"


def _record(
    engine: Engine, settings: Settings, o: BotOutcome, started: datetime, now: datetime
) -> int:
    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import TuningRun

    def dt(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)

    start, end = o.period
    k = settings.optimizer.walk_forward_folds
    first_oos = start + (end - start) // (k + 1)
    row = TuningRun(
        bot=o.bot, started_at=started, finished_at=now, status="applied" if o.apply else "kept",
        target_metric=settings.optimizer.target_metric, grid=o.grid,
        current_params={k2: _num(v) for k2, v in o.current.items()},
        best_params={k2: _num(v) for k2, v in (o.best or {}).items()} or None,
        current_out_of_sample_score=o.current_oos, in_sample_score=o.best_is,
        out_of_sample_score=o.best_oos, in_sample_from=dt(start), in_sample_to=dt(end),
        out_of_sample_from=dt(first_oos), out_of_sample_to=dt(end), applied=o.apply,
        applied_at=now if o.apply else None, reason=o.reason,
        details={"folds": k, "fold_winners": o.fold_winners, "improvement": o.improvement,
                 "candidates": o.candidates, "eligible": o.eligible},
    )  # fmt: skip
    with session_scope(engine) as session:
        session.add(row)
        session.flush()
        return int(row.id)


def tune_all(
    market: MarketData,
    settings: Settings,
    end_ms: int,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[BotOutcome]:
    """Every bot's grid and walk-forward up to ``end_ms``: all a tuning computes, from the
    stored candles and ``settings`` alone (nothing is read from or written to the database
    besides candles, nothing applied), so it can run in another process."""
    outcomes: list[BotOutcome] = []
    for bot, grid in bots_to_tune(settings).items():

        def step(done: int, total: int, bot: str = bot) -> None:
            if progress:
                progress(bot, done, total)

        o = tune_bot(market, settings, bot, grid, end_ms=end_ms, workers=workers,
                     scheduler=scheduler, progress=step)  # fmt: skip
        outcomes.append(o)
    return outcomes


def winning_params(outcomes: list[BotOutcome]) -> dict[str, Any]:
    """The parameters a tuning applies: every winner's, in bot order."""
    params: dict[str, Any] = {}
    for o in outcomes:
        if o.apply and o.best:
            params.update(o.best)
    return params


def run_tuning(
    loaded: LoadedConfig,
    engine: Engine,
    market: MarketData,
    *,
    clock: Clock,
    dry_run: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    notifier: Any = None,
    git: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
    outcomes: list[BotOutcome] | None = None,
) -> TuneReport:
    """Tune every bot of ``optimizer.param_ranges`` over ``market``'s stored candles; apply the
    winners unless ``dry_run``, recording the runs in ``engine``. ``clock``: the runtime's; the
    windows end at its "now" (or the newest stored bar before it: a simulation's tuner never
    sees its future) and the run is recorded at its times. ``git=False`` never commits.
    ``outcomes``: what :func:`tune_all` computed for this time and these settings elsewhere (a
    simulation's worker); they are recorded and applied as if computed here."""
    from jiritsu.events import EventType, record_event
    from jiritsu.tune.apply import git_commit, write_tuned

    settings = loaded.settings
    started = clock.now()
    if outcomes is None:
        outcomes = tune_all(market, settings, clock.now_ms(), workers=workers,
                            scheduler=scheduler, progress=progress)  # fmt: skip
    for o in outcomes:
        log.info("tune %s: %s", o.bot, o.reason)
    report = TuneReport(outcomes, applied=False, dry_run=dry_run)
    if dry_run:
        return report
    from jiritsu.backtest.results import save_run

    for o in outcomes:
        o.tuning_run_id = _record(engine, settings, o, started, clock.now())
        for result in o.runs.values():  # the equity curves the dashboard shows with the run
            save_run(engine, result, source="tune", tuning_run_id=o.tuning_run_id)
    winners = [o for o in outcomes if o.apply and o.best]
    if not winners:
        _notify(notifier, report)
        return report
    params = winning_params(outcomes)
    ids = [o.tuning_run_id for o in winners]
    meta = {"tuned_at": started.isoformat(), "tuning_runs": ids,
            "target_metric": settings.optimizer.target_metric}  # fmt: skip
    path = loaded.overlay_path
    write_tuned(path, params, meta)
    report.applied = True
    report.overlay = str(path)
    message = f"jiritsu tune: tuning run(s) {', '.join(map(str, ids))}"
    report.git = git_commit(path, message) if git else "git commit skipped"
    report.reload = f"the trade loop reloads {path.name} at its next step"
    for o in winners:
        record_event(
            engine, "INFO", EventType.PARAM_UPDATE,
            f"tuned parameters applied: {o.reason}",
            {"tuning_run_id": o.tuning_run_id,
             "changes": {k: [_num(a), _num(b)] for k, (a, b) in o.changes().items()},
             "overlay": str(path), "git": report.git, "reload": report.reload},
            bot=o.bot, now=clock.now(),
        )  # fmt: skip
    _notify(notifier, report)
    return report


def _notify(notifier: Any, report: TuneReport) -> None:
    if notifier is None:
        return
    sections = []
    for o in report.outcomes:
        lines = [o.reason]
        for k, (a, b) in o.changes().items():
            lines.append(f"{k}: {_num(a)} -> {_num(b)}")
        sections.append((f"{o.bot} ({'applied' if o.apply else 'kept'})", "\n".join(lines)))
    if report.applied:
        sections.append(("effect", f"overlay {report.overlay}; {report.git}; {report.reload}"))
    title = "Monthly tuning: parameters updated" if report.applied else "Monthly tuning: no change"
    notifier.send_report(title, sections)
