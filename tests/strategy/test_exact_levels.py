"""Prices, quantities and fees the kernel computes in floats are the exact decimals the paper
exchange holds, so both simulators see the same touch, the same stop and the same holding."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pytest

from jiritsu.exchange.errors import OrderRejected
from jiritsu.exchange.paper import PaperExchange
from jiritsu.sim.fills import EXIT_SL, round8
from jiritsu.strategy.sizing import floor_to_step
from jiritsu.strategy.split import round_to_tick
from jiritsu.strategy.tpsl import levels_breached, tpsl_levels


def test_a_level_on_the_tick_is_the_float_of_its_decimal() -> None:
    # 75962 ticks of 0.1: the exchange holds Decimal("7596.2"), a bar's low parses as 7596.2
    assert round_to_tick(7596.2, 0.1) == 7596.2
    assert round_to_tick(7596.24, 0.1) == float(Decimal("7596.2"))
    rng = np.random.default_rng(11)
    for tick in (0.1, 0.01, 0.5, 0.0001, 1.0, 5.0):
        for x in rng.uniform(1.0, 70_000.0, 400):
            level = round_to_tick(float(x), tick)
            exact = (Decimal(repr(float(x))) / Decimal(repr(tick))).to_integral_value(
                rounding="ROUND_HALF_UP"
            ) * Decimal(repr(tick))
            assert level == float(exact), (x, tick)


def test_a_quantity_on_the_step_is_the_float_of_its_decimal() -> None:
    assert floor_to_step(1.4683739, 1e-6) == 1.468373
    rng = np.random.default_rng(12)
    for x in rng.uniform(0.0001, 5.0, 400):
        q = floor_to_step(float(x), 1e-6)
        exact = Decimal(repr(float(x))).quantize(Decimal("0.000001"), rounding="ROUND_DOWN")
        assert q == float(exact), x


def test_the_coin_fee_is_rounded_as_the_ledger_rounds_it() -> None:
    """A spot buy's fee in the coin: q8(qty x rate), half-even, as the paper exchange books it
    (0.0001 x 0.00055 = 5.5e-8 -> 6e-8; 0.0003 x 0.00055 = 1.65e-7 -> 1.6e-7)."""
    assert round8(0.0001 * 0.00055) == 6e-8
    assert round8(0.0003 * 0.00055) == 1.6e-7
    assert round8(0.003056 * 0.00055) == 1.68e-6
    rate = Decimal("0.00055")
    for units in range(1, 20_000, 7):
        qty = Decimal(units) / Decimal(1_000_000)
        exact = (qty * rate).quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)
        assert round8(float(qty) * float(rate)) == float(exact), qty


def test_a_stop_at_the_last_price_is_one_rule_in_both() -> None:
    """A short's stop computed to exactly the last price (7500 + 2 x 48.1 = 7596.2): Bybit, and
    so the paper exchange, refuses a stop that is not beyond the last price, and the kernel
    treats it as breached (it closes at market instead of setting it)."""
    tp, sl = tpsl_levels(7500.0, -1, 48.1, 3.0, 2.0, 0.1)
    assert sl == 7596.2
    assert levels_breached(-1, tp, sl, 7596.2) == EXIT_SL
    with pytest.raises(OrderRejected):
        PaperExchange._check_tpsl("Sell", Decimal("7596.2"), None, Decimal(repr(sl)))
    # a tick further and both accept it
    assert levels_breached(-1, tp, sl, 7596.1) != EXIT_SL
    PaperExchange._check_tpsl("Sell", Decimal("7596.1"), None, Decimal(repr(sl)))
