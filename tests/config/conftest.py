"""Helpers for configuration tests: write a variant of the shipped config.toml to a temp dir."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from jiritsu.errors import ConfigError
from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

REPO_CONFIG = REPO / "config.toml"

WriteConfig = Callable[..., Path]


def default_data() -> dict[str, Any]:
    """The shipped config.toml as a dict (floats as floats, so tomli-w can write it back)."""
    return tomllib.loads(REPO_CONFIG.read_text(encoding="utf-8"))


@pytest.fixture
def conf_dir(tmp_path: Path) -> Path:
    """A directory for config files that is NOT the cwd (tmp_path), to catch cwd-relative bugs."""
    path = tmp_path / "conf"
    path.mkdir()
    return path


@pytest.fixture
def write_config(conf_dir: Path) -> WriteConfig:
    """write(mutate) -> path of config.toml = the default with ``mutate(data)`` applied."""

    def write(
        mutate: Callable[[dict[str, Any]], None] | None = None,
        *,
        text: str | None = None,
        name: str = "config.toml",
    ) -> Path:
        if text is None:
            data = default_data()
            if mutate is not None:
                mutate(data)
            text = tomli_w.dumps(data)
        path = conf_dir / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


def messages(exc: ConfigError, key: str) -> list[str]:
    """Every message reported for ``key`` (asserting there is at least one)."""
    found = [msg for k, msg in exc.problems if k == key]
    assert found, f"no problem reported for {key!r}; got {exc.problems!r}"
    return found
