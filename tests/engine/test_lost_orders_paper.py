"""An entry whose answer was lost, on the paper exchange: whether the create reached the ledger
(the answer lost on the way back) or not (lost on the way there), the bot's next steps resolve
it by its client id -- found, or resent under the same id -- and never enter beside it: one
order, one position. The fault is injected at the exchange's boundary; the ledger, the journal
and the bot are the real ones."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from jiritsu.exchange.errors import ExchangeUnavailable
from jiritsu.exchange.types import Category, OrderRequest, OrderState
from tests.engine.conftest import MIN
from tests.engine.test_tick import DECIDE, paper_b


def losing_answers(
    place: Callable[[str, Category, OrderRequest], OrderState], reached: list[bool]
) -> tuple[Callable[[str, Category, OrderRequest], OrderState], list[str]]:
    """``place`` whose next answers are lost: each entry of ``reached`` says whether that
    create was accepted before the answer went missing. Returns it and the ids it was asked."""
    asked: list[str] = []

    def place_order(account: str, category: Category, request: OrderRequest) -> OrderState:
        asked.append(request.client_order_id)
        if not reached:
            return place(account, category, request)
        if reached.pop(0):
            place(account, category, request)
        raise ExchangeUnavailable("paper: the answer was lost")

    return place_order, asked


@pytest.mark.parametrize(
    ("reached", "creates"),
    [([True], 1), ([False], 2), ([False, True], 2)],
    ids=["answer-lost", "never-reached", "resend-answer-lost"],
)
def test_a_lost_entry_ends_as_one_position(
    paper_factory: Any, monkeypatch: pytest.MonkeyPatch, reached: list[bool], creates: int
) -> None:
    paper = paper_b(
        paper_factory, split_entry__enabled="false", strategy_params__tp_sl_enabled="false"
    )
    failing = len(reached)
    place, asked = losing_answers(paper.exchange.place_order, reached)
    monkeypatch.setattr(paper.exchange, "place_order", place)
    runner = paper.runner("SubBot-B")
    reports = []
    for k in range(failing + 3):
        paper.at(DECIDE + k * MIN)
        reports.append(runner.step(DECIDE + k * MIN, halted=False, decide=True))
    assert [r.failed for r in reports] == [True] * failing + [False] * 3
    # the later bars still say BUY; the bot is long (or its entry is out): nothing more
    assert all(r.action == "BUY" and not r.orders for r in reports[failing:])
    (cid,) = set(asked)
    assert len(asked) == creates  # found by its id, or resent under it; never a new id
    (order,) = paper.rows("select client_order_id, qty, status from paper_orders")
    assert (order[0], Decimal(order[1]), order[2]) == (cid, Decimal("0.003"), "filled")
    (row,) = paper.rows("select client_order_id, status from orders")
    assert tuple(row) == (cid, "filled")
    (position,) = paper.rows("select side, size from paper_positions where size > 0")
    assert (position[0], Decimal(position[1])) == ("Buy", Decimal("0.003"))
    (fill,) = paper.rows("select client_order_id, qty from executions")
    assert (fill[0], Decimal(fill[1])) == (cid, Decimal("0.003"))
