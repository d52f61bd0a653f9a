"""The contract check hands the kernel HOLD bars with confidence 0 whatever the strategy put
there, and copies the confidences only when it has to (a year of minutes is 4 MB a set)."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.strategy.contract import Bars, Strategy, StrategyParams, checked_signals
from jiritsu.strategy.inputs import strategy_signals
from tests.strategy.conftest import random_walk as walk


class Fixed(Strategy):
    """Answers with the arrays it was built with."""

    name = "fixed"

    def __init__(self, action: np.ndarray, confidence: np.ndarray) -> None:
        self.action, self.confidence = action, confidence

    def signals(self, bars: Bars, params: StrategyParams) -> tuple[np.ndarray, np.ndarray]:
        return self.action, self.confidence


def arrays(n: int) -> tuple[np.ndarray, np.ndarray]:
    action = np.zeros(n, dtype=np.int8)
    action[[3, 7, 40]] = (1, -1, 1)
    confidence = np.zeros(n)
    confidence[[3, 7, 40]] = (0.25, 1.0, 0.0)  # an acting bar may hold 0 too
    return action, confidence


@pytest.mark.parametrize("hold_value", [np.nan, 0.7, -3.0, np.inf])
def test_anything_on_a_hold_bar_becomes_confidence_0(hold_value: float) -> None:
    action, confidence = arrays(60)
    dirty = confidence.copy()
    dirty[[0, 5, 59]] = hold_value  # HOLD bars: their confidence means nothing
    got_action, got = checked_signals(Fixed(action, dirty), walk(60), StrategyParams())
    assert np.array_equal(got_action, action)
    assert np.array_equal(got, confidence)  # no NaN, no stray value left
    assert np.isnan(dirty[0]) or dirty[0] == hold_value  # the strategy's own array untouched


def test_clean_confidences_are_not_copied() -> None:
    action, confidence = arrays(60)
    _a, got = checked_signals(Fixed(action, confidence), walk(60), StrategyParams())
    assert got is confidence


def test_the_kernel_reads_int8_actions_whatever_the_strategy_returned() -> None:
    action, confidence = arrays(60)
    as_float = action.astype(np.float64)
    sig, conf = strategy_signals(Fixed(as_float, confidence), StrategyParams(), walk(60))
    assert sig.dtype == np.int8
    assert sig.flags.c_contiguous
    assert sig.flags.writeable
    assert np.array_equal(sig, action)
    assert conf.dtype == np.float64
    assert conf.flags.c_contiguous
    assert np.array_equal(conf, confidence)
