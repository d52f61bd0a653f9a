"""README "Write your own strategy" stays true: its example is a working strategy that passes
`jiritsu strategies check`, backtests, and its tuning range is a valid grid."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from typer.testing import CliRunner

from jiritsu.backtest.runner import CandleArrays, run_bot
from jiritsu.market.synth import synth_candles
from jiritsu.strategy.registry import resolve
from jiritsu_cli.main import app
from tests.conftest import REPO
from tests.engine.conftest import load, store_candles

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def chapter() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("## Write your own strategy")
    return text[start : text.index("\n## ", start + 1)]


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", chapter(), flags=re.S)


def test_the_chapter_example_runs_checks_and_tunes(isolated_env: Path) -> None:
    (code,) = blocks("python")
    (toml,) = blocks("toml")
    where = isolated_env.parent / "strategies"
    where.mkdir()
    (where / "high_break.py").write_text(code, encoding="utf-8")
    ranges = tomllib.loads(toml)["optimizer"]["param_ranges"]
    env = {
        "JIRITSU_STRATEGIES__PATHS": f'["{where}"]',
        "JIRITSU_SUB_BOTS__SUBBOT_B__STRATEGY_PARAMS__RULE": "high_break",
        "JIRITSU_OPTIMIZER__PARAM_RANGES": _json(ranges),
    }
    loaded = load(isolated_env, env)
    settings = loaded.settings
    strategy, params = resolve(settings, settings.bot("SubBot-B"))
    assert (strategy.name, params.lookback) == ("high_break", 48)
    assert settings.param_grid()["SubBot-B.strategy_params.lookback"] == [
        24,
        36,
        48,
        60,
        72,
        84,
        96,
    ]
    candles = synth_candles(days=10, seed=11)
    store_candles(loaded, candles)
    first = int(candles["ts"][0])
    result = run_bot(settings, "SubBot-B", CandleArrays("BTCUSDT", candles), first + 2 * 86_400_000)
    assert result.metrics.trade_count >= 1
    check = CliRunner().invoke(
        app, ["--config", str(REPO / "config.toml"), "strategies", "check", "high_break",
              "--bot", "SubBot-B"],
        env={"JIRITSU_GENERAL__DATA_DIR": str(isolated_env), **env},
    )  # fmt: skip
    assert check.exit_code == 0, check.output
    assert "OK" in check.output
    for command in ("jiritsu strategies check high_break --bot SubBot-B",
                    "jiritsu backtest --bot SubBot-B --grid lookback=24:96:12"):  # fmt: skip
        assert command in chapter()


def _json(ranges: dict) -> str:
    import json

    return json.dumps(ranges)
