"""``jiritsu status`` from the real console script: a missing database is exit 3 and stays
missing, "not halted" is not "running", the loop's liveness comes from its heartbeat, and
``--watch`` refreshes until Ctrl-C and then exits 0 (piped and on a terminal)."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.heartbeat import TRADE_LOOP, beat
from tests.processes import jiritsu_env, run_jiritsu, start_jiritsu


@pytest.fixture
def env(isolated_env: Path) -> dict[str, str]:
    return jiritsu_env(isolated_env, COLUMNS="200")


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_missing_database_is_exit_3_and_is_not_created(
    env: dict[str, str], isolated_env: Path
) -> None:
    db = isolated_env / "jiritsu.db"
    for args in (["status"], ["status", "--json"], ["status", "--watch"], ["data", "info"]):
        result = run_jiritsu(args, env)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert f"no database at {db}" in _flat(result.stderr)
        assert "jiritsu db upgrade" in result.stderr
        assert "Traceback" not in result.stdout + result.stderr
        assert not db.exists(), args
    halt = run_jiritsu(["halt", "--reason", "test"], env)
    assert halt.returncode == 3, "a halt in a fresh, empty database would stop nothing"
    assert not db.exists()


def test_not_halted_is_not_running_and_the_heartbeat_tells_whether_a_loop_is_alive(
    env: dict[str, str], isolated_env: Path
) -> None:
    url = f"sqlite:///{isolated_env / 'jiritsu.db'}"
    migrate.upgrade(url)
    first = run_jiritsu(["status"], env)
    assert first.returncode == 0, first.stderr
    assert "not halted" in first.stdout
    assert "trading: running" not in first.stdout
    assert "loop not running (no heartbeat yet)" in _flat(first.stdout)

    engine = make_engine(url)
    old = datetime.now(timezone.utc) - timedelta(hours=3)
    beat(engine, TRADE_LOOP, {"mode": "live"}, now=old)
    stale = run_jiritsu(["status", "--json"], env)
    assert '"alive": false' in stale.stdout
    assert "no heartbeat for 3h 0m" in stale.stdout

    beat(engine, TRADE_LOOP, {"mode": "live"})
    engine.dispose()
    alive = run_jiritsu(["status"], env)
    assert "alive: heartbeat" in _flat(alive.stdout)


def _read_until(fd: int, needle: bytes, count: int, timeout: float = 120) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while seen.count(needle) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    return seen


def test_watch_refreshes_until_ctrl_c_and_exits_0_when_piped(
    env: dict[str, str], isolated_env: Path
) -> None:
    migrate.upgrade(f"sqlite:///{isolated_env / 'jiritsu.db'}")
    proc = start_jiritsu(
        ["status", "--watch", "--interval", "0.3"], env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        seen = _read_until(proc.stdout.fileno(), b"status at ", 3)
        assert seen.count(b"status at ") >= 3, seen.decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert b"stopped watching" in rest
    assert b"Traceback" not in err


def test_watch_redraws_on_a_terminal_and_ctrl_c_leaves_cleanly(
    env: dict[str, str], isolated_env: Path
) -> None:
    migrate.upgrade(f"sqlite:///{isolated_env / 'jiritsu.db'}")
    leader, follower = pty.openpty()
    proc = start_jiritsu(
        ["status", "--watch", "--interval", "0.3"], {**env, "TERM": "xterm"},
        stdin=follower, stdout=follower, stderr=follower, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    try:
        seen = _read_until(leader, b"status at ", 2)
        assert seen.count(b"status at ") >= 2, seen.decode(errors="replace")
        assert b"\x1b[?1049h" in seen  # the alternate screen: each refresh redraws in place
        proc.send_signal(signal.SIGINT)
        seen += _read_until(leader, b"stopped watching", 1, timeout=15)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert b"\x1b[?1049l" in seen  # the terminal is given back
    assert b"Traceback" not in seen
