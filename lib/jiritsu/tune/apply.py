"""Putting a tuning winner into effect: overlay file, git commit, trade-loop restart.

Only the overlay (``<data_dir>/tuned.toml``, written atomically with tomli-w by
:func:`jiritsu.config.write_overlay`) changes; ``config.toml`` is never rewritten. The git
commit and the restart are best effort: each returns a one-line outcome that goes to the log,
the event and the Discord report, and never raises.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRADE_UNIT = "jiritsu-trade.service"
GIT_TIMEOUT = 30


def merge_overlay(path: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """The overlay's current parameters with ``params`` on top (other bots' tuned values stay)."""
    from jiritsu.config import read_overlay

    current = read_overlay(path)
    merged: dict[str, Any] = dict(current.params) if current else {}
    merged.update(params)
    return merged


def write_tuned(path: Path, params: Mapping[str, Any], meta: Mapping[str, Any]) -> dict[str, Any]:
    """Write the merged overlay; returns what was written."""
    from jiritsu.config import write_overlay

    merged = merge_overlay(path, params)
    write_overlay(path, merged, meta)
    return merged


def _git(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(directory), *args],
        capture_output=True, text=True, timeout=GIT_TIMEOUT, check=False,
    )  # fmt: skip


def git_commit(path: Path, message: str) -> str:
    """Commit ``path`` when its directory is inside a git work tree; the outcome as text."""
    directory = path.parent
    try:
        inside = _git(directory, "rev-parse", "--is-inside-work-tree")
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            return "not a git repository: no commit"
        added = _git(directory, "add", "--", path.name)
        if added.returncode != 0:
            return f"git add failed: {added.stderr.strip()}"
        done = _git(directory, "commit", "-m", message, "--", path.name)
        if done.returncode != 0:
            why = (done.stderr or done.stdout).strip().splitlines()
            return f"git commit failed: {why[-1] if why else done.returncode}"
        head = _git(directory, "rev-parse", "--short", "HEAD").stdout.strip()
        return f"committed {path.name} as {head}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"git unavailable: {exc}"


def under_systemd() -> bool:
    """True when this process was started by systemd (it sets ``INVOCATION_ID``)."""
    return bool(os.environ.get("INVOCATION_ID"))


def restart_trade_loop(engine: Any, *, systemd: bool | None = None) -> str:
    """Make the trade loop pick the new parameters up: ``systemctl restart`` under systemd,
    else SIGHUP to the PID of the trade loop's heartbeat (it reloads its configuration)."""
    from jiritsu.heartbeat import TRADE_LOOP, last_beat

    if systemd if systemd is not None else under_systemd():
        try:
            done = subprocess.run(
                ["systemctl", "restart", TRADE_UNIT],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError) as exc:
            return f"systemctl restart {TRADE_UNIT} failed: {exc}"
        if done.returncode != 0:
            return f"systemctl restart {TRADE_UNIT} failed: {done.stderr.strip()}"
        return f"restarted {TRADE_UNIT}"
    try:
        beat = last_beat(engine, TRADE_LOOP)
    except Exception as exc:  # noqa: BLE001 - best effort: a DB problem must not fail the tune
        return f"no trade loop found (heartbeat unreadable: {exc})"
    if beat is None or not beat.pid:
        return "no trade loop running: nothing to restart"
    try:
        os.kill(beat.pid, signal.SIGHUP)
    except ProcessLookupError:
        return f"trade loop pid {beat.pid} is not running: nothing to restart"
    except PermissionError:
        return f"not allowed to signal trade loop pid {beat.pid}"
    return f"sent SIGHUP to the trade loop (pid {beat.pid})"
