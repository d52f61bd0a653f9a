"""`jiritsu strategies check`: catches a strategy that peeks at the next bar or depends on more
history than a live bot loads, and passes the built-ins."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from jiritsu.market.synth import synth_candles
from jiritsu.strategy.builtins.donchian_breakout import DonchianBreakout
from jiritsu.strategy.builtins.ema_cross import EmaCross
from jiritsu.strategy.builtins.rsi_reversion import RsiReversion
from jiritsu.strategy.check import check_strategy
from jiritsu.strategy.contract import Bars, Strategy, StrategyParams
from jiritsu_cli.main import app
from tests.conftest import REPO
from tests.engine.conftest import load, store_candles
from tests.strategy.conftest import random_walk as walk


class PeekNext(Strategy):
    """Buys when the NEXT close is higher: perfect hindsight, a classic backtest bug."""

    name = "peek_next"

    def signals(self, bars: Bars, params: StrategyParams) -> tuple[np.ndarray, np.ndarray]:
        nxt = np.append(bars.close[1:], bars.close[-1])  # bar i sees close[i + 1]
        action = np.where(nxt > bars.close, 1, np.where(nxt < bars.close, -1, 0))
        return action.astype(np.int8), np.where(action != 0, 0.8, 0.0)


class Cumulative(Strategy):
    """Buys above the mean of ALL the closes seen so far: no lookahead, but a live bot that
    loads 1000 bars computes another mean than a backtest over years."""

    name = "cumulative"

    def signals(self, bars: Bars, params: StrategyParams) -> tuple[np.ndarray, np.ndarray]:
        mean = np.cumsum(bars.close) / np.arange(1, len(bars) + 1)
        action = np.where(bars.close > mean, 1, -1).astype(np.int8)
        return action, np.full(len(bars), 0.7)


def test_a_strategy_peeking_one_bar_ahead_is_caught_at_the_cut() -> None:
    report = check_strategy(PeekNext(), StrategyParams(), walk(3000), history=1000)
    assert not report.ok
    experiments = {f.experiment for f in report.findings}
    assert experiments == {"deleted future", "altered future"}
    # exactly the bar before each cut moved: it is the one whose "next bar" was changed
    assert {f.index for f in report.findings} == set(report.cuts)
    assert report.first is not None
    assert report.first.index == report.cuts[0]


def test_a_decision_depending_on_all_the_history_is_warm_up_instability() -> None:
    report = check_strategy(Cumulative(), StrategyParams(), walk(6000), history=1000)
    assert {f.experiment for f in report.findings} == {"shorter history"}
    assert report.first is not None
    assert report.first.index >= 1000  # only bars a live bot decides with 1000 bars loaded


@pytest.mark.parametrize(
    ("strategy", "params"),
    [
        (EmaCross(), EmaCross.Params()),
        (EmaCross(), EmaCross.Params(fast_period=20, slow_period=50)),
        (RsiReversion(), RsiReversion.Params(rsi_lower=25, rsi_upper=75)),
        (DonchianBreakout(), DonchianBreakout.Params()),
    ],
)
def test_the_built_ins_pass(strategy: Strategy, params: Any) -> None:
    report = check_strategy(strategy, params, walk(6000, seed=7), history=1000)
    assert report.ok, report.findings[:3]


def test_the_command_checks_stored_candles_and_exits_1_naming_the_first_bar(
    isolated_env: Path,
) -> None:
    loaded = load(isolated_env)
    store_candles(loaded, synth_candles(days=20, seed=3))
    config = str(REPO / "config.toml")
    env = {"JIRITSU_GENERAL__DATA_DIR": str(isolated_env)}
    runner = CliRunner()
    good = runner.invoke(app, ["--config", config, "strategies", "check", "ema_cross",
                               "--bot", "SubBot-B"], env=env)  # fmt: skip
    assert good.exit_code == 0, good.output
    assert "ema_cross on BTCUSDT 15 (SubBot-B's bars)" in good.output
    assert "OK" in good.output
    strategies = isolated_env.parent / "strategies"
    strategies.mkdir()
    (strategies / "peek.py").write_text(PEEK_FILE, encoding="utf-8")
    shutil.copy(REPO / "examples" / "strategies" / "macd_trend.py", strategies)
    env["JIRITSU_STRATEGIES__PATHS"] = f'["{strategies}"]'
    bad = runner.invoke(app, ["--config", config, "strategies", "check", "peek_next"], env=env)
    assert bad.exit_code == 1, bad.output
    assert "Traceback" not in bad.output
    assert "peek_next: bar " in bad.output
    assert "over all the data but" in bad.output
    example = runner.invoke(app, ["--config", config, "strategies", "check", "macd_trend"],
                            env=env)  # fmt: skip
    assert example.exit_code == 0, example.output
    listed = runner.invoke(app, ["--config", config, "strategies", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    assert '"source": "' + str(strategies / "peek.py") + '"' in listed.output


PEEK_FILE = """import numpy as np

from jiritsu.strategy import Strategy


class PeekNext(Strategy):
    name = "peek_next"

    def signals(self, bars, params):
        nxt = np.append(bars.close[1:], bars.close[-1])
        action = np.where(nxt > bars.close, 1, 0).astype(np.int8)
        return action, np.where(action != 0, 0.8, 0.0)
"""
