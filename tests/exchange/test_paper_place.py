"""What placing an order reads: the account's books once (its wallets, open positions and open
orders in three queries), then its market's row; the same acceptance and refusals as reading
each piece apart (tests/exchange/test_paper.py pins those: margin, reservations, spot sells
against open sells, reduce-only, idempotency, two processes)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.db.models import PaperOrder
from jiritsu.exchange.errors import InsufficientBalance, NotFound
from tests.exchange.test_paper import B, D, engine, limit, market
from tests.exchange.test_paper_reads import make, statements

__all__ = ["engine"]  # the fixture, on SQLite and PostgreSQL


def _reads(seen: list[str], table: str) -> int:
    return len([s for s in seen if s.startswith("SELECT") and f"FROM {table}" in s])


def test_placing_reads_the_books_once(engine: Engine) -> None:
    ex, clock = make(engine, own_ledger=True)
    ex.place_order(B, "linear", market("l-1", "Buy", "3"))
    clock.advance(2)  # filled at bar 1: a position holding margin
    ex.positions(B, "linear")  # caught up at this clock time
    with statements(engine) as seen:
        state = ex.place_order(B, "linear", limit("l-2", "Buy", "1", "99"))
    assert state.status == "new"
    assert _reads(seen, "paper_accounts") == 1  # the account exists and what it has
    assert _reads(seen, "paper_positions") == 2  # its open positions, then the market's row
    assert _reads(seen, "paper_orders") == 2  # the client id's order, then the open orders
    # what the books said decides: the margin of the position and the limit's reservation
    with pytest.raises(InsufficientBalance):
        ex.place_order(B, "linear", market("l-3", "Buy", "95"))
    with pytest.raises(NotFound):
        ex.place_order("SubBot-X", "linear", market("x-1", "Buy", "1"))
    assert ex.balance(B).available < ex.balance(B).wallet_balance - D(300)


def test_a_placed_order_is_answered_as_its_row_reads_back(engine: Engine) -> None:
    """The order row is written with a plain INSERT: the answer of a placement equals the
    state read back from its row (get_order), for an accepted market order with TP/SL, a
    resting limit and a PostOnly limit cancelled for taking; the rows get ids in order and
    start unfilled with their reservation."""
    ex, _ = make(engine, own_ledger=True)
    requests = [
        market("p-1", "Buy", "2", take_profit=D("110.04"), stop_loss=D("90.06")),
        limit("p-2", "Buy", "1.5", "95.01", time_in_force="GTC"),
        limit("p-3", "Buy", "1", "101", time_in_force="PostOnly"),  # at or above the last: takes
    ]
    answers = [ex.place_order(B, "linear", r) for r in requests]
    assert [a.status for a in answers] == ["new", "new", "cancelled"]
    assert answers[2].reject_reason == "PostOnly order would take liquidity"
    for request, answer in zip(requests, answers, strict=True):
        assert ex.get_order(B, "linear", "BTCUSDT", request.client_order_id) == answer
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(PaperOrder.id, PaperOrder.client_order_id, PaperOrder.filled_qty,
                      PaperOrder.fee, PaperOrder.fill_count, PaperOrder.reserved)
            .order_by(PaperOrder.id)
        ).all()  # fmt: skip
    assert [r[1] for r in rows] == ["p-1", "p-2", "p-3"]
    assert rows[0][0] < rows[1][0] < rows[2][0]
    assert {(r[2], r[3], r[4]) for r in rows} == {(D(0), D(0), 0)}
    assert rows[0][5] > 0
    assert rows[1][5] > 0
    assert rows[2][5] == 0
