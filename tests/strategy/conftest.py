"""Parameter records of the shipped bots (A spot, B linear time-split, C linear price-split)."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.config import load_config
from jiritsu.strategy.params import build_params
from tests.conftest import REPO


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    return load_config(REPO / "config.toml", environ={}).settings


@pytest.fixture
def params_a(settings) -> np.ndarray:  # type: ignore[no-untyped-def]
    return build_params(settings.bot("SubBot-A"), settings)


@pytest.fixture
def params_b(settings) -> np.ndarray:  # type: ignore[no-untyped-def]
    return build_params(settings.bot("SubBot-B"), settings)


@pytest.fixture
def params_c(settings) -> np.ndarray:  # type: ignore[no-untyped-def]
    return build_params(settings.bot("SubBot-C"), settings)
