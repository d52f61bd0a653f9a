"""Signal rules over hand-made indicator arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jiritsu import indicators
from jiritsu.strategy import params as P
from jiritsu.strategy.rules import (
    ema_cross_signal,
    explain,
    indicator_arrays,
    rsi_reversion_signal,
    rule_signal,
    rule_signals,
    signal_at,
)

NAN = math.nan


def arr(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float64)


def test_ema_cross_up_is_a_buy_with_confidence_from_the_close_in_atrs() -> None:
    # fast 1 -> 2 crosses slow 1.5 -> 1.8; close 2.2 is (2.2 - 1.8) / 0.8 = 0.5 ATR above slow
    action, conf = ema_cross_signal(1, arr(2, 2.2), arr(1, 2), arr(1.5, 1.8), arr(0.8, 0.8))
    assert action == 1
    assert conf == pytest.approx(0.5 + 0.25 * 0.5)


def test_ema_cross_down_is_a_sell_and_confidence_is_capped_at_1() -> None:
    # d = -1 * (1.0 - 1.8) / 0.4 = 2 -> 0.5 + 0.5 = 1.0
    assert ema_cross_signal(1, arr(2, 1.0), arr(2, 1), arr(1.5, 1.8), arr(0.4, 0.4)) == (-1, 1.0)
    # d = -1 * (1.0 - 1.8) / 0.1 = 8 -> 2.5, clipped
    assert ema_cross_signal(1, arr(2, 1.0), arr(2, 1), arr(1.5, 1.8), arr(0.1, 0.1)) == (-1, 1.0)


def test_a_close_on_the_wrong_side_lowers_confidence_and_touching_counts_as_before() -> None:
    # fast touched slow on the previous bar, crosses now; close 0.4 ATR BELOW slow: 0.5 - 0.1
    action, conf = ema_cross_signal(1, arr(1, 1.6), arr(1.5, 2.0), arr(1.5, 1.8), arr(0.5, 0.5))
    assert action == 1
    assert conf == pytest.approx(0.4)


def test_no_cross_warm_up_and_the_first_bar_hold() -> None:
    assert ema_cross_signal(1, arr(2, 2), arr(2, 2.1), arr(1.5, 1.8), arr(1, 1)) == (0, 0.0)
    assert ema_cross_signal(1, arr(2, 2), arr(NAN, 2.1), arr(1.5, 1.8), arr(1, 1)) == (0, 0.0)
    assert ema_cross_signal(0, arr(2), arr(2), arr(1), arr(1)) == (0, 0.0)
    # undefined ATR: confidence 0.5 (no distance information)
    assert ema_cross_signal(1, arr(2, 2.2), arr(1, 2), arr(1.5, 1.8), arr(NAN, NAN)) == (1, 0.5)


@pytest.mark.parametrize(
    ("rsi", "expected"),
    [
        (20.0, (1, 0.6)),  # 0.5 + 0.5 * (25 - 20) / 25
        (10.0, (1, 0.8)),
        (0.0, (1, 1.0)),
        (80.0, (-1, 0.6)),  # 0.5 + 0.5 * (80 - 75) / 25
        (25.0, (0, 0.0)),  # the zone's edge is inside
        (75.0, (0, 0.0)),
        (50.0, (0, 0.0)),
        (NAN, (0, 0.0)),
    ],
)
def test_rsi_reversion(rsi: float, expected: tuple[int, float]) -> None:
    action, conf = rsi_reversion_signal(0, arr(rsi), 25.0, 75.0)
    assert action == expected[0]
    assert conf == pytest.approx(expected[1])


def test_rule_signals_is_rule_signal_per_bar() -> None:
    rsi = arr(NAN, 20, 50, 80)
    actions, confs = rule_signals(P.RULE_RSI_REVERSION, rsi, rsi, rsi, rsi, rsi, 25.0, 75.0)
    assert actions.tolist() == [0, 1, 0, -1]
    assert confs.tolist() == pytest.approx([0.0, 0.6, 0.0, 0.6])
    assert rule_signal(P.RULE_RSI_REVERSION, 1, rsi, rsi, rsi, rsi, rsi, 25.0, 75.0) == (1, 0.6)


def test_indicator_arrays_use_the_bot_periods(params_b: np.ndarray) -> None:
    close = np.linspace(100, 130, 60)
    high, low = close + 1, close - 1
    ind = indicator_arrays(high, low, close, params_b)
    assert np.array_equal(ind.ema_fast, indicators.ema(close, 12), equal_nan=True)
    assert np.array_equal(ind.ema_slow, indicators.ema(close, 26), equal_nan=True)
    assert np.array_equal(ind.rsi, indicators.rsi(close, 14), equal_nan=True)
    assert np.array_equal(ind.atr, indicators.atr(high, low, close, 14), equal_nan=True)


def test_signal_at_and_explain_on_a_cross(params_b: np.ndarray) -> None:
    # 30 bars falling then rising sharply: EMA12 crosses EMA26 upwards somewhere in the rise
    close = np.concatenate([np.linspace(120, 100, 30), np.linspace(100, 130, 15)])
    ind = indicator_arrays(close + 0.5, close - 0.5, close, params_b)
    hits = [i for i in range(len(close)) if signal_at(i, close, ind, params_b)[0] == 1]
    assert len(hits) == 1
    i = hits[0]
    assert ind.ema_fast[i - 1] <= ind.ema_slow[i - 1]
    assert ind.ema_fast[i] > ind.ema_slow[i]
    action, conf = signal_at(i, close, ind, params_b)
    text = explain(action, conf, i, close, ind, params_b)
    assert text.startswith(f"ema_cross BUY ({conf:.2f}): fast crossed above slow; EMA12 ")
    assert "EMA26" in text
    assert "ATR" in text
    assert explain(0, 0.0, 5, close, ind, params_b).startswith("ema_cross HOLD: indicators")
