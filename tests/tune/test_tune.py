"""The tuner end to end on stored synthetic candles, and the same grid on 1 process, 2
processes and a local Dask cluster."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jiritsu.clock import RealClock
from jiritsu.config import read_overlay
from jiritsu.db.models import BacktestRun, SystemEvent, TuningRun
from jiritsu.market.data import MarketData
from jiritsu.runtime import market_data
from jiritsu.tune import BotOutcome, run_tuning, tune_bot
from jiritsu.tune.grid import GridJob, expand, run_grid
from tests.tune.conftest import make_settings


def market(engine: Any, settings: Any) -> MarketData:
    """The stored candles through the market-data service, on the wall clock."""
    return market_data(settings, engine, RealClock())


class Loaded:
    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.overlay_path = settings.overlay_path


class Reports:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []

    def send_report(self, title: str, sections: Any) -> bool:
        self.sent.append((title, sections))
        return True


def test_dry_run_scores_the_grid_and_writes_nothing(stored: Any, isolated_env: Path) -> None:
    settings = make_settings(isolated_env)
    report = run_tuning(
        Loaded(settings), stored, market(stored, settings), clock=RealClock(), dry_run=True
    )
    [o] = report.outcomes
    assert o.bot == "SubBot-C"
    assert o.candidates == 6
    assert len(o.grid) == 6
    assert o.current == {"SubBot-C.dynamic_sizing.atr_period": 10,
                         "SubBot-C.strategy_params.sl_ratio": pytest.approx(0.75)}  # fmt: skip
    assert o.best is not None
    assert o.reason
    assert not settings.overlay_path.exists()
    with stored.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(TuningRun)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(BacktestRun)).scalar() == 0


def test_a_winner_is_applied_recorded_and_reported(
    stored: Any, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jiritsu.tune as tune

    settings = make_settings(isolated_env)
    real = tune_bot(market(stored, settings), settings, "SubBot-C", settings.param_grid())
    key = "SubBot-C.strategy_params.sl_ratio"
    forced = replace(real, best={key: 2.0}, apply=True, reason="forced winner", best_oos=1.0)
    monkeypatch.setattr(tune, "tune_bot", lambda *a, **k: forced)
    notes = Reports()
    report = run_tuning(
        Loaded(settings), stored, market(stored, settings), clock=RealClock(), notifier=notes
    )
    assert report.applied
    overlay = read_overlay(settings.overlay_path)
    assert overlay is not None
    assert overlay.params == {key: 2.0}
    assert report.git == "not a git repository: no commit"
    assert report.reload == "the trade loop reloads tuned.toml at its next step"
    with stored.connect() as conn:
        run = conn.execute(sa.select(TuningRun)).one()
        event = conn.execute(
            sa.select(SystemEvent).where(SystemEvent.event_type == "PARAM_UPDATE")
        ).one()
    assert run.applied
    assert run.status == "applied"
    assert len(run.grid) == 6
    assert run.best_params == {key: 2.0}
    assert event.bot == "SubBot-C"
    with stored.connect() as conn:
        runs = conn.execute(sa.select(BacktestRun.source, BacktestRun.tuning_run_id)).all()
    assert sorted(runs) == [("tune", run.id), ("tune", run.id)]  # current and best
    assert notes.sent[0][0] == "Monthly tuning: parameters updated"


def test_kept_when_not_better_out_of_sample(stored: Any, isolated_env: Path) -> None:
    settings = make_settings(isolated_env, min_improvement=1.0)
    outcome: BotOutcome = tune_bot(
        market(stored, settings), settings, "SubBot-C", settings.param_grid()
    )
    # a winner must double the current out-of-sample score to be applied
    assert outcome.apply == (
        outcome.improvement is not None
        and outcome.improvement >= 1.0
        and (outcome.best_oos or 0.0) > (outcome.current_oos or 0.0)
    )
    assert outcome.reason


def _job(engine: Any, settings: Any) -> tuple[GridJob, list[dict[str, Any]]]:
    from jiritsu.backtest.runner import load_data
    from jiritsu.tune.walkforward import boundaries

    data, start, end = load_data(market(engine, settings), settings, "SubBot-C", None, None)
    job = GridJob(settings, "SubBot-C", data, start, end, boundaries(start, end, 2))
    return job, expand(settings.param_grid())


@pytest.mark.timeout(240)
def test_forked_workers_with_the_portfolio_finish_and_agree(
    stored: Any, isolated_env: Path
) -> None:
    """The monthly tuning's grid: the bot beside the rest of the portfolio (its breakers), run by
    forked workers after this process used polars. The workers resampled the other bots' bars
    themselves and hung for ever (polars' thread pool does not survive a fork: the demo's
    simulation stopped at its first tuning)."""
    from jiritsu.backtest.portfolio import load_portfolio

    settings = make_settings(isolated_env)
    job, cands = _job(stored, settings)
    portfolio = load_portfolio(market(stored, settings), settings, job.bot, job.start_ms,
                               job.end_ms, job.data)  # fmt: skip
    job = replace(job, portfolio=portfolio)
    two = run_grid(job, cands[:6], workers=2)
    one = run_grid(job, cands[:6], workers=1)
    assert [c.params for c in two] == cands[:6]
    assert two == one


def test_results_do_not_depend_on_workers_or_dask(stored: Any, isolated_env: Path) -> None:
    from distributed import LocalCluster

    settings = make_settings(isolated_env)
    job, cands = _job(stored, settings)
    one = run_grid(job, cands, workers=1)
    two = run_grid(job, cands, workers=2)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None, protocol="tcp") as cluster:  # fmt: skip
        # the same path as `jiritsu tune --scheduler tcp://HOST:PORT`
        dask = run_grid(job, cands, scheduler=cluster.scheduler_address)
    assert [c.params for c in one] == cands
    assert one == two == dask
