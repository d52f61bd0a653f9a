"""A bot's re-read after a step that filled it, on the paper exchange: its fills, position and
open orders come from one ledger transaction (Exchange.account_reads) instead of one each, and
the state is the one an exchange without that call (Bybit) gives by asking in turn."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from jiritsu.strategy import step as K
from tests.engine.conftest import MIN, frame, only_bot
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT, paper_b
from tests.exchange.test_paper_reads import locks, statements


def plan_reads(seen: list[str]) -> list[str]:
    """Reads of the newest plan (its legs' rows)."""
    return [s for s in seen if "orders.plan_id = (SELECT orders.plan_id" in s]


@pytest.mark.parametrize(("together", "transactions"), [(True, 1), (False, 6)],
                         ids=["together", "in-turn"])  # fmt: skip
def test_a_filled_bots_state_is_read_in_one_ledger_transaction(
    paper_factory: Any, monkeypatch: pytest.MonkeyPatch, together: bool, transactions: int
) -> None:
    paper = paper_b(
        paper_factory, split_entry__enabled="false", strategy_params__tp_sl_enabled="false"
    )
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
    paper = paper_b(
        paper_factory, split_entry__enabled="false", strategy_params__tp_sl_enabled="false"
    )
    runner = paper.runner("SubBot-B")
    paper.at(DECIDE)
    assert runner.step(DECIDE, halted=False, decide=True).orders
    with statements(paper.engine) as seen:
        live, fills = runner.read_state(DECIDE)
    assert (fills, live.open_rows, live.state[K.S_EXIT_PENDING]) == (0, 1, 0.0)
    assert len(locks(seen)) == 1
    assert len(plan_reads(seen)) == 1
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
    assert len(plan_reads(seen)) == 1


def newest_plan_in_two_reads(engine: Any, bot: str, side: int | None) -> Any:
    """The newest plan as it was read before: its id by one query, then the plan by id."""
    import sqlalchemy as sa

    from jiritsu.db.models import Order
    from jiritsu.engine.plans import load_plan

    query = sa.select(Order.plan_id).where(Order.bot == bot, Order.plan_id.is_not(None))
    if side is not None:
        query = query.where(Order.side == ("Buy" if side > 0 else "Sell"), Order.leg_index == 0)
    with engine.connect() as conn:
        plan_id = conn.execute(query.order_by(Order.id.desc()).limit(1)).scalar()
    return None if plan_id is None else load_plan(engine, bot, plan_id)


def test_the_newest_plan_in_one_query_is_the_plan_read_by_its_id(paper_factory: Any) -> None:
    """latest_plan reads the newest plan's legs in one query and its decision's spec once per
    runner: the very plan of reading its id first, at every step of a three-leg time split
    (legs sent, filled, the plan complete), on either side; none before the first."""
    from jiritsu.engine.plans import latest_plan

    paper = paper_b(paper_factory)  # three legs a minute apart
    runner = paper.runner("SubBot-B")
    specs: dict[int, Any] = {}
    seen = []
    for k in range(-1, 5):
        if k >= 0:
            paper.at(DECIDE + k * MIN)
            runner.step(DECIDE + k * MIN, halted=False, decide=True)
        for side in (None, 1, -1):
            with statements(paper.engine) as reads:
                plan = latest_plan(paper.engine, "SubBot-B", side=side, specs=specs)
            assert plan == newest_plan_in_two_reads(paper.engine, "SubBot-B", side)
            seen.append((plan is not None, len(reads)))
            if plan is not None:
                assert plan.legs  # the rows' legs, as sent so far
    assert seen[:3] == [(False, 1)] * 3  # no plan yet: one query
    plans = [s for s in seen if s[0]]
    assert plans[:2] == [(True, 2), (True, 1)]  # the spec read once, then the legs alone
    assert all(n == 1 for _, n in plans[1:])
    assert not any(s[0] for s in seen[5::3])  # never a plan on the short side
