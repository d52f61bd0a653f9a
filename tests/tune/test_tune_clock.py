"""The tuner's windows end at its clock's "now": a simulation's monthly tuning never backtests a
candle of its future, and the run it records carries the clock's times."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jiritsu.clock import RealClock, SimClock, from_ms
from jiritsu.db.models import TuningRun
from jiritsu.runtime import market_data
from jiritsu.tune import run_tuning
from tests.tune.conftest import make_settings
from tests.tune.test_tune import Loaded

DAY = 86_400_000


def test_the_windows_end_at_the_clock_and_the_run_is_stamped_with_it(
    stored: Any, isolated_env: Path
) -> None:
    one = {"start": Decimal("1.0"), "end": Decimal("1.5"), "step": Decimal("0.5")}
    settings = make_settings(isolated_env, param_ranges={"SubBot-C.strategy_params.sl_ratio": one})
    with stored.connect() as conn:
        first, last = conn.execute(sa.text("select min(ts), max(ts) from candles")).one()
    now = int(first) + 20 * DAY  # four days before the newest stored candle
    clock = SimClock(now)
    market = market_data(settings, stored, clock)
    report = run_tuning(Loaded(settings), stored, market, clock=clock, git=False)
    [outcome] = report.outcomes
    assert outcome.period[1] == now
    with stored.connect() as conn:
        run = conn.execute(sa.select(TuningRun.started_at, TuningRun.finished_at)).one()
    assert tuple(run) == (from_ms(now), from_ms(now))
    # on the wall clock the windows end at the newest stored bar (the wall is years later)
    wall = RealClock()
    live = run_tuning(
        Loaded(settings), stored, market_data(settings, stored, wall), clock=wall, dry_run=True
    )
    assert live.outcomes[0].period[1] == int(last) + 60_000
