"""A grid keeps the signals its candidates share and drops those only one candidate ran on (a
year of minutes holds 8 MB of them per parameter set: a 100-point grid would hold a gigabyte)."""

from __future__ import annotations

from jiritsu.backtest.runner import CandleArrays
from jiritsu.config.settings import Settings
from jiritsu.market.synth import synth_candles
from jiritsu.tune.grid import GridJob, run_grid

B = "SubBot-B.strategy_params."


def test_signals_only_one_candidate_used_are_dropped() -> None:
    data = CandleArrays("BTCUSDT", synth_candles(days=3, seed=2))
    job = GridJob(Settings(), "SubBot-B", data, int(data.ts[0]) + 86_400_000, data.span()[1])
    shared = [{B + "fast_period": 5, B + "slow_period": 30, B + "sl_ratio": r} for r in (1.0, 2.0)]
    alone = [{B + "fast_period": f, B + "slow_period": 40} for f in (5, 10)]
    found = run_grid(job, shared + alone, workers=1)
    assert all(c.metrics is not None for c in found)
    kept = {(key[0], key[2].fast_period, key[2].slow_period) for _, key in data.signal_keys()}
    assert kept == {("signals", 5, 30), ("kernel signals", 5, 30)}
    assert len(data.bars("15").memo_keys()) > len(kept)  # the indicators stay
