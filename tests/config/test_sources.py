"""Where values come from: environment overrides, the tuned overlay, .env files and secrets."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from jiritsu import redact
from jiritsu.config import load_config, read_overlay, write_overlay
from jiritsu.config.loader import mask_db_url
from jiritsu.errors import ConfigError
from tests.config.conftest import REPO_CONFIG, WriteConfig, messages

# --------------------------------------------------------------------------- environment


def test_env_override_wins_and_is_marked_env(write_config: WriteConfig) -> None:
    env = {
        "JIRITSU_GENERAL__DEBUG_MODE": "true",
        "JIRITSU_MASTER_BOT__MARKET_PHASE__INDICATOR": "ADX",
        "JIRITSU_RISK__MAX_DRAWDOWN_PCT": "0.1",
        "JIRITSU_SUB_BOTS__0__ENABLED": "false",
        "JIRITSU_SUB_BOTS__SUBBOT_C__BASE_LOT": "120.5",
        "JIRITSU_NEWS_SENTIMENT__KEYWORDS": '["btc", "eth"]',
        "JIRITSU_DASHBOARD__ALLOWED_IPS": "127.0.0.1, 10.0.0.0/8",
        "JIRITSU_SUB_BOTS__1__TIMEFRAME": "60",
    }
    loaded = load_config(write_config(), environ=env)
    s = loaded.settings
    assert s.general.debug_mode is True
    assert s.master_bot.market_phase.indicator == "ADX"
    assert s.risk.max_drawdown_pct == 0.1
    assert s.sub_bots[0].enabled is False
    assert s.sub_bots[2].base_lot == Decimal("120.5")
    assert s.news_sentiment.keywords == ["btc", "eth"]
    assert s.dashboard.allowed_ips == ["127.0.0.1", "10.0.0.0/8"]
    assert s.sub_bots[1].timeframe == "60"
    for key in (
        "general.debug_mode",
        "master_bot.market_phase.indicator",
        "sub_bots[0].enabled",
        "sub_bots[2].base_lot",
        "news_sentiment.keywords",
    ):
        assert loaded.origins[key] == "env", key
    assert loaded.origins["sub_bots[1].enabled"] == "file"
    assert loaded.env_overrides["sub_bots[2].base_lot"] == "JIRITSU_SUB_BOTS__SUBBOT_C__BASE_LOT"


def test_env_override_names_are_case_insensitive(write_config: WriteConfig) -> None:
    loaded = load_config(write_config(), environ={"JIRITSU_General__Debug_Mode": "true"})
    assert loaded.settings.general.debug_mode is True


def test_env_table_as_json_then_a_more_specific_variable(write_config: WriteConfig) -> None:
    env = {
        "JIRITSU_MASTER_BOT__ALLOCATIONS__RANGING": '{"SubBot-A": 0.5, "SubBot-B": 0.5}',
        "JIRITSU_PAPER__STARTING_BALANCES__SUBBOT_B": "5000",
    }
    loaded = load_config(write_config(), environ=env)
    ranging = loaded.settings.master_bot.allocations.ranging
    assert ranging == {"SubBot-A": Decimal("0.5"), "SubBot-B": Decimal("0.5")}
    assert loaded.origins["master_bot.allocations.ranging.SubBot-A"] == "env"
    assert loaded.settings.paper.starting_balances["SubBot-B"] == Decimal("5000")
    assert loaded.origins["paper.starting_balances.SubBot-A"] == "file"


@pytest.mark.parametrize(
    ("var", "fragment"),
    [
        (
            "JIRITSU_GENERAL__DEBUG_MOD",
            "unknown key 'debug_mod' in 'general'; did you mean 'debug_mode'?",
        ),
        ("JIRITSU_NOSECTION__X", "unknown key 'nosection'"),
        ("JIRITSU_SUB_BOTS__7__ENABLED", "there is no item 7"),
        ("JIRITSU_SUB_BOTS__SUBBOT_Z__ENABLED", "no item named like 'SUBBOT_Z'"),
        ("JIRITSU_GENERAL__DEBUG_MODE__X", "single value"),
        ("JIRITSU_GENERAL____X", "malformed"),
    ],
)
def test_env_override_naming_no_key_is_an_error_naming_the_variable(
    write_config: WriteConfig, var: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write_config(), environ={var: "1"})
    assert fragment in messages(info.value, var)[0]


def test_invalid_env_value_names_key_and_variable(write_config: WriteConfig) -> None:
    env = {"JIRITSU_SUB_BOTS__1__DYNAMIC_SIZING__ATR_PERIOD": "fourteen"}
    with pytest.raises(ConfigError) as info:
        load_config(write_config(), environ=env)
    (msg,) = messages(info.value, "sub_bots[1].dynamic_sizing.atr_period")
    assert "JIRITSU_SUB_BOTS__1__DYNAMIC_SIZING__ATR_PERIOD" in msg


def test_non_override_jiritsu_variables_are_ignored(write_config: WriteConfig) -> None:
    env = {
        "JIRITSU_CONFIG": str(write_config()),
        "JIRITSU_TEST_PG_URL": "postgresql://x@localhost/y",
        "JIRITSU_DASHBOARD_PASSWORD_HASH": "pbkdf2:sha256:abcdef",
    }
    assert load_config(environ=env).settings.general.environment == "paper"


def test_config_file_choice(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = write_config(lambda d: d["general"].update(environment="testnet"), name="a.toml")
    other = write_config(lambda d: d["general"].update(environment="demo"), name="b.toml")
    assert load_config(environ={"JIRITSU_CONFIG": str(chosen)}).path == chosen.resolve()
    assert load_config(other, environ={"JIRITSU_CONFIG": str(chosen)}).path == other.resolve()
    (tmp_path / "config.toml").write_text('[general]\nenvironment = "demo"\n')
    assert load_config(environ={}).path == (tmp_path / "config.toml").resolve()
    with pytest.raises(ConfigError) as info:
        load_config(environ={"JIRITSU_CONFIG": str(tmp_path / "missing.toml")})
    assert "JIRITSU_CONFIG" in messages(info.value, "config")[0]


# --------------------------------------------------------------------------- paths and database


def test_relative_data_dir_counts_from_the_config_file(
    write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JIRITSU_GENERAL__DATA_DIR")
    path = write_config(lambda d: d["general"].update(data_dir="state"))
    loaded = load_config(path)
    assert loaded.settings.general.data_dir == path.parent / "state"
    assert loaded.db_url == f"sqlite:///{path.parent / 'state' / 'jiritsu.db'}"
    assert loaded.overlay_path == path.parent / "state" / "tuned.toml"
    assert loaded.settings.backup_dir == path.parent / "state" / "backups"


def test_relative_sqlite_url_counts_from_the_config_file(write_config: WriteConfig) -> None:
    path = write_config(lambda d: d["database"].update(db_url="sqlite:///db/j.db"))
    assert load_config(path).db_url == f"sqlite:///{path.parent / 'db' / 'j.db'}"


def test_postgres_url_gets_psycopg_and_its_password_is_a_secret(
    write_config: WriteConfig,
) -> None:
    url = "postgresql://jiritsu:s3cr%40t-pass@db.example:5432/jiritsu"

    def mutate(d: dict[str, Any]) -> None:
        d["database"].update(db_type="postgresql", db_url=url)

    loaded = load_config(write_config(mutate))
    assert loaded.db_url == "postgresql+psycopg://jiritsu:s3cr%40t-pass@db.example:5432/jiritsu"
    assert redact.redact(f"connect {loaded.db_url} failed") == (
        "connect postgresql+psycopg://jiritsu:***@db.example:5432/jiritsu failed"
    )
    assert redact.redact("s3cr@t-pass") == "***"
    assert mask_db_url(loaded.db_url) == "postgresql+psycopg://jiritsu:***@db.example:5432/jiritsu"
    assert "s3cr" not in repr(loaded)
    assert "s3cr" not in repr(loaded.settings)


def test_db_url_from_an_environment_variable(write_config: WriteConfig) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["database"].update(db_type="postgresql", db_url="", db_url_env="MY_DB_URL")

    path = write_config(mutate)
    env = {"MY_DB_URL": "postgres://u:longpassword@localhost/j"}
    assert (
        load_config(path, environ=env).db_url == "postgresql+psycopg://u:longpassword@localhost/j"
    )
    assert redact.redact("longpassword") == "***"
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert "MY_DB_URL is not set" in messages(info.value, "database.db_url_env")[0]


def test_short_db_password_is_refused(write_config: WriteConfig) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["database"].update(db_type="postgresql", db_url="postgresql://u:pw@localhost/j")

    with pytest.raises(ConfigError) as info:
        load_config(write_config(mutate))
    assert "shorter than 4" in messages(info.value, "database.db_url")[0]


# --------------------------------------------------------------------------- tuned overlay


def test_overlay_merges_over_the_file_and_under_the_environment(
    write_config: WriteConfig, isolated_env: Path
) -> None:
    path = write_config()
    before = path.read_text()
    write_overlay(
        isolated_env / "tuned.toml",
        {
            "SubBot-B.strategy_params.sl_ratio": Decimal("1.2"),
            "SubBot-B.dynamic_sizing.atr_period": Decimal("14"),
            "SubBot-C.base_lot": Decimal("175.5"),
        },
        {"tuning_run_id": 12},
    )
    env = {
        "JIRITSU_SUB_BOTS__SUBBOT_C__BASE_LOT": "160",
        "JIRITSU_GENERAL__DATA_DIR": str(isolated_env),
    }
    loaded = load_config(path, environ=env)
    b = loaded.settings.bot("SubBot-B")
    assert b.strategy_params.sl_ratio == 1.2
    assert b.dynamic_sizing.atr_period == 14
    assert loaded.settings.bot("SubBot-C").base_lot == Decimal("160")
    assert loaded.origins["sub_bots[1].strategy_params.sl_ratio"] == "overlay"
    assert loaded.origins["sub_bots[1].dynamic_sizing.atr_period"] == "overlay"
    assert loaded.origins["sub_bots[2].base_lot"] == "env"
    assert loaded.origins["sub_bots[1].strategy_params.tp_ratio"] == "file"
    assert loaded.overlay is not None
    assert loaded.overlay.meta["tuning_run_id"] == 12
    assert path.read_text() == before  # config.toml stays as the operator wrote it


def test_write_overlay_is_atomic_and_typed(isolated_env: Path) -> None:
    target = isolated_env / "tuned.toml"
    write_overlay(target, {"SubBot-B.dynamic_sizing.atr_period": 14.0}, {"tuning_run_id": 1})
    write_overlay(target, {"SubBot-B.strategy_params.sl_ratio": Decimal("0.7")}, {"n": 2})
    assert sorted(p.name for p in isolated_env.iterdir()) == ["tuned.toml"]  # no temp files left
    overlay = read_overlay(target)
    assert overlay is not None
    assert overlay.params == {"SubBot-B.strategy_params.sl_ratio": Decimal("0.7")}
    assert overlay.meta == {"n": 2}
    write_overlay(target, {"SubBot-B.dynamic_sizing.atr_period": 14.0}, {})
    assert 'atr_period" = 14\n' in target.read_text()
    with pytest.raises(ValueError, match="whole number"):
        write_overlay(target, {"SubBot-B.dynamic_sizing.atr_period": 14.5}, {})
    with pytest.raises(ValueError, match="numbers"):
        write_overlay(target, {"SubBot-B.strategy_params.rule": "ema_cross"}, {})
    assert read_overlay(isolated_env / "absent.toml") is None


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ('[params]\n"SubBot-X.strategy_params.sl_ratio" = 1.2\n',
         'tuned.toml: params."SubBot-X.strategy_params.sl_ratio"', "no sub-bot named 'SubBot-X'"),
        ('[params]\n"SubBot-B.strategy_params.rule" = 1\n',
         'tuned.toml: params."SubBot-B.strategy_params.rule"', "not a numeric parameter"),
        ('[params]\n"SubBot-B.strategy_params.nope" = 1\n',  # the bot's strategy says so
         "sub_bots[1].strategy_params.nope", "ema_cross has no parameter 'nope'"),
        ('[params]\n"SubBot-B.strategy_params.sl_ratio" = "high"\n',
         'tuned.toml: params."SubBot-B.strategy_params.sl_ratio"', "must be a number"),
        ("[results]\nx = 1\n", "tuned.toml: results", "unknown table"),
        ("[params\n", "tuned.toml", "TOML syntax error"),
    ],
)  # fmt: skip
def test_bad_overlay_is_a_config_error(
    write_config: WriteConfig, isolated_env: Path, text: str, key: str, fragment: str
) -> None:
    isolated_env.mkdir(parents=True, exist_ok=True)
    (isolated_env / "tuned.toml").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(write_config())
    assert fragment in messages(info.value, key)[0]


def test_overlay_value_out_of_bounds_names_the_overlay(
    write_config: WriteConfig, isolated_env: Path
) -> None:
    write_overlay(isolated_env / "tuned.toml", {"SubBot-B.dynamic_sizing.atr_period": 1}, {})
    with pytest.raises(ConfigError) as info:
        load_config(write_config())
    (msg,) = messages(info.value, "sub_bots[1].dynamic_sizing.atr_period")
    assert "tuned.toml" in msg


def test_with_params_revalidates(write_config: WriteConfig) -> None:
    s = load_config(write_config()).settings
    tuned = s.with_params({"SubBot-B.strategy_params.sl_ratio": Decimal("0.9")})
    assert tuned.get_param("SubBot-B.strategy_params.sl_ratio") == 0.9
    assert s.get_param("SubBot-B.strategy_params.sl_ratio") == 1.0
    with pytest.raises(ConfigError):
        s.with_params({"SubBot-B.strategy_params.sl_ratio": -1})


# --------------------------------------------------------------------------- .env and secrets


def test_dotenv_files_fill_in_and_real_environment_wins(
    write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config()
    (path.parent / ".env").write_text(
        "# secrets for the bots\n"
        "export BYBIT_MASTER_API_KEY=master-key-from-conf-dir\n"
        "BYBIT_MASTER_API_SECRET='single quoted secret'  # trailing comment\n"
        'GEMINI_API_KEYS="gem-key-one, gem-key-two"\n'
        "JIRITSU_RISK__DAILY_LOSS_PCT=0.04\n"
        "\n"
    )
    (tmp_path / ".env").write_text(
        "BYBIT_MASTER_API_KEY=master-key-from-cwd\nBYBIT_SUBBOT_A_API_KEY=bot-a-key-from-dotenv\n"
    )
    monkeypatch.setenv("BYBIT_SUBBOT_A_API_KEY", "bot-a-key-real")
    monkeypatch.setenv("BYBIT_SUBBOT_A_API_SECRET", "bot-a-secret-real")
    loaded = load_config(path)
    assert loaded.secrets.bybit_master() == ("master-key-from-cwd", "single quoted secret")
    assert loaded.secrets.bybit_bot("SubBot-A") == ("bot-a-key-real", "bot-a-secret-real")
    assert loaded.secrets.bybit_bot("SubBot-B") is None
    assert loaded.secrets.gemini_keys() == ["gem-key-one", "gem-key-two"]
    assert loaded.settings.risk.daily_loss_pct == 0.04
    assert loaded.origins["risk.daily_loss_pct"] == "env"
    assert "BYBIT_MASTER_API_KEY" not in os.environ  # .env is read, never exported
    for value in ("master-key-from-cwd", "single quoted secret", "gem-key-two", "bot-a-key-real"):
        assert redact.redact(f"x {value} y") == "x *** y"
    assert "master-key" not in repr(loaded.secrets)


def test_malformed_dotenv_line_is_reported_without_its_content(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("GOOD=1\nthis-is-a-pasted-secret\nBAD='unterminated\n")
    with pytest.raises(ConfigError) as info:
        load_config(write_config())
    keys = [k for k, _ in info.value.problems]
    assert keys == [f"{tmp_path / '.env'}:2", f"{tmp_path / '.env'}:3"]
    assert "pasted-secret" not in str(info.value)


def test_secrets_are_registered_at_load_time(write_config: WriteConfig) -> None:
    env = {
        "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/tok-en",
        "JIRITSU_DASHBOARD_PASSWORD_HASH": "pbkdf2:sha256:600000$salt$hash",
        "BYBIT_SUBBOT_C_API_SECRET": "c-secret-value",
    }
    loaded = load_config(write_config(), environ=env)
    for value in env.values():
        assert redact.redact(value) == "***"
    assert loaded.secrets.discord_webhook() == env["DISCORD_WEBHOOK_URL"]
    assert (
        loaded.secrets.dashboard_password_hash("operator") == env["JIRITSU_DASHBOARD_PASSWORD_HASH"]
    )
    assert loaded.secrets.get("UNSET_VARIABLE") is None


@pytest.mark.parametrize(
    ("environment", "env", "key", "fragment"),
    [
        ("paper", {"BYBIT_MASTER_API_KEY": "abc"}, "api_keys.bybit_master_key_env",
         "shorter than 4"),
        ("paper", {"GEMINI_API_KEYS": "good-key,x"}, "api_keys.gemini_keys_env", "shorter than 4"),
        ("production", {"DISCORD_WEBHOOK_URL": "http://discord.example/api/webhooks/1/t"},
         "api_keys.discord_webhook_env", "must use https"),
        ("production", {"BYBIT_SUBBOT_B_API_KEY": "only-the-key"}, "sub_bots[1].api_key_env",
         "BYBIT_SUBBOT_B_API_SECRET is not"),
    ],
)  # fmt: skip
def test_bad_secrets_are_refused_without_echoing_them(
    write_config: WriteConfig, environment: str, env: dict[str, str], key: str, fragment: str
) -> None:
    path = write_config(lambda d: d["general"].update(environment=environment))
    with pytest.raises(ConfigError) as info:
        load_config(path, environ=env)
    assert fragment in messages(info.value, key)[0]
    for value in env.values():
        assert value not in str(info.value)


def test_discord_webhook_on_loopback_is_fine_in_production(write_config: WriteConfig) -> None:
    path = write_config(lambda d: d["general"].update(environment="production"))
    env = {"DISCORD_WEBHOOK_URL": "http://127.0.0.1:9/api/webhooks/1/token"}
    assert load_config(path, environ=env).secrets.discord_webhook() == env["DISCORD_WEBHOOK_URL"]


def test_shipped_config_with_empty_environment() -> None:
    loaded = load_config(REPO_CONFIG, environ={})
    assert loaded.origins["general.data_dir"] == "file"
    assert loaded.settings.general.data_dir == REPO_CONFIG.parent / "var"
