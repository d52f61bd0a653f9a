"""What a simulation does around its timer jobs: the decision rows it holds back are not
written before them (no job reads decisions: rebalance, profit saving and the tuner, whose
backtests run the strategies over candles, never recorded answers); they go out with the next
full batch or at the end."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from jiritsu.db.engine import make_engine
from jiritsu.simulate import SimLoop, SimOptions, run_simulation
from tests.simulate.test_proof import real_slice, source

__all__ = ["real_slice"]  # the fixture, used by name


def test_decisions_are_held_through_the_jobs(
    real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = source(tmp_path / "src", real_slice, monkeypatch)
    held: list[tuple[str, int]] = []
    job = SimLoop._job

    def seen(loop: SimLoop, name: str, t: int) -> Any:
        assert loop.ctx is not None
        assert loop.ctx.decisions is not None
        held.append((name, len(loop.ctx.decisions.rows)))
        return job(loop, name, t)

    monkeypatch.setattr(SimLoop, "_job", seen)
    monkeypatch.setattr(SimLoop, "_tune", lambda loop, t: None)  # (its own tests run it)
    lo = int(datetime(2019, 2, 1, tzinfo=timezone.utc).timestamp() * 1000)
    run = run_simulation(loaded, SimOptions(lo, lo + 4 * 3_600_000 + 60_000, tmp_path / "sim"))
    assert run.exit_code == 0
    # 00:00 phase, 01:00 tune, 04:00 phase: the rows since the start held through each
    assert [name for name, _ in held] == ["phase", "tune", "phase"]
    assert held[1][1] > 0  # not written before the tuning
    engine = make_engine(f"sqlite:///{run.options.data_dir / 'jiritsu.db'}")
    try:
        with engine.connect() as conn:
            written = conn.execute(sa.text("select count(*) from decisions")).scalar()
    finally:
        engine.dispose()
    assert written is not None
    assert written >= held[2][1]  # written at the end
