"""``jiritsu tune`` from the command line: a dry run prints and writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jiritsu_cli.main import app


def test_tune_dry_run_json(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JIRITSU_OPTIMIZER__BACKTEST_PERIOD_MONTHS", "1")
    monkeypatch.setenv("JIRITSU_OPTIMIZER__WORKERS", "1")
    runner = CliRunner()
    assert runner.invoke(app, ["data", "synth", "--days", "8", "--seed", "2"]).exit_code == 0
    out = runner.invoke(app, ["tune", "--dry-run", "--json"])
    assert out.exit_code == 0, out.output
    # (the real console sends log lines to stderr with --json; CliRunner mixes them in)
    doc = json.loads(out.stdout[out.stdout.index("{\n") :])
    assert doc["dry_run"] is True
    assert doc["applied"] is False
    assert [b["bot"] for b in doc["bots"]] == ["SubBot-A", "SubBot-B", "SubBot-C"]
    assert [b["candidates"] for b in doc["bots"]] == [15, 21, 15]
    assert all(b["tuning_run_id"] is None for b in doc["bots"])
    assert not (isolated_env / "tuned.toml").exists()
