"""manage()/decide(): the trading logic as state-in, orders-out, on hand-built states."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.strategy import kernel as K
from jiritsu.strategy import params as P
from jiritsu.strategy.exits import (
    EXIT_REASON_MAX_HOLD,
    EXIT_REASON_SIGNAL,
    EXIT_REASON_SL,
    EXIT_REASON_TP,
)

MIN = 60_000
T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, a bar close
RICH = 1_000_000.0


def decide(params, state, action=1, conf=0.9, ref=40000.0, atr=100.0, t=T0, halted=False):  # type: ignore[no-untyped-def]
    out = K.new_out()
    K.decide(float(t), float(t), action, conf, ref, atr, RICH, halted, params, state, out)
    return out


def manage(params, state, t, *, bar=None, last=40000.0, halted=False):  # type: ignore[no-untyped-def]
    out = K.new_out()
    if bar is None:
        K.manage(float(t), -1.0, 0.0, 0.0, 0.0, last, halted, params, state, out)
    else:
        ts, o, h, low = bar
        K.manage(float(t), float(ts), o, h, low, last, halted, params, state, out)
    return out


def long_position(state: np.ndarray, qty: float, avg: float, opened: int, atr: float) -> None:
    state[K.S_SIDE] = 1.0
    state[K.S_QTY] = qty
    state[K.S_AVG] = avg
    state[K.S_OPENED] = opened
    state[K.S_PLAN_ATR] = atr


def test_a_buy_starts_a_time_plan_with_provisional_levels(params_b: np.ndarray) -> None:
    state = K.new_state()
    out = decide(params_b, state)  # ATR 100 at 40000 = 0.25 %: low bucket, 120 USDT, 0.003
    assert out[K.O_ENTER] == 1
    assert (out[K.O_ENTER_N], out[K.O_ENTER_LEG_QTY]) == (3, pytest.approx(0.001))
    assert out[K.O_ENTER_METHOD] == P.SPLIT_TIME
    assert (out[K.O_ENTER_BUCKET], out[K.O_ENTER_MULT]) == (0, 1.2)
    assert (out[K.O_ENTER_TP], out[K.O_ENTER_SL]) == (
        pytest.approx(40200.0),
        pytest.approx(39900.0),
    )
    assert out[K.O_DEADLINE] == T0 + 600_000
    assert state[K.S_PLAN] == 1
    assert state[K.S_PLAN_SENT] == 1


def test_time_legs_go_out_when_due_and_the_plan_completes(params_b: np.ndarray) -> None:
    state = K.new_state()
    decide(params_b, state)
    assert manage(params_b, state, T0 + 30_000)[K.O_SEND_LAST] == 0  # nothing due yet
    out = manage(params_b, state, T0 + MIN)
    assert (out[K.O_SEND_FIRST], out[K.O_SEND_LAST]) == (1, 2)
    # a late step sends everything due at once
    state2 = K.new_state()
    decide(params_b, state2)
    out = manage(params_b, state2, T0 + 3 * MIN)
    assert (out[K.O_SEND_FIRST], out[K.O_SEND_LAST]) == (1, 3)
    # every leg sent and final: the plan ends without cancelling anything
    state2[K.S_PLAN_DONE] = 7.0
    out = manage(params_b, state2, T0 + 4 * MIN)
    assert out[K.O_PLAN_END] == 1
    assert out[K.O_CANCEL] == 0
    assert state2[K.S_PLAN] == 0


def test_the_deadline_cancels_what_is_left(params_b: np.ndarray) -> None:
    state = K.new_state()
    decide(params_b, state)
    state[K.S_PLAN_DONE] = 1.0  # leg 0 filled, legs 1 and 2 never sent
    out = manage(params_b, state, T0 + 9 * MIN)  # the 9-minute bar closes at the deadline
    assert out[K.O_PLAN_END] == 0
    state[K.S_PLAN_DONE] = 1.0
    out = manage(params_b, state, T0 + 10 * MIN)
    assert out[K.O_PLAN_END] == 1
    assert out[K.O_CANCEL] == 1


def test_a_price_plan_sends_every_leg_at_once(params_c: np.ndarray) -> None:
    state = K.new_state()
    out = decide(params_c, state, action=-1, ref=40000.0, atr=100.0)
    # C: 150 x 1.5 (low) = 225 USDT = 0.005625 -> 0.005; 2 legs of 0.002 (0.0025 floored)
    assert (out[K.O_ENTER], out[K.O_ENTER_N]) == (-1, 2)
    assert out[K.O_ENTER_LEG_QTY] == pytest.approx(0.002)
    assert out[K.O_ENTER_METHOD] == P.SPLIT_PRICE
    assert state[K.S_PLAN_SENT] == 3.0
    assert out[K.O_DEADLINE] == T0 + 300_000


def test_levels_follow_the_average_and_a_breach_closes(params_b: np.ndarray) -> None:
    state = K.new_state()
    long_position(state, 0.002, 40100.0, T0, 100.0)
    state[K.S_TP], state[K.S_SL] = 40200.0, 39900.0  # the provisional ones of leg 0
    out = manage(params_b, state, T0 + 2 * MIN, last=40150.0)
    assert out[K.O_SET_TPSL] == 1
    assert (out[K.O_TP], out[K.O_SL]) == (pytest.approx(40300.0), pytest.approx(40000.0))
    assert manage(params_b, state, T0 + 3 * MIN, last=40150.0)[K.O_SET_TPSL] == 0  # unchanged
    state[K.S_AVG] = 40150.0  # another leg: new levels 40350 / 40050, but the price is 40040
    out = manage(params_b, state, T0 + 4 * MIN, last=40040.0)
    assert out[K.O_SET_TPSL] == 0
    assert (out[K.O_EXIT_QTY], out[K.O_EXIT_SIDE]) == (pytest.approx(0.002), -1)
    assert out[K.O_EXIT_REASON] == EXIT_REASON_SL
    assert state[K.S_EXIT_PENDING] == 1


def test_tpsl_switched_off_sets_nothing(params_b: np.ndarray) -> None:
    params_b[P.P_TPSL] = 0.0
    state = K.new_state()
    out = decide(params_b, state)
    assert (out[K.O_ENTER_TP], out[K.O_ENTER_SL]) == (0.0, 0.0)
    long_position(state, 0.003, 40000.0, T0, 100.0)
    assert manage(params_b, state, T0 + MIN)[K.O_SET_TPSL] == 0


def test_split_switched_off_is_one_market_leg_without_deadline(params_b: np.ndarray) -> None:
    params_b[P.P_SPLIT] = 0.0
    state = K.new_state()
    out = decide(params_b, state)
    assert (out[K.O_ENTER_N], out[K.O_ENTER_LEG_QTY]) == (1, pytest.approx(0.003))
    assert out[K.O_DEADLINE] == 0


def test_opposite_signal_exits_and_flips_only_where_shorts_are_allowed(
    params_b: np.ndarray, params_c: np.ndarray
) -> None:
    state = K.new_state()
    long_position(state, 0.003, 40000.0, T0, 100.0)
    out = decide(params_b, state, action=-1)  # B: long only
    assert out[K.O_EXIT_QTY] == pytest.approx(0.003)
    assert out[K.O_EXIT_REASON] == EXIT_REASON_SIGNAL
    assert out[K.O_ENTER] == 0
    assert out[K.O_ACTION] == -1
    state = K.new_state()
    long_position(state, 0.003, 40000.0, T0, 100.0)
    out = decide(params_c, state, action=-1)  # C: shorts allowed -> exit and open short
    assert out[K.O_EXIT_QTY] == pytest.approx(0.003)
    assert out[K.O_ENTER] == -1


def test_the_risk_gate(params_a: np.ndarray, params_b: np.ndarray) -> None:
    state = K.new_state()
    assert K.allowed_mask(state, params_a, False) == K.ALLOW_BUY  # spot flat: no SELL
    assert decide(params_a, state, action=-1)[K.O_IGNORED] == K.IGN_NOT_ALLOWED
    assert decide(params_b, state, conf=0.59)[K.O_IGNORED] == K.IGN_LOW_CONFIDENCE
    assert decide(params_b, state, halted=True)[K.O_IGNORED] == K.IGN_HALTED
    assert K.allowed_mask(state, params_b, True) == 0
    long_position(state, 0.003, 40000.0, T0, 100.0)
    assert K.allowed_mask(state, params_b, False) == K.ALLOW_SELL  # long: BUY does nothing
    state[K.S_EXIT_PENDING] = 1.0
    assert K.allowed_mask(state, params_b, False) == 0
    assert decide(params_b, state, action=-1)[K.O_IGNORED] == K.IGN_EXITING
    # warm-up: no ATR, no size
    assert decide(params_b, K.new_state(), atr=float("nan"))[K.O_IGNORED] == K.IGN_NO_SIZE


def test_spot_levels_are_checked_on_the_bar_that_closed(params_a: np.ndarray) -> None:
    # A: tp 3 x ATR, sl 2 x ATR; avg 40000, ATR 100 -> 40300 / 39800
    state = K.new_state()
    long_position(state, 0.001, 40000.0, T0, 100.0)
    out = manage(params_a, state, T0 + 2 * MIN, bar=(T0 + MIN, 40000.0, 40100.0, 39850.0))
    assert out[K.O_EXIT_QTY] == 0
    out = manage(params_a, state, T0 + 3 * MIN, bar=(T0 + 2 * MIN, 40000.0, 40350.0, 39900.0))
    assert (out[K.O_EXIT_QTY], out[K.O_EXIT_REASON]) == (pytest.approx(0.001), EXIT_REASON_TP)
    state = K.new_state()
    long_position(state, 0.001, 40000.0, T0, 100.0)
    out = manage(params_a, state, T0 + 3 * MIN, bar=(T0 + 2 * MIN, 40000.0, 40350.0, 39700.0))
    assert out[K.O_EXIT_REASON] == EXIT_REASON_SL  # both touched: the stop wins
    # a bar that opened before the position did is not checked
    state = K.new_state()
    long_position(state, 0.001, 40000.0, T0 + MIN, 100.0)
    out = manage(params_a, state, T0 + MIN, bar=(T0, 40000.0, 40350.0, 39700.0))
    assert out[K.O_EXIT_QTY] == 0


def test_spot_dust_is_flat(params_a: np.ndarray) -> None:
    state = K.new_state()
    long_position(state, 0.0000004, 40000.0, T0, 100.0)
    assert K.position_qty(state, params_a) == 0.0
    assert K.allowed_mask(state, params_a, False) == K.ALLOW_BUY


def test_max_holding_time(params_c: np.ndarray) -> None:
    state = K.new_state()
    long_position(state, 0.004, 40000.0, T0, 100.0)
    state[K.S_TP], state[K.S_SL] = 40150.0, 39925.0
    assert manage(params_c, state, T0 + 239 * MIN)[K.O_EXIT_QTY] == 0
    out = manage(params_c, state, T0 + 240 * MIN)
    assert (out[K.O_EXIT_QTY], out[K.O_EXIT_REASON]) == (pytest.approx(0.004), EXIT_REASON_MAX_HOLD)


def test_a_halt_cancels_the_rest_of_a_plan_but_keeps_protecting(params_b: np.ndarray) -> None:
    state = K.new_state()
    decide(params_b, state)
    out = manage(params_b, state, T0 + MIN, halted=True)
    assert out[K.O_PLAN_END] == 1
    assert out[K.O_CANCEL] == 1
    assert out[K.O_SEND_LAST] == 0
    long_position(state, 0.001, 40000.0, T0, 100.0)
    out = manage(params_b, state, T0 + 2 * MIN, halted=True, last=39850.0)
    assert out[K.O_EXIT_REASON] == EXIT_REASON_SL  # levels 40200/39900 already breached


def test_a_plan_whose_position_was_closed_stops_building(params_b: np.ndarray) -> None:
    state = K.new_state()
    decide(params_b, state)
    state[K.S_PLAN_FILLED] = 1.0  # leg 0 filled, then the exchange's stop closed it
    state[K.S_PLAN_DONE] = 1.0
    out = manage(params_b, state, T0 + MIN)
    assert out[K.O_PLAN_END] == 1
    assert out[K.O_SEND_LAST] == 0
