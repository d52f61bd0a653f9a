"""Parameter records of the shipped bots (A spot, B linear time-split, C linear price-split),
in lot sizing: the hand-computed sizes of these tests are lots (risk sizing has its own)."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.config import load_config
from jiritsu.strategy.contract import Bars
from jiritsu.strategy.params import P_SIZING_MODE, SIZING_LOT, build_params
from tests.config.conftest import conf_dir, write_config  # noqa: F401 - shared fixtures
from tests.conftest import REPO


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    return load_config(REPO / "config.toml", environ={}).settings


def _lot(p: np.ndarray) -> np.ndarray:
    p[P_SIZING_MODE] = SIZING_LOT
    return p


@pytest.fixture
def params_a(settings) -> np.ndarray:  # type: ignore[no-untyped-def]
    return _lot(build_params(settings.bot("SubBot-A"), settings))


@pytest.fixture
def params_b(settings) -> np.ndarray:  # type: ignore[no-untyped-def]
    return _lot(build_params(settings.bot("SubBot-B"), settings))


@pytest.fixture
def params_c(settings) -> np.ndarray:  # type: ignore[no-untyped-def]
    return _lot(build_params(settings.bot("SubBot-C"), settings))


def random_walk(n: int, seed: int = 1, step_ms: int = 900_000) -> Bars:
    """``n`` bars of a geometric random walk (1 % per bar) with a random spread."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    spread = np.abs(rng.normal(0, 0.004, n)) * close
    return Bars(
        ts=np.arange(n, dtype=np.float64) * step_ms, open=close, high=close + spread,
        low=close - spread, close=close, volume=np.ones(n),
    )  # fmt: skip
