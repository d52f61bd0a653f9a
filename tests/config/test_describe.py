"""What `config check` and `config show` present: masked values with their origins."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from jiritsu.config import Settings, load_config, write_overlay
from jiritsu.config.describe import effective_rows, rows_as_json, summary
from jiritsu.errors import ConfigError
from tests.config.conftest import WriteConfig

SECRET_ENV = {
    "BYBIT_MASTER_API_KEY": "master-api-key-value",
    "BYBIT_MASTER_API_SECRET": "master-api-secret-value",
    "GEMINI_API_KEYS": "gemini-key-1,gemini-key-2",
    "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/webhook-token",
}


def _pg(d: dict[str, Any]) -> None:
    d["database"].update(
        db_type="postgresql", db_url="postgresql://jiritsu:db-password-value@db.example/j"
    )


def test_rows_mask_secrets_and_show_env_names(
    write_config: WriteConfig, isolated_env: Path
) -> None:
    env = {**SECRET_ENV, "JIRITSU_GENERAL__DATA_DIR": str(isolated_env)}
    rows = {r.key: r for r in effective_rows(load_config(write_config(_pg), environ=env))}
    assert rows["api_keys.bybit_master_key_env"].display == "BYBIT_MASTER_API_KEY (set)"
    assert rows["api_keys.bybit_master_key_env"].secret_set is True
    assert rows["sub_bots[0].api_key_env"].display == "BYBIT_SUBBOT_A_API_KEY (not set)"
    assert rows["database.db_url"].value == "postgresql://jiritsu:***@db.example/j"
    assert rows["general.data_dir"].origin == "env"
    assert rows["general.data_dir"].env_var == "JIRITSU_GENERAL__DATA_DIR"
    assert rows["sub_bots[1].base_lot"].value == 100
    assert rows["exchange.taker_fee"].value == 0.00055
    assert rows["master_bot.main_member_id"].display == "(unset)"
    dumped = json.dumps(rows_as_json(list(rows.values())))
    for value in [*SECRET_ENV.values(), "db-password-value", "gemini-key-1"]:
        assert value not in dumped
        assert all(value not in r.display for r in rows.values())


def test_summary_reports_what_an_operator_checks_first(
    write_config: WriteConfig, isolated_env: Path
) -> None:
    write_overlay(
        isolated_env / "tuned.toml", {"SubBot-B.strategy_params.sl_ratio": 1.1},
        {"tuning_run_id": 12, "applied_at": datetime(2026, 11, 1, 1, tzinfo=timezone.utc)},
    )  # fmt: skip
    env = {**SECRET_ENV, "JIRITSU_GENERAL__DATA_DIR": str(isolated_env),
           "JIRITSU_SUB_BOTS__1__ENABLED": "false"}  # fmt: skip
    loaded = load_config(write_config(_pg), environ=env)
    info = summary(loaded, now=datetime(2026, 11, 15, tzinfo=timezone.utc))
    assert info["environment"] == "paper"
    assert info["database"] == "postgresql+psycopg://jiritsu:***@db.example/j"
    assert [b["name"] for b in info["bots"] if b["enabled"]] == ["SubBot-A", "SubBot-C"]
    assert info["tuning"]["next_run"] == "2026-12-01T01:00:00+00:00"
    assert info["tuning"]["grid_size"] == 15 + 15  # A's and C's grids; B is disabled
    assert info["overlay"]["present"] is True
    assert info["overlay"]["tuning_run_id"] == "12"
    assert info["env_overrides"] == ["JIRITSU_GENERAL__DATA_DIR", "JIRITSU_SUB_BOTS__1__ENABLED"]
    secrets = {s["name"]: s["set"] for s in info["secrets"]}
    assert secrets["BYBIT_MASTER_API_KEY"] is True
    assert secrets["BYBIT_SUBBOT_A_API_KEY"] is False
    assert "db-password-value" not in json.dumps(info)


def test_settings_built_in_code_are_checked_too() -> None:
    """Without the loader's context the root model still checks references and URLs."""
    with pytest.raises(ValidationError) as info:
        Settings.model_validate(
            {
                "general": {"environment": "production"},
                "exchange": {"base_url": "http://exchange.example"},
                "master_bot": {"allocations": {"ranging": {"Ghost": 1}}},
                "optimizer": {"param_ranges": {"Ghost.strategy_params.sl_ratio": {
                    "start": 1, "end": 2, "step": 1}}},
            }
        )  # fmt: skip
    text = str(info.value)
    assert "no sub-bot named 'Ghost'" in text
    assert "must use https" in text


def test_with_params_reports_unknown_parameters() -> None:
    with pytest.raises(ConfigError) as info:
        Settings().with_params({"SubBot-Q.strategy_params.sl_ratio": Decimal(1)})
    assert info.value.problems == [
        ('params."SubBot-Q.strategy_params.sl_ratio"', "no sub-bot named 'SubBot-Q'")
    ]
