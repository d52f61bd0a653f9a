"""``jiritsu simulate`` from the command line: the JSON document, the report, and the result
database that ``jiritsu status`` reads afterwards."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jiritsu.db.engine import make_engine
from jiritsu.heartbeat import simulated_time
from jiritsu_cli.main import app

KEYS = {
    "from", "to", "start_equity", "end_equity", "total_return", "max_drawdown", "sharpe",
    "buy_and_hold_return", "profit_saved", "transfers", "savings", "tunings", "breaker_trips",
    "bots", "wall_seconds",
}  # fmt: skip


def test_simulate_json_report_and_status_afterwards(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRITSU_NEWS_SENTIMENT__ENABLED", "false")
    runner = CliRunner()
    synth = runner.invoke(app, ["data", "synth", "--days", "9", "--start", "2024-01-01"])
    assert synth.exit_code == 0, synth.output
    report = tmp_path / "report"
    out = runner.invoke(
        app, ["simulate", "--from", "2024-01-08", "--to", "2024-01-08", "--no-tune", "--json",
              "--report", str(report)],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout[out.stdout.index("{\n") :])
    assert set(doc) >= KEYS
    assert doc["from"] == "2024-01-08T00:00:00+00:00"
    assert doc["to"] == "2024-01-09T00:00:00+00:00"
    assert doc["start_equity"] == 10_000
    assert set(doc["bots"]) == {"SubBot-A", "SubBot-B", "SubBot-C"}
    assert doc["transfers"] >= 1  # six rebalances in a day: the phase moved capital
    assert "SubBot-C" in doc["advisors"]  # hybrid runs its rule, and says so
    html = (report / "report.html").read_text()
    assert "<img" in html
    assert "http" not in html.replace("http-equiv", "")  # self-contained
    for png in ("equity.png", "bots.png", "allocation.png", "saved.png"):
        assert (report / png).read_bytes()[:4] == b"\x89PNG"
    sim = isolated_env / "sim"
    engine = make_engine(f"sqlite:///{sim}/jiritsu.db")
    mark = simulated_time(engine)
    engine.dispose()
    assert mark is not None
    assert (mark.until.isoformat(), mark.source) == ("2024-01-09T00:00:00+00:00", "simulate")
    monkeypatch.setenv("JIRITSU_GENERAL__DATA_DIR", str(sim))
    status = runner.invoke(app, ["status", "--json"])
    assert status.exit_code == 0, status.output
    assert "SubBot-B" in status.stdout


def test_ctrl_c_stops_a_simulation_and_its_tuning_worker_without_a_traceback(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches the terminal's process group: the simulation stops (exit 130, no
    traceback) and takes its tuning worker down with it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    monkeypatch.setenv("JIRITSU_NEWS_SENTIMENT__ENABLED", "false")
    monkeypatch.setenv("JIRITSU_OPTIMIZER__BACKTEST_PERIOD_MONTHS", "1")
    synth = CliRunner().invoke(app, ["data", "synth", "--days", "45", "--start", "2024-01-01"])
    assert synth.exit_code == 0, synth.output
    cli = Path(sys.executable).parent / "jiritsu"
    proc = subprocess.Popen(
        [str(cli), "simulate", "--from", "2024-02-01", "--to", "2024-02-14"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        worker = None
        for _ in range(600):  # the worker starts with the simulation
            kids = subprocess.run(["pgrep", "-P", str(proc.pid), "-f", "jiritsu.simulate.ahead"],
                                  capture_output=True, text=True).stdout.split()  # fmt: skip
            if kids:
                worker = int(kids[0])
                break
            time.sleep(0.05)
        assert worker is not None, "no tuning worker"
        time.sleep(1.0)  # into its imports or tuning
        os.killpg(proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in out + err
    assert b"KeyboardInterrupt" not in out + err
    for _ in range(100):
        if not Path(f"/proc/{worker}").exists():
            break
        time.sleep(0.05)
    assert not Path(f"/proc/{worker}").exists(), "the worker outlived the simulation"
