"""What placing an order reads: the account's books once (its wallets, open positions and open
orders in three queries), then its market's row; the same acceptance and refusals as reading
each piece apart (tests/exchange/test_paper.py pins those: margin, reservations, spot sells
against open sells, reduce-only, idempotency, two processes)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

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
