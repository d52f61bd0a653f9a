"""A bot's re-read after a step that filled it, on the paper exchange: its fills, position and
open orders come from one ledger transaction (Exchange.account_reads) instead of one each, and
the state is the one an exchange without that call (Bybit) gives by asking in turn."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jiritsu.strategy import step as K
from tests.engine.conftest import MIN, frame, only_bot
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT
from tests.exchange.test_paper_reads import locks, statements


@pytest.mark.parametrize(("together", "transactions"), [(True, 1), (False, 6)],
                         ids=["together", "in-turn"])  # fmt: skip
def test_a_filled_bots_state_is_read_in_one_ledger_transaction(
    paper_factory: Any, monkeypatch: pytest.MonkeyPatch, together: bool, transactions: int
) -> None:
    env = only_bot(
        "SubBot-B", **{**RSI_BOT, "split_entry__enabled": "false",
                       "strategy_params__tp_sl_enabled": "false"},
    )  # fmt: skip
    paper = paper_factory(frame(FALL + QUIET), DECIDE, env)
    if not together:  # as Bybit: no joint read, each asked in turn
        monkeypatch.setattr(paper.exchange, "account_reads", lambda *a, **k: None)
    runner = paper.runner("SubBot-B")
    paper.at(DECIDE)
    report = runner.step(DECIDE, halted=False, decide=True)
    assert report.action == "BUY"
    assert report.orders  # the entry is out
    paper.at(DECIDE + MIN)  # ... and fills at the next bar's open
    with statements(paper.engine) as seen:
        live, fills = runner.read_state(DECIDE + MIN)
    # together: the reads, with the filled order's state (read with the fill, so the position
    # read then holds it: no second read); in turn: executions, positions, open orders, the
    # order asked by its id (no longer open), executions and positions again since it moved
    assert len(locks(seen)) == transactions
    assert fills == 1
    assert (live.position_side, live.position_qty, live.open_rows) == (1, Decimal("0.003"), 0)
    assert (live.state[K.S_SIDE], live.state[K.S_QTY]) == (1.0, 0.003)
    if together:  # the fill is recorded once: the journal is not handed it again
        assert len([s for s in seen if s.startswith("INSERT INTO executions")]) == 1
        assert len([s for s in seen if "FROM executions WHERE executions.exec_id IN" in s]) == 1


def test_an_unchanged_open_row_costs_no_plan_reload_and_no_count(paper_factory: Any) -> None:
    """Right after the entry went out its row is open and the exchange says the same: nothing
    settled changed, so the plan is loaded once, and the rows just settled say how many are
    open and whether one is a pending exit (no queries for them)."""
    env = only_bot(
        "SubBot-B", **{**RSI_BOT, "split_entry__enabled": "false",
                       "strategy_params__tp_sl_enabled": "false"},
    )  # fmt: skip
    paper = paper_factory(frame(FALL + QUIET), DECIDE, env)
    runner = paper.runner("SubBot-B")
    paper.at(DECIDE)
    assert runner.step(DECIDE, halted=False, decide=True).orders
    with statements(paper.engine) as seen:
        live, fills = runner.read_state(DECIDE)
    assert (fills, live.open_rows, live.state[K.S_EXIT_PENDING]) == (0, 1, 0.0)
    assert len(locks(seen)) == 1
    assert len([s for s in seen if s.startswith("SELECT orders.plan_id")]) == 1
    assert not [s for s in seen if s.startswith("SELECT count(*)")]
    assert not [s for s in seen if "orders.reduce_only IS 1" in s]


def test_a_fill_without_open_order_rows_loads_the_plan_once(paper_factory: Any) -> None:
    """A take profit fills with no order row open: nothing is settled, so the plan read after
    the fills were booked is the one the state is built on (not loaded a second time)."""
    env = only_bot("SubBot-B", **{**RSI_BOT, "split_entry__enabled": "false"})
    spike = (39970.0, 41000.0, 39960.0, 40900.0)  # through any take profit
    paper = paper_factory(frame(FALL + QUIET[:3] + [spike] + QUIET), DECIDE, env)
    runner = paper.runner("SubBot-B")
    for k in range(3):  # the entry goes out, fills, its row is settled
        paper.at(DECIDE + k * MIN)
        runner.step(DECIDE + k * MIN, halted=False, decide=True)
    live, _ = runner.read_state(DECIDE + 2 * MIN)
    assert (live.position_side, live.open_rows) == (1, 0)
    assert live.state[K.S_TP] > 0
    paper.at(DECIDE + 4 * MIN)  # the spike's bar closed: the take profit filled
    with statements(paper.engine) as seen:
        live, fills = runner.read_state(DECIDE + 4 * MIN)
    assert fills == 1
    assert (live.position_side, live.open_rows) == (0, 0)
    plan_ids = [s for s in seen if s.startswith("SELECT orders.plan_id")]
    assert len(plan_ids) == 1
