"""Applying a winner: the merged overlay and its git commit (the running trade loop reloads the
overlay by itself: tests/engine/test_loop.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from jiritsu.config import read_overlay
from jiritsu.tune.apply import git_commit, write_tuned


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
