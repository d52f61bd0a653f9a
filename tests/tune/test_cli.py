"""``jiritsu tune`` from the command line: a dry run prints and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jiritsu_cli.main import app


def dry_run(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``tune --dry-run --json`` over a month of eight synthetic days, one worker."""
    monkeypatch.setenv("JIRITSU_OPTIMIZER__BACKTEST_PERIOD_MONTHS", "1")
    monkeypatch.setenv("JIRITSU_OPTIMIZER__WORKERS", "1")
    runner = CliRunner()
    assert runner.invoke(app, ["data", "synth", "--days", "8", "--seed", "2"]).exit_code == 0
    out = runner.invoke(app, ["tune", "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    # (the real console sends log lines to stderr with --json; CliRunner mixes them in)
    doc: dict[str, Any] = json.loads(out.stdout[out.stdout.index("{\n") :])
    return doc


def test_tune_dry_run_json(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = dry_run(monkeypatch)
    assert doc["dry_run"] is True
    assert doc["applied"] is False
    assert [b["bot"] for b in doc["bots"]] == ["SubBot-A", "SubBot-B", "SubBot-C"]
    assert [b["candidates"] for b in doc["bots"]] == [15, 21, 15]
    assert all(b["tuning_run_id"] is None for b in doc["bots"])
    assert not (isolated_env / "tuned.toml").exists()


def test_tune_names_the_portfolio_halts(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRITSU_RISK__CRASH_MOVE_PCT", "0.006")  # several in the synthetic days
    monkeypatch.setenv("JIRITSU_RISK__CRASH_COOLDOWN_MINUTES", "90")
    for bot in dry_run(monkeypatch)["bots"]:
        notes = bot["breaker_trips"]["current"]
        assert any(n.startswith("portfolio crash breaker at") for n in notes), bot["bot"]
        assert bot["portfolio"].startswith(f"portfolio breakers (crash, drawdown, daily loss) "
                                           f"on {bot['bot']} with ")  # fmt: skip
