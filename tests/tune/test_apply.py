"""Applying a winner: overlay, git commit, restart (SIGHUP / systemctl), event, report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jiritsu.config import read_overlay
from jiritsu.tune.apply import git_commit, restart_trade_loop, write_tuned

RECORDER = """
import signal, sys, time
path = sys.argv[1]
def hup(*_):
    open(path, "w").write("HUP")
    sys.exit(0)
signal.signal(signal.SIGHUP, hup)
open(path + ".ready", "w").write("1")
time.sleep(30)
"""


def _git(d: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(d), *args], capture_output=True, text=True, check=True
    ).stdout


def test_overlay_merges_and_commits_in_a_git_repo(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    path = repo / "tuned.toml"
    write_tuned(path, {"SubBot-A.base_lot": 60}, {"run": 1})
    write_tuned(path, {"SubBot-B.strategy_params.sl_ratio": 1.5}, {"run": 2})
    overlay = read_overlay(path)
    assert overlay is not None
    assert overlay.params == {"SubBot-A.base_lot": 60, "SubBot-B.strategy_params.sl_ratio": 1.5}
    assert git_commit(path, "jiritsu tune: tuning run 2").startswith("committed tuned.toml")
    assert _git(repo, "log", "--format=%s").strip() == "jiritsu tune: tuning run 2"
    outside = tmp_path / "plain" / "tuned.toml"
    write_tuned(outside, {"SubBot-A.base_lot": 60}, {})
    assert git_commit(outside, "x") == "not a git repository: no commit"


def test_sighup_goes_to_the_trade_loop_heartbeat_pid(engine: Any, tmp_path: Path) -> None:
    from jiritsu.heartbeat import TRADE_LOOP, beat

    assert restart_trade_loop(engine, systemd=False) == "no trade loop running: nothing to restart"
    flag = tmp_path / "hup"
    proc = subprocess.Popen([sys.executable, "-c", RECORDER, str(flag)])
    try:
        for _ in range(200):
            if Path(str(flag) + ".ready").exists():
                break
            time.sleep(0.05)
        from jiritsu.db.models import Heartbeat

        beat(engine, TRADE_LOOP, {})
        with engine.begin() as conn:
            conn.execute(sa.update(Heartbeat).values(pid=proc.pid))
        said = restart_trade_loop(engine, systemd=False)
        assert said == f"sent SIGHUP to the trade loop (pid {proc.pid})"
        assert proc.wait(timeout=10) == 0
        assert flag.read_text() == "HUP"
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)


def test_systemctl_restart_under_systemd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    fake = bin_dir / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("INVOCATION_ID", "abc")
    assert restart_trade_loop(None) == "restarted jiritsu-trade.service"
    assert log.read_text() == "restart jiritsu-trade.service\n"
