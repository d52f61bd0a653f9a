"""Discovery: built-ins, the user's files next to config.toml and entry points, one registry;
a broken file is an error naming its file and line that never takes the other bots down."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jiritsu.config import load_config
from jiritsu.errors import ConfigError
from jiritsu.strategy.registry import registry, resolve
from jiritsu_cli.main import app
from tests.config.conftest import WriteConfig
from tests.conftest import REPO

EXAMPLE = REPO / "examples" / "strategies" / "macd_trend.py"


def use_rule(bot: int, rule: str, **params: Any) -> Any:
    def mutate(d: dict[str, Any]) -> None:
        d["sub_bots"][bot]["strategy_params"] = {"rule": rule, "tp_ratio": 2.0, **params}

    return mutate


def test_the_built_ins_are_registered_like_any_strategy() -> None:
    reg = registry(())
    assert {"ema_cross", "rsi_reversion", "donchian_breakout"} <= set(reg.found)
    assert {r.origin for r in reg.found.values()} == {"built-in"}
    assert reg.found["ema_cross"].source == "jiritsu.strategy.builtins.ema_cross"


def test_a_user_file_next_to_the_config_is_found_and_validated(
    write_config: WriteConfig, conf_dir: Path
) -> None:
    (conf_dir / "strategies").mkdir()
    shutil.copy(EXAMPLE, conf_dir / "strategies" / "macd_trend.py")
    path = write_config(use_rule(1, "macd_trend", fast=8, slow=30))
    settings = load_config(path, environ={}).settings
    assert settings.strategies.paths == [str(conf_dir / "strategies")]
    strategy, params = resolve(settings, settings.bot("SubBot-B"))
    assert strategy.name == "macd_trend"
    assert (params.fast, params.slow, params.signal) == (8, 30, 9)
    found = registry(tuple(settings.strategies.paths)).get("macd_trend")
    assert (found.origin, found.source) == ("file", str(conf_dir / "strategies" / "macd_trend.py"))
    # a tunable parameter like any other
    assert settings.get_param("SubBot-B.strategy_params.fast") == 8
    assert settings.param_kind("SubBot-B.strategy_params.fast") == "int"


def test_bad_strategy_parameters_name_the_dotted_key(write_config: WriteConfig) -> None:
    path = write_config(
        use_rule(1, "ema_cross", fast_period=30, slow_period=20, fast=3, rsi_period=9)
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    keys = dict(info.value.problems)
    assert "greater than fast_period" in keys["sub_bots[1].strategy_params.slow_period"]
    assert "ema_cross has no parameter 'fast'" in keys["sub_bots[1].strategy_params.fast"]
    # another strategy's parameter means nothing to this one: no typo, no error
    assert "sub_bots[1].strategy_params.rsi_period" not in keys
    path = write_config(use_rule(2, "no_such_thing"))
    with pytest.raises(ConfigError, match=r"sub_bots\[2\].strategy_params.rule: unknown strategy"):
        load_config(path, environ={})


def test_a_range_over_a_strategy_parameter_is_checked_against_the_strategy(
    write_config: WriteConfig,
) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["optimizer"]["param_ranges"] = {
            "SubBot-B.strategy_params.fast_period": {"start": 5, "end": 15, "step": 5},
            "SubBot-C.strategy_params.rsi_lower": {"start": 20, "end": 30, "step": 2.5},
        }

    settings = load_config(write_config(mutate), environ={}).settings
    grid = settings.param_grid()
    assert grid["SubBot-B.strategy_params.fast_period"] == [5, 10, 15]
    lower = grid["SubBot-C.strategy_params.rsi_lower"]
    assert [float(v) for v in lower] == [20, 22.5, 25, 27.5, 30]
    tuned = settings.with_params({"SubBot-B.strategy_params.fast_period": 15})
    assert resolve(tuned, tuned.bot("SubBot-B"))[1].fast_period == 15

    def bad(d: dict[str, Any]) -> None:
        d["optimizer"]["param_ranges"] = {
            "SubBot-B.strategy_params.rsi_lower": {"start": 5, "end": 15, "step": 5},
            "SubBot-B.strategy_params.slow_period": {"start": 20, "end": 2000, "step": 10},
        }

    with pytest.raises(ConfigError) as info:
        load_config(write_config(bad), environ={})
    text = str(info.value)
    assert "'ema_cross' has no parameter 'rsi_lower'" in text
    assert 'optimizer.param_ranges."SubBot-B.strategy_params.slow_period".end: 2000' in text


BROKEN = """from jiritsu.strategy import Strategy


class Broken(Strategy):
    name = "broken"

    def signals(self, bars, params)
        return None
"""

RAISING = """import numpy as np

from jiritsu.strategy import Strategy

LIMIT = 1 / 0
"""


def test_a_broken_file_names_its_line_and_leaves_the_other_bots_alone(
    write_config: WriteConfig, conf_dir: Path
) -> None:
    strategies = conf_dir / "strategies"
    strategies.mkdir()
    (strategies / "broken.py").write_text(BROKEN, encoding="utf-8")
    (strategies / "raising.py").write_text(RAISING, encoding="utf-8")
    shutil.copy(EXAMPLE, strategies / "macd_trend.py")
    # the bots whose strategies load fine are unaffected
    settings = load_config(write_config(use_rule(1, "macd_trend")), environ={}).settings
    assert resolve(settings, settings.bot("SubBot-B"))[0].name == "macd_trend"
    reg = registry(tuple(settings.strategies.paths))
    assert sorted(str(b) for b in reg.broken) == [
        f"{strategies / 'broken.py'}:7: SyntaxError: expected ':'",
        f"{strategies / 'raising.py'}:5: ZeroDivisionError: division by zero",
    ]
    # a bot asking for a strategy that is not there hears about the broken files, exit 2
    path = write_config(use_rule(2, "broken"))
    result = CliRunner().invoke(app, ["config", "check", "--config", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "sub_bots[2].strategy_params.rule: unknown strategy 'broken'" in result.output
    assert f"{strategies / 'broken.py'}:7" in result.output.replace("\n", "")


ENTRY_POINTS = """[jiritsu.strategies]
packaged = packaged_strategy:Packaged
"""

PACKAGED = """from jiritsu.strategy.builtins.ema_cross import EmaCross


class Packaged(EmaCross):
    name = "packaged"
"""


def test_an_installed_package_adds_strategies_through_the_entry_point_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_config: WriteConfig
) -> None:
    site = tmp_path / "site"
    dist = site / "packaged_strategy-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Name: packaged-strategy\nVersion: 1.0\n", encoding="utf-8")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    (site / "packaged_strategy.py").write_text(PACKAGED, encoding="utf-8")
    monkeypatch.syspath_prepend(str(site))
    registry.cache_clear()
    try:
        settings = load_config(write_config(use_rule(0, "packaged")), environ={}).settings
        found = registry(tuple(settings.strategies.paths)).get("packaged")
        assert (found.origin, found.source) == ("entry point", "packaged_strategy")
    finally:
        registry.cache_clear()
        sys.modules.pop("packaged_strategy", None)
