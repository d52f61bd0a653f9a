"""Fixtures for the operations tests: a migrated database on both backends, a configuration
pointing at it, a machine probe with chosen numbers, and systemd-analyze (installed from Debian's
``systemd`` package when it is missing and we are root, never skipped)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from jiritsu.config import LoadedConfig, load_config
from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from tests.conftest import REPO

CONFIG = REPO / "config.toml"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a freshly migrated database, once per backend."""
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def make_loaded(isolated_env: Path) -> Callable[..., LoadedConfig]:
    """``make_loaded(db_url, KEY=value...)``: the shipped configuration on ``db_url`` with
    ``JIRITSU_*`` overrides, data dir in the test's temp dir, one quick reconnect attempt."""

    def build(db_url: str, **overrides: str) -> LoadedConfig:
        db_type = "postgresql" if db_url.startswith("postgresql") else "sqlite"
        environ = {
            "JIRITSU_GENERAL__DATA_DIR": str(isolated_env),
            "JIRITSU_DATABASE__DB_TYPE": db_type,
            "JIRITSU_DATABASE__DB_URL": db_url,
            "JIRITSU_DATABASE__RECONNECT_ATTEMPTS": "1",
            "JIRITSU_DATABASE__RECONNECT_BASE_DELAY_SECONDS": "0.01",
            **overrides,
        }
        return load_config(CONFIG, environ=environ)

    return build


@dataclass
class FakeProbe:
    """A machine with exactly these numbers."""

    cpu: float = 10.0
    memory: float = 20.0
    swap_pct: float = 0.0
    swap_total: int = 0
    load: tuple[float, float, float] = (0.1, 0.1, 0.1)
    disk_pct: float = 30.0
    disk_free: int = 50 * 2**30
    fail: str = ""

    def _maybe_fail(self, what: str) -> None:
        if self.fail == what:
            raise OSError(f"{what} unavailable")

    def cpu_percent(self) -> float:
        self._maybe_fail("cpu")
        return self.cpu

    def memory_percent(self) -> float:
        self._maybe_fail("memory")
        return self.memory

    def swap(self) -> tuple[float, int]:
        return self.swap_pct, self.swap_total

    def load_per_cpu(self) -> tuple[float, float, float]:
        return self.load

    def disk(self, path: Path) -> tuple[float, int]:
        self._maybe_fail("disk")
        return self.disk_pct, self.disk_free


@pytest.fixture
def probe() -> FakeProbe:
    return FakeProbe()


@pytest.fixture(scope="session")
def systemd_analyze() -> str:
    """The path of systemd-analyze; installs Debian's systemd package when missing (as root)."""
    found = shutil.which("systemd-analyze")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail(
            "systemd-analyze is missing: install the systemd package (apt-get install "
            "systemd) or run the tests as root so that they can"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "--no-install-recommends", "systemd"],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    found = shutil.which("systemd-analyze")
    assert found, "the systemd package did not provide systemd-analyze"
    return found
