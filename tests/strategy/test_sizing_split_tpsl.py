"""Sizing buckets and caps, split legs, TP/SL levels and exits: hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jiritsu.sim.fills import EXIT_NONE, EXIT_SL, EXIT_TP
from jiritsu.strategy import params as P
from jiritsu.strategy.exits import loss_streak_tripped, max_hold_reached, next_streak
from jiritsu.strategy.sizing import (
    BUCKET_HIGH,
    BUCKET_LOW,
    BUCKET_MEDIUM,
    capital_cap,
    entry_size,
    floor_to_step,
    vol_bucket,
)
from jiritsu.strategy.split import (
    deadline_passed,
    full_mask,
    has_leg,
    leg_due_ms,
    leg_limit_price,
    plan_legs,
    round_to_tick,
    with_leg,
)
from jiritsu.strategy.tpsl import levels_breached, same_level, spot_tpsl_trigger, tpsl_levels

RICH = 1_000_000.0  # an available balance that never caps


# --- sizing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vol", "bucket"),
    [(0.0049, BUCKET_LOW), (0.005, BUCKET_MEDIUM), (0.0149, BUCKET_MEDIUM),
     (0.015, BUCKET_HIGH), (math.nan, BUCKET_HIGH)],
)  # fmt: skip
def test_volatility_buckets_of_subbot_b(vol: float, bucket: int) -> None:
    assert vol_bucket(vol, 0.005, 0.015) == bucket


@pytest.mark.parametrize(
    ("atr", "bucket", "mult", "qty"),
    [
        # B: base_lot 100, multipliers 1.2 / 1.0 / 0.6, step 0.001, price 40000
        (100.0, BUCKET_LOW, 1.2, 0.003),  # 0.25 %: 120 USDT -> 0.003
        (400.0, BUCKET_MEDIUM, 1.0, 0.002),  # 1 %: 100 USDT -> 0.0025 -> 0.002
        (800.0, BUCKET_HIGH, 0.6, 0.001),  # 2 %: 60 USDT -> 0.0015 -> 0.001
    ],
)
def test_entry_size_linear(
    params_b: np.ndarray, atr: float, bucket: int, mult: float, qty: float
) -> None:
    got = entry_size(40000.0, atr, RICH, params_b)
    assert got[:3] == (pytest.approx(qty), bucket, mult)


def test_entry_size_spot_uses_its_own_step_and_thresholds(params_a: np.ndarray) -> None:
    # A: base_lot 50, thresholds 0.004/0.012, multipliers 1.0/0.8/0.5, step 0.000001
    qty, bucket, mult, notional = entry_size(40000.0, 400.0, RICH, params_a)
    assert (bucket, mult, notional) == (BUCKET_MEDIUM, 0.8, pytest.approx(40.0))
    assert qty == pytest.approx(0.001)
    qty, bucket, _, _ = entry_size(40000.0, 100.0, RICH, params_a)  # 0.25 % -> low, 50 USDT
    assert (qty, bucket) == (pytest.approx(0.00125), BUCKET_LOW)


def test_capital_cap_linear_and_spot() -> None:
    assert capital_cap(50.0, 0.0, 1.0, 0.00055, 0.98) == pytest.approx(0.98 * 50 / 1.00055)
    assert capital_cap(50.0, 0.0, 5.0, 0.00055, 0.98) == pytest.approx(0.98 * 50 / 0.20055)
    assert capital_cap(50.0, 1.0, 1.0, 0.00055, 0.98) == pytest.approx(49.0)
    assert capital_cap(-3.0, 0.0, 1.0, 0.00055, 0.98) == 0.0


def test_the_cap_shrinks_an_entry_and_can_leave_nothing(params_b: np.ndarray) -> None:
    # 50 available: cap 48.97 USDT -> 0.001224 BTC -> 0.001
    qty, _, _, notional = entry_size(40000.0, 400.0, 50.0, params_b)
    assert notional == pytest.approx(0.98 * 50 / 1.00055)
    assert qty == pytest.approx(0.001)
    # 30 available: 29.38 USDT -> 0.000734 BTC -> rounds to 0: no entry
    assert entry_size(40000.0, 400.0, 30.0, params_b)[0] == 0.0


def test_risk_sizing_risks_the_fraction_at_the_stop(params_b: np.ndarray) -> None:
    params_b[P.P_SIZING_MODE] = P.SIZING_RISK
    params_b[P.P_RISK_PER_TRADE] = 0.0025
    # stop 1 x ATR 400 = 1 % of 40000; 0.25 % of 4000 = 10 USDT at risk -> 1000 USDT, medium
    # bucket x 1.0 -> 0.025 BTC: at the stop it loses 0.025 x 400 = 10 USDT
    qty, bucket, mult, notional = entry_size(40000.0, 400.0, 4000.0, params_b)
    assert (bucket, mult, notional) == (BUCKET_MEDIUM, 1.0, pytest.approx(1000.0))
    assert qty == pytest.approx(0.025)
    # the volatility multiplier applies on top: ATR 800 (2 %) -> 500 USDT x 0.6 = 300
    assert entry_size(40000.0, 800.0, 4000.0, params_b)[3] == pytest.approx(300.0)
    # the whole risk at 1 % would be 4000 USDT: capped at max_capital_pct of the available
    params_b[P.P_RISK_PER_TRADE] = 0.01
    assert entry_size(40000.0, 400.0, 4000.0, params_b)[3] == pytest.approx(0.98 * 4000 / 1.00055)
    params_b[P.P_CAP_PCT] = 0.5
    assert entry_size(40000.0, 400.0, 4000.0, params_b)[3] == pytest.approx(0.5 * 4000 / 1.00055)


def test_risk_sizing_grows_with_the_account_and_a_lot_does_not(params_a: np.ndarray) -> None:
    lot = [entry_size(40000.0, 400.0, cash, params_a)[3] for cash in (3000.0, 6000.0)]
    assert lot[0] == lot[1] == pytest.approx(40.0)
    params_a[P.P_SIZING_MODE] = P.SIZING_RISK
    # spot A: stop 2 x ATR = 2 %; 1 % of 3000 = 30 -> 1500 x 0.8 (medium) = 1200 USDT
    risk = [entry_size(40000.0, 400.0, cash, params_a)[3] for cash in (3000.0, 6000.0)]
    assert risk == [pytest.approx(1200.0), pytest.approx(2400.0)]


def test_the_shipped_bots_size_by_risk(settings) -> None:  # type: ignore[no-untyped-def]
    for bot in settings.sub_bots:
        p = P.build_params(bot, settings)
        assert p[P.P_SIZING_MODE] == P.SIZING_RISK
        assert 0.0 < p[P.P_RISK_PER_TRADE] <= 0.01
        assert p[P.P_CAP_PCT] == 0.98


def test_sizing_switched_off_trades_base_lot(params_b: np.ndarray) -> None:
    params_b[P.P_SIZING] = 0.0
    assert entry_size(40000.0, 800.0, RICH, params_b)[:3] == (pytest.approx(0.0025 - 0.0005),
                                                              -1, 1.0)  # fmt: skip


def test_below_the_instrument_minimums_is_no_entry(params_b: np.ndarray) -> None:
    params_b[P.P_BASE_LOT] = 30.0  # 0.00075 BTC < min_qty 0.001
    assert entry_size(40000.0, 400.0, RICH, params_b)[0] == 0.0


def test_floor_to_step_forgives_float_noise_only() -> None:
    assert floor_to_step(0.3, 0.1) == pytest.approx(0.3)  # 0.3 / 0.1 = 2.9999999999999996
    assert floor_to_step(0.0029999, 0.001) == pytest.approx(0.002)
    assert floor_to_step(-1.0, 0.001) == 0.0


# --- split legs ------------------------------------------------------------------------------


def test_plan_legs_equal_legs_and_fewer_when_too_small() -> None:
    assert plan_legs(0.003, 40000.0, 3, 0.001, 0.001, 5.0) == (3, pytest.approx(0.001))
    # 0.002 in 3 legs would be 0.000666 (below the 0.001 step/minimum): 2 legs of 0.001
    assert plan_legs(0.002, 40000.0, 3, 0.001, 0.001, 5.0) == (2, pytest.approx(0.001))
    assert plan_legs(0.0005, 40000.0, 3, 0.001, 0.001, 5.0) == (0, 0.0)
    # spot: 0.0003 BTC (12 USDT) in 3 legs = 4 USDT each < min_notional 5 -> 2 legs of 6 USDT
    assert plan_legs(0.0003, 40000.0, 3, 0.000001, 0.000001, 5.0) == (2, pytest.approx(0.00015))
    # a split that does not divide evenly leaves the rest out: 0.007 in 3 -> 3 x 0.002
    assert plan_legs(0.007, 40000.0, 3, 0.001, 0.001, 5.0) == (3, pytest.approx(0.002))


def test_time_legs_due_times() -> None:
    assert [leg_due_ms(1_000, i, 60_000) for i in range(3)] == [1_000, 61_000, 121_000]


def test_price_legs_are_spaced_from_the_reference_and_rounded_to_the_tick() -> None:
    assert leg_limit_price(40000.0, 1, 1, 0.003, 0.1) == pytest.approx(39880.0)
    assert leg_limit_price(40000.0, 1, 2, 0.003, 0.1) == pytest.approx(39760.0)
    assert leg_limit_price(40000.0, -1, 1, 0.003, 0.1) == pytest.approx(40120.0)
    # 31789.62 * 0.997 = 31694.25114 -> 31694.3 (nearest tick)
    assert leg_limit_price(31789.62, 1, 1, 0.003, 0.1) == pytest.approx(31694.3)
    assert round_to_tick(100.05, 0.1) == pytest.approx(100.1)  # halves up, as round_price


def test_deadline_cancels_before_any_bar_that_would_close_after_it() -> None:
    # deadline 90 s after t0: the bar at 60 s closes at 120 s > 90 s -> ends at the 60 s step
    assert not deadline_passed(0.0, 90_000.0, 60_000.0)
    assert deadline_passed(60_000.0, 90_000.0, 60_000.0)
    # deadline 120 s: the bar at 60 s closes exactly at it and may still fill
    assert not deadline_passed(60_000.0, 120_000.0, 60_000.0)
    assert deadline_passed(120_000.0, 120_000.0, 60_000.0)
    assert not deadline_passed(10**15, 0.0, 60_000.0)  # no deadline


def test_leg_masks() -> None:
    assert full_mask(3) == 7.0
    mask = with_leg(with_leg(0.0, 0), 2)
    assert mask == 5.0
    assert [has_leg(mask, i) for i in range(3)] == [True, False, True]


# --- TP/SL -----------------------------------------------------------------------------------


def test_levels_long_short_and_rounding() -> None:
    assert tpsl_levels(40000.0, 1, 100.0, 2.0, 1.0, 0.1) == (pytest.approx(40200.0),
                                                             pytest.approx(39900.0))  # fmt: skip
    assert tpsl_levels(40000.0, -1, 100.0, 2.0, 1.0, 0.1) == (pytest.approx(39800.0),
                                                              pytest.approx(40100.0))  # fmt: skip
    # 31694.25 + 1.5 * 123.456 = 31879.434 -> 31879.4; 31694.25 - 0.75 * 123.456 = 31601.658
    tp, sl = tpsl_levels(31694.25, 1, 123.456, 1.5, 0.75, 0.1)
    assert (tp, sl) == (pytest.approx(31879.4), pytest.approx(31601.7))
    assert tpsl_levels(40000.0, 1, math.nan, 2.0, 1.0, 0.1) == (0.0, 0.0)
    assert tpsl_levels(100.0, 1, 60.0, 1.0, 2.0, 0.1)[1] == 0.0  # a stop below zero is none


def test_levels_breached_by_the_last_price() -> None:
    assert levels_breached(1, 40200.0, 39900.0, 39900.0) == EXIT_SL
    assert levels_breached(1, 40200.0, 39900.0, 40200.0) == EXIT_TP
    assert levels_breached(1, 40200.0, 39900.0, 40000.0) == EXIT_NONE
    assert levels_breached(-1, 39800.0, 40100.0, 40100.0) == EXIT_SL
    assert levels_breached(-1, 39800.0, 40100.0, 39700.0) == EXIT_TP


def test_spot_trigger_is_the_fill_models_touch_rule_stop_first() -> None:
    assert spot_tpsl_trigger(40800.0, 39600.0, 40000.0, 40900.0, 39500.0) == EXIT_SL
    assert spot_tpsl_trigger(40800.0, 39600.0, 40000.0, 40900.0, 39700.0) == EXIT_TP
    assert spot_tpsl_trigger(40800.0, 39600.0, 39500.0, 39550.0, 39400.0) == EXIT_SL
    assert spot_tpsl_trigger(40800.0, 39600.0, 40000.0, 40799.9, 39600.1) == EXIT_NONE


def test_same_level_within_half_a_tick() -> None:
    assert same_level(100.0, 100.04, 0.1)
    assert not same_level(100.0, 100.06, 0.1)
    assert same_level(0.0, 0.0, 0.1)
    assert not same_level(0.0, 100.0, 0.1)


# --- exits -----------------------------------------------------------------------------------


def test_max_hold_and_loss_streak() -> None:
    assert max_hold_reached(1_000.0, 1_000.0 + 240 * 60_000, 240 * 60_000)
    assert not max_hold_reached(1_000.0, 1_000.0 + 240 * 60_000 - 1, 240 * 60_000)
    assert not max_hold_reached(1_000.0, 10**12, 0.0)  # no limit
    assert not max_hold_reached(0.0, 10**12, 60_000.0)  # flat
    streak = 0.0
    for pnl in (-1.0, -2.0, 0.0, -1.0, -1.0, -1.0):
        streak = next_streak(streak, pnl)
    assert streak == 3.0
    assert loss_streak_tripped(5.0, 5.0)
    assert not loss_streak_tripped(4.0, 5.0)
