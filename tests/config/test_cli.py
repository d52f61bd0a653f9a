"""`jiritsu config check` and `jiritsu config show` through the real root command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jiritsu_cli.main import app
from tests.config.conftest import WriteConfig

runner = CliRunner()


def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    result = runner.invoke(app, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def test_check_default_configuration_exits_0_with_a_summary() -> None:
    result = _invoke("config", "check")
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output
    assert "SubBot-C" in result.output
    assert "advisor=hybrid" in result.output
    assert "scorer=lexicon" in result.output


@pytest.mark.parametrize("where", ["root", "command"])
def test_check_lists_every_problem_with_its_key_path_and_exits_2(
    write_config: WriteConfig, where: str
) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["sub_bots"][1]["dynamic_sizing"]["atr_period"] = 1
        d["master_bot"]["profit_save_rate"] = 3

    path = str(write_config(mutate))
    args = ["--config", path, "config", "check"] if where == "root" else [
        "config", "check", "--config", path]  # fmt: skip
    result = _invoke(*args)
    assert result.exit_code == 2
    assert "sub_bots[1].dynamic_sizing.atr_period" in result.output
    assert "master_bot.profit_save_rate" in result.output


def test_unknown_env_override_is_shown_with_the_variable(write_config: WriteConfig) -> None:
    result = _invoke("config", "check", "--config", str(write_config()),
                     env={"JIRITSU_GENERAL__NOPE": "1"})  # fmt: skip
    assert result.exit_code == 2
    assert "JIRITSU_GENERAL__NOPE: unknown key 'nope' in 'general'" in result.output


def test_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = _invoke("config", "check", "--config", str(tmp_path / "missing.toml"))
    assert result.exit_code == 2
    assert "not found" in result.output


def test_toml_syntax_error_exits_2(write_config: WriteConfig) -> None:
    result = _invoke("config", "show", "--config", str(write_config(text="[general\n")))
    assert result.exit_code == 2
    assert "TOML syntax error" in result.output
    assert "line 1" in result.output


def test_show_json_has_every_key_masked_secrets_and_origins(
    write_config: WriteConfig, isolated_env: Path
) -> None:
    def mutate(d: dict[str, Any]) -> None:
        d["database"].update(
            db_type="postgresql", db_url="postgresql://j:very-secret-db-pw@localhost/j"
        )

    env = {
        "BYBIT_MASTER_API_KEY": "the-master-key-value",
        "GEMINI_API_KEYS": "gemini-key-aaaa,gemini-key-bbbb",
        "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/hook-token-value",
        "JIRITSU_RISK__COOLDOWN_MINUTES": "30",
        "JIRITSU_GENERAL__DATA_DIR": str(isolated_env),
    }
    result = _invoke("config", "show", "--json", "--config", str(write_config(mutate)), env=env)
    assert result.exit_code == 0, result.output
    for value in ("the-master-key-value", "gemini-key-aaaa", "hook-token-value",
                  "very-secret-db-pw"):  # fmt: skip
        assert value not in result.output
    doc = json.loads(result.stdout)
    rows = {row["key"]: row for row in doc["keys"]}
    assert rows["risk.cooldown_minutes"] == {
        "key": "risk.cooldown_minutes", "value": 30, "origin": "env",
        "env_var": "JIRITSU_RISK__COOLDOWN_MINUTES",
    }  # fmt: skip
    assert rows["api_keys.bybit_master_key_env"]["is_set"] is True
    assert rows["api_keys.bybit_master_secret_env"]["is_set"] is False
    assert rows["database.db_url"]["value"] == "postgresql://j:***@localhost/j"
    assert rows["sub_bots[1].strategy_params.sl_ratio"]["origin"] == "file"
    assert doc["overlay_file"] is None


def test_show_table_renders(write_config: WriteConfig) -> None:
    result = _invoke("config", "show", "--config", str(write_config()), env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "general.environment" in result.output
    assert "BYBIT_MASTER_API_KEY (not set)" in result.output


KEYS = {
    "BYBIT_MASTER_API_KEY": "mk-master-0001",
    "BYBIT_MASTER_API_SECRET": "ms-master-0002",
    **{f"BYBIT_SUBBOT_{x}_API_KEY": f"ak-{x}-0003" for x in "ABC"},
    **{f"BYBIT_SUBBOT_{x}_API_SECRET": f"as-{x}-0004" for x in "ABC"},
}


def _testnet(d: dict[str, Any], uids: bool = False) -> None:
    d["general"]["environment"] = "testnet"
    if uids:
        d["master_bot"]["main_member_id"] = 100
        for i, bot in enumerate(d["sub_bots"]):
            bot["member_id"] = 101 + i


def test_outside_paper_every_missing_key_and_uid_is_an_error_naming_it(
    write_config: WriteConfig,
) -> None:
    path = str(write_config(_testnet))
    result = _invoke("config", "check", "--config", path)
    assert result.exit_code == 2, result.output
    assert "configuration OK" not in result.output
    text = " ".join(result.output.split())
    assert (
        "api_keys.bybit_master_key_env: BYBIT_MASTER_API_KEY and BYBIT_MASTER_API_SECRET are "
        "not set" in text
    )
    for i, x in enumerate("ABC"):
        assert f"sub_bots[{i}].api_key_env: BYBIT_SUBBOT_{x}_API_KEY and" in text
        assert f"sub_bots[{i}].member_id: missing" in text
    assert "master_bot.main_member_id: missing" in text

    # One secret of a pair missing: only that one is named.
    partial = {k: v for k, v in KEYS.items() if k != "BYBIT_SUBBOT_B_API_SECRET"}
    result = _invoke("config", "check", "--config", path, env=partial)
    text = " ".join(result.output.split())
    assert result.exit_code == 2
    assert (
        "sub_bots[1].api_key_env: BYBIT_SUBBOT_B_API_KEY is set but BYBIT_SUBBOT_B_API_SECRET"
        in text
    )
    assert "BYBIT_MASTER_API_KEY" not in text


def test_outside_paper_with_every_key_and_uid_it_is_ok(write_config: WriteConfig) -> None:
    path = str(write_config(lambda d: _testnet(d, uids=True)))
    result = _invoke("config", "check", "--config", path, env=KEYS)
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output


def test_a_disabled_bot_needs_no_key_and_paper_needs_none(write_config: WriteConfig) -> None:
    def one_bot(d: dict[str, Any]) -> None:
        _testnet(d, uids=True)
        d["sub_bots"][2]["enabled"] = False
        del d["sub_bots"][2]["member_id"]

    env = {k: v for k, v in KEYS.items() if "SUBBOT_C" not in k}
    result = _invoke("config", "check", "--config", str(write_config(one_bot)), env=env)
    assert result.exit_code == 0, result.output
    assert _invoke("config", "check").exit_code == 0  # paper: no key, no UID
