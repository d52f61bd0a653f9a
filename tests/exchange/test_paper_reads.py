"""How the paper exchange reads its books: every account of a valuation in one transaction, and a
replay's own ledger not worked twice at one clock time (same answers, fewer round trips)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.exchange.errors import InsufficientBalance
from jiritsu.exchange.paper import PaperExchange
from jiritsu.exchange.types import MAIN
from jiritsu.market.source import ReplaySource
from jiritsu.runtime import paper_config
from tests.exchange.test_paper import HISTORY, T0, A, B, C, D, M, engine, frame, limit, market
from tests.exchange.test_paper import settings as paper_settings

__all__ = ["engine"]  # the fixture, on SQLite and PostgreSQL

ROWS = [HISTORY, (1, 101.0, 102.0, 100.0, 101.5), (2, 101.5, 102.0, 101.0, 101.8),
        (3, 101.8, 103.0, 101.6, 102.5), (4, 102.5, 102.9, 102.0, 102.2)]  # fmt: skip


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements ``engine`` sends meanwhile."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        seen.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


def locks(seen: list[str]) -> list[str]:
    """The ledger's write locks taken (SQLite: BEGIN IMMEDIATE; PostgreSQL: advisory)."""
    return [s for s in seen if s.startswith("BEGIN IMMEDIATE") or "pg_advisory_xact_lock" in s]


def catch_ups(seen: list[str]) -> list[str]:
    """A catch-up's first read: every open order of every account."""
    return [s for s in seen if "FROM paper_orders WHERE" in s
            and "account" not in s.split(" WHERE ", 1)[1]]  # fmt: skip


def make(engine: Engine, *, own_ledger: bool = False) -> tuple[PaperExchange, object]:
    from jiritsu.clock import SimClock

    clock = SimClock(T0 + M)
    source = ReplaySource(clock, {"BTCUSDT": frame(ROWS)})
    ex = PaperExchange(engine, paper_config(paper_settings()), source, clock, own_ledger=own_ledger)
    return ex, clock


def test_balances_of_every_account_in_one_transaction_as_one_by_one(engine: Engine) -> None:
    ex, clock = make(engine)
    ex.place_order(A, "spot", market("s-1", "Buy", "2"))  # a spot holding
    ex.place_order(B, "linear", market("l-1", "Buy", "3", take_profit=D(110), stop_loss=D(95)))
    clock.advance(2)  # both fill at bar 1's open
    ex.place_order(B, "linear", limit("l-2", "Buy", "1", "99"))  # funds reserved
    ex.place_order(C, "linear", market("l-3", "Sell", "1"))  # fills at bar 3
    clock.advance()
    accounts = [A, B, C, MAIN]
    one_by_one = {a: ex.balance(a) for a in accounts}
    with statements(engine) as seen:
        together = ex.balances(accounts)
    assert together == one_by_one
    assert len(locks(seen)) == 1  # one transaction
    assert len([s for s in seen if "FROM paper_accounts" in s]) == 1  # every wallet at once
    # the books moved: equity counts the spot holding at market and the open positions
    assert one_by_one[A].equity != one_by_one[A].wallet_balance
    assert one_by_one[B].available < one_by_one[B].wallet_balance - D(300)
    assert one_by_one[MAIN].equity == D(500)


def test_a_replay_ledger_is_worked_once_per_clock_time(engine: Engine) -> None:
    ex, clock = make(engine, own_ledger=True)
    ex.place_order(B, "linear", market("l-1", "Buy", "1", take_profit=D(110), stop_loss=D(95)))
    clock.advance()
    assert len(ex.executions(B, "linear")) == 1  # worked bar 1: filled
    with statements(engine) as seen:
        [pos] = ex.positions(B, "linear")
        ex.balances([A, B, C, MAIN])
    assert len(locks(seen)) == 2
    assert not catch_ups(seen)
    assert pos.size == D(1)
    clock.advance()  # a new clock time: worked again (the position is guarded)
    with statements(engine) as seen:
        ex.positions(B, "linear")
    assert catch_ups(seen)


def test_a_catch_up_rolled_back_with_a_refused_call_is_worked_again(engine: Engine) -> None:
    ex, clock = make(engine, own_ledger=True)
    ex.place_order(B, "linear", market("l-1", "Buy", "1"))
    clock.advance()  # bar 1 closed: the next call fills l-1 ... and is refused
    try:
        ex.place_order(B, "linear", market("l-2", "Buy", "100"))  # 10,000 > the wallet
    except InsufficientBalance:
        pass
    else:
        raise AssertionError("an order beyond the wallet was accepted")
    [fill] = ex.executions(B, "linear")  # the refused call's fill was rolled back, not lost
    assert (fill.qty, fill.time.timestamp() * 1000) == (D(1), T0 + M)


def test_an_own_ledger_fills_as_a_shared_one(engine: Engine) -> None:
    """The same calls on the same bars: the same fills, positions and balances."""
    answers = []
    for own in (False, True):
        from jiritsu.db.models import PaperAccount, PaperFill, PaperOrder, PaperPosition

        with engine.begin() as conn:  # a fresh ledger for each
            for table in (PaperFill, PaperOrder, PaperPosition, PaperAccount):
                conn.execute(sa.delete(table))
        ex, clock = make(engine, own_ledger=own)
        ex.place_order(B, "linear", market("l-1", "Buy", "2", take_profit=D(102.9)))
        ex.place_order(C, "linear", limit("l-2", "Sell", "1", "101.9"))
        seen = []
        for _ in range(4):
            clock.advance()
            seen.append((ex.positions(B, "linear"), ex.open_orders(C, "linear")))
            seen.append(ex.balances([B, C]))
        seen.append([f.exec_id for a in (B, C) for f in ex.executions(a, "linear")])
        answers.append(seen)
    assert answers[0] == answers[1]
    assert len(answers[0][-1]) == 3  # l-1, its take profit, l-2


def test_a_step_names_the_accounts_that_filled(engine: Engine) -> None:
    """The trade loop re-reads only the bots whose books a step moved."""
    ex, clock = make(engine, own_ledger=True)
    ex.place_order(B, "linear", market("l-1", "Buy", "1"))
    ex.place_order(C, "linear", limit("l-2", "Sell", "1", "102.8"))  # bar 3 trades through
    assert ex.step_accounts() == {}
    clock.advance()
    assert ex.step_accounts() == {B: 1}
    clock.advance(2)
    assert ex.step_accounts() == {C: 1}
    clock.advance()
    assert ex.step() == 0


def test_an_accounts_reads_in_one_transaction_as_asked_in_turn(engine: Engine) -> None:
    """A bot's re-read after a step: its fills since a time, its positions and its open orders
    of one symbol, the very answers of the three calls, under one lock."""
    from jiritsu.clock import from_ms

    ex, clock = make(engine, own_ledger=True)
    ex.place_order(A, "spot", market("s-1", "Buy", "2"))
    ex.place_order(B, "linear", market("l-1", "Buy", "3", take_profit=D(110), stop_loss=D(95)))
    clock.advance()
    ex.place_order(B, "linear", market("l-2", "Sell", "1", reduce_only=True))  # fills at bar 2
    clock.advance(2)
    ex.place_order(B, "linear", limit("l-3", "Buy", "1", "99"))  # stays open
    ex.place_order(A, "spot", limit("s-2", "Sell", "1", "150"))  # stays open
    since = from_ms(T0 + 2 * M)  # l-1 filled at bar 1: before it
    for account, category in ((A, "spot"), (B, "linear")):
        in_turn = (
            ex.executions(account, category, symbol="BTCUSDT", since=since),
            ex.positions(account, category, "BTCUSDT"),
            ex.open_orders(account, category, "BTCUSDT"),
        )
        with statements(engine) as seen:
            reads = ex.account_reads(account, category, "BTCUSDT", since=since)
        assert (reads.executions, reads.positions, reads.open_orders) == in_turn
        assert len(locks(seen)) == 1
        assert reads.positions
        assert reads.open_orders
    assert [f.client_order_id for f in in_turn[0]] == ["l-2"]  # B's fills since bar 2
