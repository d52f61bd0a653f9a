"""numba's cache goes under the data dir when the package directory is read-only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jiritsu.backtest import runner


def test_read_only_package_uses_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", "")  # recorded, so undo removes what we set below
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setattr(runner.os, "access", lambda *_: False)
    runner.ensure_cache_dir(tmp_path)
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "numba-cache")
    assert (tmp_path / "numba-cache").is_dir()


def test_an_explicit_setting_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/somewhere")
    monkeypatch.setattr(runner.os, "access", lambda *_: False)
    runner.ensure_cache_dir(tmp_path)
    assert os.environ["NUMBA_CACHE_DIR"] == "/somewhere"
