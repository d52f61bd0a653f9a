"""Putting a tuning winner into effect: overlay file and git commit.

Only the overlay (``<data_dir>/tuned.toml``, written atomically with tomli-w by
:func:`jiritsu.config.write_overlay`) changes; ``config.toml`` is never rewritten. The running
trade loop notices the new overlay at its next step and reloads (no restart, no privilege
needed: see :mod:`jiritsu.engine.loop`). The git commit is best effort: it returns a one-line
outcome that goes to the log, the event and the Discord report, and never raises.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

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
