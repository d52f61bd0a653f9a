"""The shared fill model, on hand-made bars: every expected value is worked out in a comment."""

from __future__ import annotations

import math

import numpy as np
import pytest

from jiritsu.sim import fills
from jiritsu.sim.fills import (
    EXIT_NONE,
    EXIT_SL,
    EXIT_TP,
    atr_fraction,
    fee,
    limit_fill,
    market_fill_price,
    slippage_fraction,
    tp_sl_exit,
    tp_sl_fill,
)

NAN = math.nan
BUY, SELL = 1, -1
LONG, SHORT = 1, -1


# --- slippage and market orders -----------------------------------------------------------


def test_slippage_is_fixed_bps_plus_factor_times_volatility() -> None:
    assert slippage_fraction(2.0) == pytest.approx(0.0002)
    # 2 bps + 0.1 x 1 % ATR = 0.0002 + 0.001
    assert slippage_fraction(2.0, vol=0.01, vol_factor=0.1) == pytest.approx(0.0012)


def test_slippage_never_improves_a_fill() -> None:
    assert slippage_fraction(-5.0) == 0.0
    assert slippage_fraction(0.0, vol=-0.01, vol_factor=1.0) == 0.0
    assert slippage_fraction(2.0, vol=NAN, vol_factor=1.0) == pytest.approx(0.0002)


def test_market_buy_pays_up_and_sell_receives_less() -> None:
    assert market_fill_price(100.0, BUY, 2.0) == pytest.approx(100.02)  # 100 x 1.0002
    assert market_fill_price(100.0, SELL, 2.0) == pytest.approx(99.98)  # 100 x 0.9998
    assert market_fill_price(100.0, BUY, 0.0) == 100.0
    # 2 bps + 0.5 x 2 % ATR = 0.0102 -> 102.0 x 1.0102
    assert market_fill_price(102.0, BUY, 2.0, 0.02, 0.5) == pytest.approx(103.0404)


# --- limit orders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "limit", "bar", "expected"),
    [
        # bar = (open, high, low)
        (BUY, 99.0, (100.0, 101.0, 99.0), (False, 0.0)),  # low only touches: no fill
        (BUY, 99.0, (100.0, 101.0, 98.9), (True, 99.0)),  # traded through: at the limit
        (BUY, 99.0, (99.0, 101.0, 98.0), (True, 99.0)),  # opened AT the limit: the limit
        (BUY, 99.0, (97.0, 98.0, 96.0), (True, 97.0)),  # gapped below: at the better open
        (SELL, 102.0, (101.0, 102.0, 100.0), (False, 0.0)),  # high only touches
        (SELL, 102.0, (101.0, 102.5, 100.0), (True, 102.0)),
        (SELL, 102.0, (104.0, 105.0, 103.0), (True, 104.0)),  # gapped above: at the open
    ],
)
def test_limit_fill_needs_the_bar_to_trade_through(
    side: int, limit: float, bar: tuple[float, float, float], expected: tuple[bool, float]
) -> None:
    assert limit_fill(side, limit, *bar) == expected


# --- take profit and stop loss ------------------------------------------------------------


@pytest.mark.parametrize(
    ("pos", "tp", "sl", "bar", "expected"),
    [
        # long, TP 103, SL 98; bar = (open, high, low)
        (LONG, 103.0, 98.0, (100.0, 102.0, 99.0), (EXIT_NONE, 0.0)),
        (LONG, 103.0, 98.0, (100.0, 103.0, 99.0), (EXIT_TP, 103.0)),  # a touch triggers
        (LONG, 103.0, 98.0, (100.0, 101.0, 98.0), (EXIT_SL, 98.0)),
        (LONG, 103.0, 98.0, (100.0, 104.0, 97.0), (EXIT_SL, 98.0)),  # both: the stop first
        (LONG, 103.0, 98.0, (96.0, 99.0, 95.0), (EXIT_SL, 96.0)),  # gap through the stop
        (LONG, 103.0, 98.0, (105.0, 106.0, 97.0), (EXIT_TP, 105.0)),  # gap through the TP
        # short, TP 97, SL 102 (mirrored)
        (SHORT, 97.0, 102.0, (100.0, 101.0, 98.0), (EXIT_NONE, 0.0)),
        (SHORT, 97.0, 102.0, (100.0, 101.0, 96.5), (EXIT_TP, 97.0)),
        (SHORT, 97.0, 102.0, (100.0, 102.5, 99.0), (EXIT_SL, 102.0)),
        (SHORT, 97.0, 102.0, (100.0, 103.0, 96.0), (EXIT_SL, 102.0)),
        (SHORT, 97.0, 102.0, (103.0, 104.0, 99.0), (EXIT_SL, 103.0)),
        (SHORT, 97.0, 102.0, (95.0, 99.0, 94.0), (EXIT_TP, 95.0)),
        # 0 and NaN mean "not set"
        (LONG, 0.0, 98.0, (100.0, 200.0, 99.0), (EXIT_NONE, 0.0)),
        (LONG, NAN, 98.0, (100.0, 200.0, 97.0), (EXIT_SL, 98.0)),
        (LONG, 103.0, NAN, (100.0, 101.0, 1.0), (EXIT_NONE, 0.0)),
        (SHORT, 97.0, 0.0, (100.0, 500.0, 99.0), (EXIT_NONE, 0.0)),
        (LONG, NAN, NAN, (100.0, 200.0, 1.0), (EXIT_NONE, 0.0)),
        (0, 103.0, 98.0, (100.0, 200.0, 1.0), (EXIT_NONE, 0.0)),  # no position
    ],
)
def test_tp_sl_exit(
    pos: int, tp: float, sl: float, bar: tuple[float, float, float], expected: tuple[int, float]
) -> None:
    assert tp_sl_exit(pos, tp, sl, *bar) == expected


def test_tp_sl_fill_adds_the_exit_market_orders_slippage() -> None:
    # long stopped at 98 sells: 98 x (1 - 0.0002) = 97.9804
    code, price = tp_sl_fill(LONG, 103.0, 98.0, 100.0, 101.0, 97.0, 2.0)
    assert code == EXIT_SL
    assert price == pytest.approx(97.9804)
    # short's TP at 97 buys: 97 x 1.0002 = 97.0194
    code, price = tp_sl_fill(SHORT, 97.0, 102.0, 100.0, 101.0, 96.0, 2.0)
    assert code == EXIT_TP
    assert price == pytest.approx(97.0194)
    assert tp_sl_fill(LONG, 103.0, 98.0, 100.0, 101.0, 99.0, 2.0) == (EXIT_NONE, 0.0)


# --- fees and volatility ------------------------------------------------------------------


def test_fee_is_notional_times_rate() -> None:
    assert fee(100.02, 0.00055) == pytest.approx(0.055011)
    assert fee(-100.0, 0.0002) == pytest.approx(0.02)  # the sign of the notional is irrelevant


def test_atr_fraction_is_mean_true_range_over_last_close() -> None:
    high = np.array([101.0, 103.0, 102.0])
    low = np.array([99.0, 100.0, 97.0])
    close = np.array([100.0, 102.0, 100.0])
    # TR1 = max(103-100, |103-100|, |100-100|) = 3; TR2 = max(102-97, |102-102|, |97-102|) = 5
    # ATR = 4, last close 100 -> 0.04
    assert atr_fraction(high, low, close) == pytest.approx(0.04)
    # a gap counts: TR = max(1, |111-100|, |110-100|) = 11 -> 11 / 110.5
    assert atr_fraction(
        np.array([101.0, 111.0]), np.array([99.0, 110.0]), np.array([100.0, 110.5])
    ) == pytest.approx(11 / 110.5)
    assert atr_fraction(np.array([1.0]), np.array([1.0]), np.array([1.0])) == 0.0


def test_exit_codes_are_distinct_small_ints() -> None:
    """The backtester stores these in int arrays."""
    assert (EXIT_NONE, EXIT_TP, EXIT_SL) == (0, 1, 2)
    assert fills.VOL_WINDOW == 14


# --- the compiled twins -----------------------------------------------------------------------

CASES: list[tuple[str, tuple[float | int, ...]]] = [
    ("slippage_fraction", (2.0, 0.01, 0.1)),
    ("slippage_fraction", (2.0, NAN, 1.0)),
    ("market_fill_price", (102.0, BUY, 2.0, 0.02, 0.5)),
    ("market_fill_price", (100.0, SELL, 2.0, 0.0, 0.0)),
    ("limit_fill", (BUY, 99.0, 97.0, 98.0, 96.0)),
    ("limit_fill", (SELL, 102.0, 101.0, 102.0, 100.0)),
    ("tp_sl_exit", (LONG, 103.0, 98.0, 100.0, 104.0, 97.0)),
    ("tp_sl_exit", (SHORT, 97.0, 102.0, 103.0, 104.0, 99.0)),
    ("tp_sl_exit", (LONG, NAN, 0.0, 100.0, 104.0, 97.0)),
    ("tp_sl_fill", (LONG, 103.0, 98.0, 100.0, 101.0, 97.0, 2.0, 0.01, 0.1)),
    ("tp_sl_fill", (SHORT, 97.0, 102.0, 100.0, 101.0, 99.0, 2.0, 0.0, 0.0)),
    ("fee", (100.02, 0.00055)),
]


def test_numba_compiled_fill_model_matches_the_python_one_exactly() -> None:
    pytest.importorskip("numba")
    jit = fills.compiled()
    for name, args in CASES:
        assert getattr(jit, name)(*args) == getattr(fills, name)(*args), (name, args)
    high, low, close = (
        np.array([101.0, 103, 102]),
        np.array([99.0, 100, 97]),
        np.array([100.0, 102, 100]),
    )
    assert jit.atr_fraction(high, low, close) == atr_fraction(high, low, close)
