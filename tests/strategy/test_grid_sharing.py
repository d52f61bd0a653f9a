"""A grid computes a strategy's signals once per distinct set of the strategy's parameters,
and each indicator once per period, whatever the number of combinations."""

from __future__ import annotations

from typing import Any

import pytest

from jiritsu.backtest.runner import CandleArrays
from jiritsu.config.settings import Settings
from jiritsu.market.synth import synth_candles
from jiritsu.strategy.builtins.ema_cross import EmaCross
from jiritsu.strategy.contract import Bars
from jiritsu.tune.grid import GridJob, run_grid

B = "SubBot-B."


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    calls: dict[str, list[Any]] = {"signals": [], "ema": []}
    signals, ema = EmaCross.signals, Bars.ema

    def count_signals(self: EmaCross, bars: Bars, params: Any) -> Any:
        calls["signals"].append((params.fast_period, params.slow_period))
        return signals(self, bars, params)

    def count_ema(self: Bars, period: int) -> Any:
        if ("ema", int(period)) not in self._memo:
            calls["ema"].append(int(period))
        return ema(self, period)

    monkeypatch.setattr(EmaCross, "signals", count_signals)
    monkeypatch.setattr(Bars, "ema", count_ema)
    return calls


def test_kernel_parameters_share_one_set_of_signals(counted: dict[str, list[Any]]) -> None:
    data = CandleArrays("BTCUSDT", synth_candles(days=3, seed=2))
    job = GridJob(Settings(), "SubBot-B", data, int(data.ts[0]) + 86_400_000, data.span()[1])
    found = run_grid(job, [{B + "strategy_params.sl_ratio": v} for v in (0.5, 1.0, 1.5, 2.0)],
                     workers=1)  # fmt: skip
    assert all(c.metrics is not None for c in found)
    assert counted["signals"] == [(12, 26)]
    assert sorted(counted["ema"]) == [12, 26]


def test_each_strategy_parameter_set_is_computed_once(counted: dict[str, list[Any]]) -> None:
    data = CandleArrays("BTCUSDT", synth_candles(days=3, seed=2))
    job = GridJob(Settings(), "SubBot-B", data, int(data.ts[0]) + 86_400_000, data.span()[1])
    grid = [
        {B + "strategy_params.fast_period": f, B + "strategy_params.slow_period": s,
         B + "strategy_params.sl_ratio": r}
        for f in (5, 10) for s in (30, 40) for r in (1.0, 2.0)
    ]  # fmt: skip
    run_grid(job, grid, workers=1)
    assert sorted(counted["signals"]) == [(5, 30), (5, 40), (10, 30), (10, 40)]
    assert sorted(counted["ema"]) == [5, 10, 30, 40]  # each period once, shared by the sets
