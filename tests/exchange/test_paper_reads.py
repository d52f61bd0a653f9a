"""How the paper exchange reads its books: every account of a valuation in one transaction, and a
replay's own ledger not worked twice at one clock time (same answers, fewer round trips)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.db.models import PaperPosition
from jiritsu.exchange import ledger
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


def make(
    engine: Engine, *, own_ledger: bool = False, rows: list[Any] = ROWS
) -> tuple[PaperExchange, Any]:
    from jiritsu.clock import SimClock

    clock = SimClock(T0 + M)
    source = ReplaySource(clock, {"BTCUSDT": frame(rows)})
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
        asked = {
            f.client_order_id: ex.get_order(account, category, "BTCUSDT", f.client_order_id)
            for f in in_turn[0]
            if f.client_order_id
        }
        with statements(engine) as seen:
            reads = ex.account_reads(account, category, "BTCUSDT", since=since)
        assert (reads.executions, reads.positions, reads.open_orders) == in_turn
        assert reads.orders == asked  # the orders of those fills, as get_order answers
        assert len(locks(seen)) == 1
        # the open orders and those of the fills in one query
        assert len([s for s in seen if s.startswith("SELECT") and "FROM paper_orders" in s]) == 1
        assert reads.positions
        assert reads.open_orders
    assert [f.client_order_id for f in in_turn[0]] == ["l-2"]  # B's fills since bar 2
    assert reads.orders["l-2"].status == "filled"


def fresh(engine: Engine) -> None:
    """An empty ledger (the test's second exchange starts from the same books)."""
    from jiritsu.db.models import PaperAccount, PaperFill, PaperOrder, PaperPosition

    with engine.begin() as conn:
        for table in (PaperFill, PaperOrder, PaperPosition, PaperAccount):
            conn.execute(sa.delete(table))


FUNDS_ROWS = [HISTORY, (1, 120.0, 121.0, 119.0, 120.5), (2, 120.5, 121.0, 120.0, 120.8),
              (3, 120.8, 131.0, 120.6, 125.0), (4, 125.0, 125.5, 124.0, 125.0)]  # fmt: skip


def spend_at_the_fills(engine: Engine) -> tuple[PaperExchange, Any]:
    """Orders of three accounts that fill in one bar, one of them refused at its fill."""
    ex, clock = make(engine, own_ledger=True, rows=FUNDS_ROWS)
    ex.place_order(A, "spot", market("s-1", "Buy", "2"))
    ex.place_order(B, "linear", market("l-1", "Buy", "3", take_profit=D(130), stop_loss=D(95)))
    ex.place_order(B, "linear", limit("l-2", "Buy", "1", "99"))  # reserved, never fills
    # C: 14 at 100 reserve 1,400.77 each of the 3,000; at bar 1's open of 120 the first
    # needs 1,680.92 but has 1,599.23 beside the second's reservation: refused at its fill;
    # the second then has the whole 3,000
    ex.place_order(C, "linear", market("c-1", "Buy", "14"))
    ex.place_order(C, "linear", market("c-2", "Buy", "14"))
    clock.advance()
    return ex, clock


def test_funds_at_a_fill_are_reckoned_as_the_ledger_queries_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catch-up reckons an account's free funds before each fill from the books it read at
    its start: the very amount ledger.available queries at that moment, down to an order
    refused because an earlier fill of the same bar spent its funds."""
    from jiritsu.exchange import paper_fills

    reckoned: list[tuple[str, D]] = []
    books_available = paper_fills._Books.available

    def checked(books: Any, session: Any, account: str, quote: str) -> D:
        free = books_available(books, session, account, quote)
        assert free == ledger.available(session, account, quote)
        reckoned.append((account, free))
        return free

    monkeypatch.setattr(paper_fills._Books, "available", checked)
    ex, clock = spend_at_the_fills(engine)
    assert ex.step_accounts() == {A: 1, B: 1, C: 1}
    states = [ex.get_order(C, "linear", "BTCUSDT", cid) for cid in ("c-1", "c-2")]
    assert [(s.status, s.reject_reason) for s in states if s is not None] == [
        ("rejected", "insufficient balance at fill"),
        ("filled", None),
    ]
    clock.advance(2)  # bar 3 reaches B's take profit: the exit fills as taker
    assert ex.step_accounts() == {B: 1}
    assert [a for a, _ in reckoned] == [A, B, C, C, B]
    assert ex.positions(B, "linear") == []


def test_a_catch_up_reads_each_filled_wallet_once(engine: Engine) -> None:
    """No query of positions, orders or wallet per fill: each filled account's wallet once."""
    ex, _ = spend_at_the_fills(engine)
    with statements(engine) as seen:
        assert ex.step_accounts() == {A: 1, B: 1, C: 1}
    assert len([s for s in seen if s.startswith("SELECT") and "FROM paper_accounts" in s]) == 3
    assert not [s for s in seen if "FROM paper_positions WHERE" in s]
    assert len([s for s in seen if s.startswith("SELECT") and "FROM paper_orders" in s]) == 1


def test_an_idle_own_ledger_is_not_caught_up_and_answers_as_a_shared_one(engine: Engine) -> None:
    """Once nothing is left to work (no open order, no position with a TP/SL) an own ledger
    skips its catch-ups until an order is placed or a TP/SL set; the same calls over the same
    bars give the answers of a ledger caught up at every call."""
    from jiritsu.clock import from_ms

    rows = [HISTORY, *[(m, 101.0, 101.5, 100.5, 101.0) for m in range(1, 5)],
            (5, 101.0, 104.0, 100.8, 103.0), (6, 103.0, 103.2, 102.0, 102.5),
            (7, 102.5, 102.6, 99.0, 99.5), (8, 99.5, 100.0, 99.2, 99.8),
            (9, 99.8, 100.0, 99.6, 99.9)]  # fmt: skip
    answers, worked = [], []
    for own in (False, True):
        fresh(engine)
        ex, clock = make(engine, own_ledger=own, rows=rows)
        seen_all: list[Any] = []
        ex.place_order(B, "linear", market("l-1", "Buy", "2"))  # no TP/SL: idle once filled
        for minute in range(2, 10):
            clock.advance()
            if minute == 4:  # a guard gives work again: hit at bar 5 (high 104)
                ex.set_trading_stop(B, "linear", "BTCUSDT", take_profit=D(103.5), stop_loss=None)
            if minute == 7:  # and an order: fills at bar 7 (low 99)
                ex.place_order(C, "linear", limit("l-2", "Buy", "1", "99.5"))
            with statements(engine) as seen:
                step = ex.step_accounts()
                reads = (ex.positions(B, "linear"), ex.open_orders(C, "linear"),
                         ex.balances([B, C]))  # fmt: skip
            seen_all.append([minute, step, reads])
            if own:
                worked.append(len(catch_ups(seen)))
        seen_all.append([f.exec_id for a in (B, C) for f in ex.executions(a, "linear")])
        seen_all.append(ex.executions(B, "linear", since=from_ms(T0)))
        answers.append(seen_all)
    assert answers[0] == answers[1]
    assert len(answers[0][-2]) == 3  # l-1, its take profit, l-2
    steps = [s[1] for s in answers[0][:-2]]
    assert steps == [{B: 1}, {}, {}, {}, {B: 1}, {}, {C: 1}, {}]
    # minutes 2-9: l-1 filled at 2, nothing to work at 3, the stop from 4 to its fill at 6,
    # l-2 from 7 to its fill at 8, nothing at 9
    assert worked == [1, 0, 1, 1, 1, 1, 1, 0]


def test_the_ledger_reads_built_once_answer_as_built_at_each_call(engine: Engine) -> None:
    """Open orders (with and without the orders of some fills), market rows, fills and books
    under every combination of filters: the rows of the same query built afresh."""
    import itertools

    from sqlalchemy.orm import Session

    from jiritsu.db.models import PAPER_OPEN_ORDER_STATUSES, PaperFill, PaperOrder, PaperPosition

    ex, clock = spend_at_the_fills(engine)  # fills, a refusal, an open limit, positions
    ex.step_accounts()
    ex.place_order(A, "spot", limit("s-2", "Sell", "1", "150"))  # open, spot
    ex.place_order(C, "linear", limit("c-3", "Buy", "1", "90"))  # open, linear
    clock.advance()
    ex.step_accounts()

    def fresh_select(entity: Any, **eq: Any) -> Any:
        query = sa.select(entity)
        for name, value in eq.items():
            query = query.where(getattr(entity, name) == value)
        return query

    with Session(engine) as session:
        filled = sorted(session.scalars(sa.select(PaperFill.exchange_order_id)))[:2]
        for account, category, symbol in itertools.product(
            (None, A, B, C), (None, "linear", "spot"), (None, "BTCUSDT", "ETHUSDT")
        ):
            given = {k: v for k, v in (("account", account), ("category", category),
                                       ("symbol", symbol)) if v is not None}  # fmt: skip
            for also in ((), filled):
                is_open = PaperOrder.status.in_(PAPER_OPEN_ORDER_STATUSES)
                if also:
                    is_open = sa.or_(is_open, PaperOrder.exchange_order_id.in_(also))
                want = session.scalars(
                    fresh_select(PaperOrder, **given)
                    .where(is_open)
                    .order_by(PaperOrder.accepted_ms, PaperOrder.id)
                ).all()
                got = ledger.open_orders(session, account, category, symbol, also=also)
                assert [o.id for o in got] == [o.id for o in want]
            rows = session.scalars(fresh_select(PaperPosition, **given).order_by(PaperPosition.id))
            got_rows = ledger.market_rows(session, account, category, symbol, open_only=False)
            assert [r.id for r in got_rows] == [r.id for r in rows]
            if account is None:
                continue
            for since in (None, T0 + 2 * M):
                query = fresh_select(PaperFill, **given)
                if since is not None:
                    query = query.where(PaperFill.exec_ms >= since)
                want_fills = session.scalars(query.order_by(PaperFill.exec_ms, PaperFill.id))
                got_fills = ledger.fills(session, account, category, symbol, since)
                assert [f.id for f in got_fills] == [f.id for f in want_fills]
        found = ledger.books(session, [A, B, C, MAIN])
        assert [o.client_order_id for o in found[C].orders] == ["c-3"]
        assert [p.symbol for p in found[B].positions] == ["BTCUSDT"]
        assert found[MAIN].wallet("FUND", "USDT") == D(500)
        assert ledger.wallet_row(session, A, "UNIFIED", "USDT") is not None
        assert ledger.order_by_client_id(session, C, "c-2") is not None
        assert ledger.market_row(session, C, "linear", "BTCUSDT") is not None


def cursor_moves(seen: list[str]) -> list[str]:
    """The statements that move market rows' bar cursors and nothing else."""
    return [s for s in seen if s.startswith("UPDATE paper_positions SET next_bar_ms=")
            and "," not in s.split(" WHERE ")[0]]  # fmt: skip


def written(seen: list[str]) -> list[str]:
    """The tables ``seen`` writes, one entry per run of statements writing the same table,
    sorted (a flush writes table by table; a flush per fill writes a table in several runs);
    the bar cursors' own UPDATE aside."""
    writes = [s for s in seen if s.startswith(("INSERT", "UPDATE")) and s not in cursor_moves(seen)]
    tables = [s.split()[2 if s.startswith("INSERT") else 1] for s in writes]
    return sorted(t for t, _ in itertools.groupby(tables))


def test_a_catch_up_writes_its_fills_in_one_flush(engine: Engine) -> None:
    """The fills of a catch-up (three accounts, a refusal, then a take profit's exit order) are
    written together at its end, table by table, not in a flush per fill (each moving the
    wallet, the order and the position again); the books read afterwards show every one."""
    ex, clock = spend_at_the_fills(engine)
    with statements(engine) as seen:
        assert ex.step_accounts() == {A: 1, B: 1, C: 1}
    assert written(seen) == ["paper_accounts", "paper_fills", "paper_orders", "paper_positions"]
    moves = [s for s in seen if s.startswith("UPDATE paper_positions")]
    assert len([s for s in moves if s not in cursor_moves(seen)]) <= 3  # one a row
    clock.advance(2)  # bar 3 reaches B's take profit: the exit order and its fill
    with statements(engine) as seen:
        assert ex.step_accounts() == {B: 1}
    assert written(seen) == ["paper_accounts", "paper_fills", "paper_orders", "paper_positions"]
    assert ex.positions(B, "linear") == []
    assert len(ex.executions(B, "linear")) == 2
    states = [ex.get_order(C, "linear", "BTCUSDT", cid) for cid in ("c-1", "c-2")]
    assert [(s.status, s.reject_reason) for s in states if s is not None] == [
        ("rejected", "insufficient balance at fill"),
        ("filled", None),
    ]


def test_a_catch_up_without_fills_writes_its_bar_cursors_in_one_statement(engine: Engine) -> None:
    """Most catch-ups fill nothing: their one write moves the worked markets' bar cursors, and
    the rows read afterwards (in the same transaction and in the next) show them moved."""
    ex, clock = make(engine, own_ledger=True)
    ex.place_order(B, "linear", limit("l-1", "Buy", "1", "90"))  # rests, never fills
    ex.place_order(A, "linear", limit("a-1", "Sell", "1", "150"))
    clock.advance(2)
    with statements(engine) as seen:
        assert ex.step_accounts() == {}
    writes = [s for s in seen if s.startswith(("INSERT", "UPDATE"))]
    assert writes == cursor_moves(seen)
    assert len(writes) == 1
    with engine.connect() as conn:
        cursors = conn.execute(sa.select(PaperPosition.account, PaperPosition.next_bar_ms)).all()
    # the last bar closed by now opened at T0 + 2 M: its cursor is just past that open
    assert sorted(cursors) == [(A, T0 + 2 * M + 1), (B, T0 + 2 * M + 1)]
