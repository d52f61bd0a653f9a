"""The shipped config.toml is complete, valid and written from the built-in defaults."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from jiritsu.config import Settings, load_config
from jiritsu.config.base import format_path
from jiritsu.config.loader import flatten_settings
from jiritsu.config.template import render
from tests.config.conftest import REPO_CONFIG


def test_default_config_loads_for_paper_trading_on_sqlite(isolated_env: Path) -> None:
    loaded = load_config(REPO_CONFIG)
    s = loaded.settings
    assert loaded.path == REPO_CONFIG.resolve()
    assert s.general.environment == "paper"
    assert s.general.data_dir == isolated_env  # JIRITSU_GENERAL__DATA_DIR from the fixture
    assert loaded.db_url == f"sqlite:///{isolated_env / 'jiritsu.db'}"
    assert loaded.overlay_path == isolated_env / "tuned.toml"
    assert s.bot_names == ["SubBot-A", "SubBot-B", "SubBot-C"]
    assert s.news_sentiment.scorer == "lexicon"


def test_without_arguments_the_shipped_file_is_used_when_cwd_has_none() -> None:
    assert load_config().path == REPO_CONFIG.resolve()


def test_every_key_is_written_in_config_toml() -> None:
    """Origins are 'file' everywhere except keys whose default is 'not set' (TOML has no null)."""
    loaded = load_config(REPO_CONFIG)
    values = {format_path(p): v for p, v in flatten_settings(loaded.settings)}
    not_in_file = {k for k, origin in loaded.origins.items() if origin != "file"}
    assert not_in_file == {k for k, v in values.items() if v is None} | {"general.data_dir"}
    assert loaded.origins["general.data_dir"] == "env"


def test_the_shipped_file_is_written_from_the_models() -> None:
    """The defaults live in the models only: config.toml is their rendering, not a copy."""
    assert REPO_CONFIG.read_text() == render(), "run: python scripts/write_config.py"


def test_any_configuration_renders_to_a_file_that_loads_back_the_same(
    tmp_path: Path, isolated_env: Path
) -> None:
    """Every value reaches the file: changed scalars, a fourth bot with a limit the defaults
    leave unset, another strategy's own parameters, a new range, a second dashboard user."""
    data = Settings().model_dump(mode="python")
    data["exchange"]["maker_fee"] = Decimal("0.0001")
    bot = {**data["sub_bots"][1], "name": "SubBot-D", "max_holding_minutes": 90}
    bot["api_key_env"], bot["api_secret_env"] = "BYBIT_D_KEY", "BYBIT_D_SECRET"
    bot["strategy_params"] = {"rule": "donchian_breakout", "channel_period": 30, "adx_min": 25}
    data["sub_bots"].append(bot)
    data["optimizer"]["param_ranges"]["SubBot-D.strategy_params.channel_period"] = {
        "start": 20, "end": 40, "step": 10,
    }  # fmt: skip
    data["dashboard"]["users"].append(
        {"username": "viewer", "password_hash_env": "VIEWER_HASH", "can_control": False}
    )
    data["general"]["data_dir"] = "state"
    wanted = Settings.model_validate(data, context={"config_dir": tmp_path})
    path = tmp_path / "config.toml"
    path.write_text(render(wanted, tmp_path))
    assert 'data_dir = "state"' in path.read_text()  # relative, as an operator writes it
    got = load_config(path, environ={}).settings
    assert got.model_dump() == wanted.model_dump()


def test_money_is_decimal_without_binary_noise() -> None:
    s = load_config(REPO_CONFIG).settings
    assert s.bot("SubBot-A").base_lot == Decimal("50")
    assert s.paper.starting_balances == {
        "SubBot-A": Decimal("3000"),
        "SubBot-B": Decimal("4000"),
        "SubBot-C": Decimal("3000"),
    }
    assert s.master_bot.allocations.ranging["SubBot-C"] == Decimal("0.2")
    assert s.exchange.taker_fee == Decimal("0.00055")
    assert sum(s.master_bot.allocations.weak_bull.values()) == Decimal("1")


def test_the_three_bots_differ_as_designed() -> None:
    s = load_config(REPO_CONFIG).settings
    a, b, c = s.sub_bots
    assert (a.category, a.allow_short, a.strategy_params.rule) == ("spot", False, "ema_cross")
    assert (c.category, c.allow_short, c.strategy_params.rule) == ("linear", True, "rsi_reversion")
    assert a.base_lot < b.base_lot < c.base_lot
    assert a.strategy_params.sl_ratio > b.strategy_params.sl_ratio > c.strategy_params.sl_ratio
    assert b.api_key_env == "BYBIT_SUBBOT_B_API_KEY"


def test_default_grid_tunes_every_bot_with_exact_values() -> None:
    grid = load_config(REPO_CONFIG).settings.param_grid()
    assert {key.split(".", 1)[0] for key in grid} == {"SubBot-A", "SubBot-B", "SubBot-C"}
    sl = grid["SubBot-B.strategy_params.sl_ratio"]
    atr = grid["SubBot-B.dynamic_sizing.atr_period"]
    assert len(sl) * len(atr) == 21
    assert sl[0] == Decimal("0.5")
    assert sl[-1] == Decimal("2.0")
    assert Decimal("1.25") in sl
    assert atr == [10, 20, 30]
    assert all(type(v) is int for v in atr)
    assert grid["SubBot-C.strategy_params.tp_ratio"] == [
        Decimal("1.0"),
        Decimal("1.5"),
        Decimal("2.0"),
    ]
