"""``jiritsu db``: thin commands over jiritsu.db.migrate, exit codes included."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from jiritsu.db import migrate
from jiritsu_cli import db_cmd
from jiritsu_cli.common import AppState

runner = CliRunner()


@pytest.fixture
def configured(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the CLI's loaded configuration at a given URL (one reconnect attempt)."""

    def use(url: str) -> None:
        loaded = SimpleNamespace(
            db_url=url,
            settings=SimpleNamespace(
                database=SimpleNamespace(reconnect_attempts=1, reconnect_base_delay_seconds=0.01)
            ),
        )
        monkeypatch.setattr(AppState, "loaded", lambda self: loaded)

    return use


def test_inspecting_commands_do_not_create_a_missing_sqlite_file(
    configured: Any, sqlite_url: str
) -> None:
    configured(sqlite_url)
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    for command in (["check"], ["current"], ["downgrade", "base", "--yes"]):
        res = runner.invoke(db_cmd.app, command)
        assert res.exit_code == 3, (command, res.output)
        assert f"no database at {path}" in " ".join(res.output.split())
        assert not path.exists()
    assert runner.invoke(db_cmd.app, ["upgrade"]).exit_code == 0
    assert path.exists()


def test_db_commands_round_trip(configured: Any, sqlite_url: str) -> None:
    configured(sqlite_url)
    Path(sqlite_url.removeprefix("sqlite:///")).touch()  # an empty, never migrated database
    res = runner.invoke(db_cmd.app, ["check"])
    assert res.exit_code == 1
    assert "never migrated" in res.output
    assert runner.invoke(db_cmd.app, ["current"]).output.startswith("none")

    res = runner.invoke(db_cmd.app, ["upgrade"])
    assert res.exit_code == 0, res.output
    head = migrate.head()
    assert f"base -> {head}" in res.output
    assert runner.invoke(db_cmd.app, ["current"]).output.startswith(f"{head} (head)")
    res = runner.invoke(db_cmd.app, ["check"])
    assert res.exit_code == 0
    assert "in sync" in res.output

    res = runner.invoke(db_cmd.app, ["downgrade", "base"], input="n\n")
    assert res.exit_code == 1
    assert runner.invoke(db_cmd.app, ["current"]).output.startswith(head)

    res = runner.invoke(db_cmd.app, ["downgrade", "base", "--yes"])
    assert res.exit_code == 0
    assert f"{head} -> base" in res.output
    assert runner.invoke(db_cmd.app, ["current"]).output.startswith("none")


def test_db_unreachable_exits_3_and_logs_critical(
    configured: Any, caplog: pytest.LogCaptureFixture
) -> None:
    configured("postgresql+psycopg://u:secretpw@127.0.0.1:1/x")
    caplog.set_level(logging.CRITICAL)
    for command in (["upgrade"], ["current"], ["check"], ["downgrade", "base", "--yes"]):
        res = runner.invoke(db_cmd.app, command)
        assert res.exit_code == 3, (command, res.output)
        assert "secretpw" not in res.output
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)
    assert "secretpw" not in caplog.text


def test_db_help_lists_every_command() -> None:
    res = runner.invoke(db_cmd.app, ["--help"])
    assert res.exit_code == 0
    for name in ("upgrade", "downgrade", "current", "check"):
        assert name in res.output


def test_db_upgrade_through_the_real_config_loader(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRITSU_DATABASE__DB_URL", sqlite_url)
    res = runner.invoke(db_cmd.app, ["upgrade"])
    assert res.exit_code == 0, res.output
    assert runner.invoke(db_cmd.app, ["current"]).output.startswith(f"{migrate.head()} (head)")
