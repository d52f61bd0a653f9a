"""The built-in strategies, written against the public contract: their signals bar by bar."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from jiritsu import indicators
from jiritsu.strategy.builtins.donchian_breakout import DonchianBreakout
from jiritsu.strategy.builtins.ema_cross import EmaCross
from jiritsu.strategy.builtins.rsi_reversion import RsiReversion
from jiritsu.strategy.contract import Bars, StrategyOutputError, checked_signals
from tests.strategy.conftest import random_walk as walk


def ema_cross_reference(bars: Bars, fast_p: int, slow_p: int, atr_p: int) -> list[tuple]:
    """The rule as the numba kernel evaluated it bar by bar before strategies were plugins."""
    c = bars.close
    fast, slow = indicators.ema(c, fast_p), indicators.ema(c, slow_p)
    atr = indicators.atr(bars.high, bars.low, c, atr_p)
    out: list[tuple] = [(0, 0.0)]
    for i in range(1, len(c)):
        f0, s0, f1, s1 = fast[i - 1], slow[i - 1], fast[i], slow[i]
        if any(math.isnan(x) for x in (f0, s0, f1, s1)):
            out.append((0, 0.0))
            continue
        side = 1 if f0 <= s0 and f1 > s1 else -1 if f0 >= s0 and f1 < s1 else 0
        if side == 0:
            out.append((0, 0.0))
            continue
        d = side * (c[i] - s1) / atr[i] if atr[i] > 0 else 0.0
        out.append((side, min(1.0, max(0.0, 0.5 + 0.25 * d))))
    return out


@pytest.mark.parametrize(("fast", "slow", "atr"), [(12, 26, 14), (5, 60, 10), (20, 50, 14)])
def test_ema_cross_is_the_former_rule_bar_for_bar(fast: int, slow: int, atr: int) -> None:
    bars = walk(3000)
    params = EmaCross.Params(fast_period=fast, slow_period=slow, atr_period=atr)
    action, conf = checked_signals(EmaCross(), bars, params)
    assert action.dtype == np.int8
    got = list(zip(action.tolist(), conf.tolist(), strict=True))
    assert got == ema_cross_reference(bars, fast, slow, atr)
    assert (action != 0).sum() > 10  # the walk does cross


def test_ema_cross_ties_and_holes_are_the_former_rule() -> None:
    """EMAs that meet exactly and NaN holes in them (fed through the bars' indicator memo): a
    cross needs fast <= slow (equality included) on the bar before, and both EMAs defined."""
    n = 400
    rng = np.random.default_rng(3)
    slow = np.round(100 + rng.normal(0, 1, n), 0)  # whole numbers: many exact ties
    fast = np.round(100 + rng.normal(0, 1, n), 0)
    fast[:20], slow[:50] = np.nan, np.nan  # the warm-up
    fast[200:203], slow[300] = np.nan, np.nan  # holes
    close = 100 + rng.normal(0, 1, n)
    bars = Bars(ts=np.arange(n) * 60_000.0, open=close, high=close + 1, low=close - 1,
                close=close, volume=np.ones(n))  # fmt: skip
    bars.memo(("ema", 5), lambda: fast)
    bars.memo(("ema", 30), lambda: slow)
    action, _ = EmaCross().signals(bars, EmaCross.Params(fast_period=5, slow_period=30))
    want = [0]
    for f0, s0, f1, s1 in zip(fast[:-1], slow[:-1], fast[1:], slow[1:], strict=True):
        if any(math.isnan(x) for x in (f0, s0, f1, s1)):
            want.append(0)
        else:
            want.append(1 if f0 <= s0 and f1 > s1 else -1 if f0 >= s0 and f1 < s1 else 0)
    assert action.tolist() == want
    ties = (fast[:-1] == slow[:-1]) & (np.asarray(want[1:]) != 0)
    assert ties.sum() > 5  # ties really open crosses here
    assert -1 in want
    assert 1 in want


def test_rsi_reversion_zones_and_confidence() -> None:
    bars = walk(2000, seed=9)
    params = RsiReversion.Params(rsi_period=14, rsi_lower=25, rsi_upper=75)
    action, conf = checked_signals(RsiReversion(), bars, params)
    r = indicators.rsi(bars.close, 14)
    for i in range(len(bars)):
        if r[i] < 25:
            assert (action[i], conf[i]) == (1, min(1.0, 0.5 + 0.5 * (25 - r[i]) / 25))
        elif r[i] > 75:
            assert (action[i], conf[i]) == (-1, min(1.0, 0.5 + 0.5 * (r[i] - 75) / 25))
        else:  # inside the zone, its edges and the NaN warm-up
            assert (action[i], conf[i]) == (0, 0.0)
    assert set(action.tolist()) == {-1, 0, 1}


def test_donchian_breakout_needs_a_break_of_the_previous_bars_and_a_trend() -> None:
    n = 80
    close = np.full(n, 100.0)
    close[40:] = 100.0 + np.arange(n - 40) * 2.0  # a steady climb from bar 40
    bars = Bars(
        ts=np.arange(n, dtype=np.float64), open=close, high=close + 0.5, low=close - 0.5,
        close=close, volume=np.ones(n),
    )  # fmt: skip
    params = DonchianBreakout.Params(channel_period=10, adx_period=5, adx_min=25)
    action, conf = checked_signals(DonchianBreakout(), bars, params)
    adx = indicators.adx(bars.high, bars.low, bars.close, 5)[0]
    top = np.array([bars.high[i - 10 : i].max() if i >= 10 else np.nan for i in range(n)])
    expected = (close > top) & (adx >= 25)
    assert (action == 1).tolist() == expected.tolist()
    assert not expected[:41].any()  # the flat start never trends
    assert expected[45:].all()  # the climb does, once ADX has seen it
    assert (action >= 0).all()
    assert ((conf > 0.5) == (action == 1)).all()
    text = DonchianBreakout().explain(bars, params, 60)
    assert text.startswith("donchian_breakout BUY (")
    assert "channel10" in text


def test_explain_names_the_numbers_behind_the_decision() -> None:
    close = np.concatenate([np.linspace(120, 100, 30), np.linspace(100, 130, 15)])
    bars = Bars(
        ts=np.arange(45, dtype=np.float64), open=close, high=close + 0.5, low=close - 0.5,
        close=close, volume=np.ones(45),
    )  # fmt: skip
    params = EmaCross.Params()
    action, conf = checked_signals(EmaCross(), bars, params)
    (i,) = np.flatnonzero(action == 1)
    text = EmaCross().explain(bars, params, int(i))
    assert text.startswith(f"ema_cross BUY ({conf[i]:.2f}): fast crossed above slow; EMA12 ")
    assert "EMA26" in text
    assert "ATR" in text
    assert EmaCross().explain(bars, params, 5).startswith("ema_cross HOLD: indicators")
    rsi_text = RsiReversion().explain(bars, RsiReversion.Params(), 3)
    assert rsi_text.startswith("rsi_reversion HOLD: RSI warming up; RSI14 n/a (zone 30/70)")


def test_params_are_bounded_and_checked_together() -> None:
    with pytest.raises(ValidationError, match="slow_period"):
        EmaCross.Params(fast_period=30, slow_period=20)
    with pytest.raises(ValidationError, match="rsi_upper"):
        RsiReversion.Params(rsi_lower=80, rsi_upper=70)
    with pytest.raises(ValidationError, match="extra"):
        EmaCross.Params(fast=3)
    with pytest.raises(ValidationError):
        DonchianBreakout.Params(channel_period=1)


def test_a_strategy_breaking_the_contract_is_an_error_not_a_trade() -> None:
    class Sloppy(EmaCross):
        name = "sloppy"

        def signals(self, bars, params):  # type: ignore[no-untyped-def]
            action, conf = super().signals(bars, params)
            action[action != 0] = 2
            return action, conf

    with pytest.raises(StrategyOutputError, match="sloppy: bar"):
        checked_signals(Sloppy(), walk(500), EmaCross.Params())


def test_indicators_are_computed_once_per_bars() -> None:
    bars = walk(6000)
    first = bars.ema(20)
    assert bars.ema(20) is first  # memoised
    assert np.array_equal(first, indicators.ema(bars.close, 20), equal_nan=True)
    a1 = checked_signals(EmaCross(), bars, EmaCross.Params())
    assert checked_signals(EmaCross(), bars, EmaCross.Params()) is a1
