"""One sub-bot step on the paper exchange with hand-made candles: the decision, its record, its
orders, split legs by time and by price, TP/SL, and idempotency within a bar."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jiritsu.exchange.ids import client_order_id
from jiritsu.sim.fills import market_fill_price
from jiritsu.strategy.split import round_to_tick
from tests.engine.conftest import MIN, T0, frame, only_bot

# 30 falling minutes (RSI 0: an oversold BUY at full confidence), then a quiet market.
# Each falling bar: open 40000 - i, close one lower, high/low 20 beyond: true range 41.
FALL = [(40000.0 - i, 40020.0 - i, 39979.0 - i, 39999.0 - i) for i in range(30)]
QUIET = [(39970.0, 39980.0, 39960.0, 39970.0)] * 30
DECIDE = T0 + 30 * MIN  # the close of bar 29
BAR29 = T0 + 29 * MIN
RSI_BOT = {
    "timeframe": "1",
    "strategy_params__rule": "rsi_reversion",
    "split_entry__enabled": "true",
    "split_entry__count": "3",
    "split_entry__method": "time",
    "split_entry__interval_seconds": "60",
    "split_entry__timeout_seconds": "600",
}


def paper_b(paper_factory: Any, **overrides: str) -> Any:
    env = only_bot("SubBot-B", **{**RSI_BOT, **overrides})
    return paper_factory(frame(FALL + QUIET), DECIDE, env)


def test_a_decision_is_recorded_and_its_first_leg_sent_once_per_bar(paper_factory: Any) -> None:
    paper = paper_b(paper_factory)
    runner = paper.runner("SubBot-B")
    report = runner.step(DECIDE, halted=False, decide=True)
    assert (report.decided, report.action, report.acted) == (True, "BUY", True)
    # the same bar again, by the same process and by a new one (a timer firing twice)
    runner.step(DECIDE, halted=False, decide=True, fresh=True)
    paper.runner("SubBot-B").step(DECIDE + 5_000, halted=False, decide=True, fresh=True)
    orders = paper.rows("select client_order_id, leg_index, plan_id, side, qty, reason from orders")
    assert len(orders) == 1
    cid, leg, plan_id, side, qty, reason = orders[0]
    assert cid == client_order_id("SubBot-B", f"e{BAR29}", 0)
    assert (leg, plan_id, side, Decimal(qty)) == (0, f"SubBot-B@{BAR29}", "Buy", Decimal("0.001"))
    assert reason.startswith("rsi_reversion BUY (1.00): oversold; RSI14 0")
    assert len(paper.rows("select id from paper_orders")) == 1
    (decision,) = paper.rows("select action, outcome, confidence, provider, input_summary "
                             "from decisions")  # fmt: skip
    assert decision[:4] == ("BUY", "ok", 1.0, "rules")
    assert '"plan_id": "SubBot-B@' in decision[4]
    assert '"bucket": "low"' in decision[4]


def test_time_split_legs_then_tp_sl_from_the_recomputed_average(paper_factory: Any) -> None:
    paper = paper_b(paper_factory)
    runner = paper.runner("SubBot-B")
    for k in range(5):
        paper.at(DECIDE + k * MIN)
        runner.step(DECIDE + k * MIN, halted=False, decide=True)
    legs = paper.rows("select accepted_ms, qty, status, avg_price from paper_orders order by id")
    assert [row[0] for row in legs] == [DECIDE, DECIDE + MIN, DECIDE + 2 * MIN]
    assert all(row[2] == "filled" for row in legs)
    # each leg fills at the open of the bar starting at its send time, plus 2 bps
    fills = [market_fill_price(39970.0, 1, 2.0) for _ in range(3)]
    assert [float(row[3]) for row in legs] == pytest.approx(fills)
    avg = sum(fills) / 3
    (pos,) = paper.rows("select size, avg_price, take_profit, stop_loss from paper_positions")
    assert Decimal(pos[0]) == Decimal("0.003")
    assert float(pos[1]) == pytest.approx(avg)
    # ATR 41 of bar 29 (every true range is 41): TP avg + 2 x 41, SL avg - 1 x 41
    assert float(pos[2]) == pytest.approx(round_to_tick(avg + 82, 0.1))
    assert float(pos[3]) == pytest.approx(round_to_tick(avg - 41, 0.1))
    trades = paper.rows("select entry_reason, position_effect from trades")
    assert len(trades) == 3
    assert all(t[0].startswith("rsi_reversion BUY") and t[1] == "open" for t in trades)
    rows = paper.rows("select leg_index, status from orders order by leg_index")
    assert rows == [(0, "filled"), (1, "filled"), (2, "filled")]


def test_price_split_limit_legs_and_the_timeout(paper_factory: Any) -> None:
    # legs below the reference price 39970: 0.2 % and 0.4 % lower; the quiet market never gets
    # there, so the plan times out after 3 minutes with only leg 0 filled
    paper = paper_b(
        paper_factory,
        split_entry__method="price",
        split_entry__price_step_pct="0.002",
        split_entry__timeout_seconds="180",
    )
    runner = paper.runner("SubBot-B")
    for k in range(5):
        paper.at(DECIDE + k * MIN)
        runner.step(DECIDE + k * MIN, halted=False, decide=True)
    legs = paper.rows("select order_type, price, status from paper_orders order by id")
    assert [(row[0], row[2]) for row in legs] == [
        ("Market", "filled"), ("Limit", "cancelled"), ("Limit", "cancelled"),
    ]  # fmt: skip
    assert [float(row[1]) for row in legs[1:]] == pytest.approx(
        [round_to_tick(39970 * 0.998, 0.1), round_to_tick(39970 * 0.996, 0.1)]
    )
    cancelled = paper.rows("select accepted_ms, updated_at from paper_orders where status = "
                           "'cancelled'")  # fmt: skip
    assert len(cancelled) == 2
    rows = paper.rows("select leg_index, status from orders order by leg_index")
    assert rows == [(0, "filled"), (1, "cancelled"), (2, "cancelled")]


def test_a_limit_leg_fills_when_a_bar_trades_through(paper_factory: Any) -> None:
    dip = [(39970.0, 39975.0, 39880.0, 39950.0)]  # low 39880 < leg 1 at 39890.1
    # a stop 3 ATRs away (39847), below the dip: the dip fills leg 1 and stops nothing
    env = only_bot("SubBot-B", **{**RSI_BOT, "split_entry__method": "price",
                                  "split_entry__price_step_pct": "0.002",
                                  "strategy_params__sl_ratio": "3"})  # fmt: skip
    paper = paper_factory(frame([*FALL, QUIET[0], *dip, *QUIET]), DECIDE, env)
    runner = paper.runner("SubBot-B")
    for k in range(4):
        paper.at(DECIDE + k * MIN)
        runner.step(DECIDE + k * MIN, halted=False, decide=True)
    legs = paper.rows("select order_type, status, avg_price from paper_orders order by id")
    assert [row[:2] for row in legs] == [
        ("Market", "filled"), ("Limit", "filled"), ("Limit", "new"),
    ]  # fmt: skip
    assert float(legs[1][2]) == pytest.approx(round_to_tick(39970 * 0.998, 0.1))


def test_split_off_and_tpsl_off(paper_factory: Any) -> None:
    paper = paper_b(
        paper_factory, split_entry__enabled="false", strategy_params__tp_sl_enabled="false"
    )
    runner = paper.runner("SubBot-B")
    for k in range(3):
        paper.at(DECIDE + k * MIN)
        runner.step(DECIDE + k * MIN, halted=False, decide=True)
    (order,) = paper.rows("select qty, take_profit, stop_loss, status from paper_orders")
    assert (Decimal(order[0]), order[1], order[2], order[3]) == (Decimal("0.003"), None, None,
                                                                 "filled")  # fmt: skip
    (pos,) = paper.rows("select size, take_profit, stop_loss from paper_positions")
    assert (Decimal(pos[0]), pos[1], pos[2]) == (Decimal("0.003"), None, None)


def test_a_halted_bot_does_not_ask_its_advisor_or_enter(paper_factory: Any) -> None:
    paper = paper_b(paper_factory)
    report = paper.runner("SubBot-B").step(DECIDE, halted=True, decide=True)
    assert report.decided
    assert not report.acted
    assert paper.rows("select id from orders") == []
    (decision,) = paper.rows("select action, outcome, reason from decisions")
    assert decision == (None, "skipped", "halted: the advisor is not asked")
