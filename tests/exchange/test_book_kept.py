"""The trade book kept between re-reads is, after every update, exactly the book rebuilt from
every recorded fill, and the trades rows it prices are the ones the rebuild would write: fills
made by the paper exchange and recorded by the journal in random batches, some split in partial
fills, some recorded late with an earlier time than fills already applied (a lost answer
recovered, a reconciliation), flips and spot; on SQLite and PostgreSQL. A fill the kept book
cannot simply append (an earlier time, a smaller id committed late) makes it rebuild."""

from __future__ import annotations

import random
from dataclasses import replace
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.clock import from_ms
from jiritsu.db.models import Trade
from jiritsu.exchange.book import KeptBook, rebuild, update_trade_pnl
from jiritsu.exchange.errors import InsufficientBalance
from jiritsu.exchange.journal import OrderJournal
from jiritsu.exchange.types import Fill, Instrument
from tests.exchange.test_paper import HISTORY, T0, A, B, D, M, Row, engine, make, market
from tests.exchange.test_paper_reads import statements

__all__ = ["engine"]  # the fixture, on SQLite and PostgreSQL

BARS = 80


def walk(seed: int) -> list[Row]:
    """1-minute bars of a random walk around 100 (bar 0 is history)."""
    rng = random.Random(seed)
    rows, price = [HISTORY], 100.0
    for m in range(1, BARS + 2):
        close = round(price * (1 + rng.uniform(-0.01, 0.01)), 1)
        rows.append((m, price, max(price, close) + 0.3, min(price, close) - 0.3, close))
        price = close
    return rows


def split(fill: Fill, inst: Instrument) -> list[Fill]:
    """One exchange fill reported as two partial fills of its order (Bybit lists each)."""
    steps = int(fill.qty / inst.qty_step)
    if steps < 2:
        return [fill]
    first = (steps // 3) * inst.qty_step
    fee = (fill.fee * first / fill.qty).quantize(Decimal("1e-8"))
    return [
        replace(fill, exec_id=fill.exec_id + "-a", qty=first, fee=fee),
        replace(fill, exec_id=fill.exec_id + "-b", qty=fill.qty - first, fee=fill.fee - fee),
    ]


def assert_rebuilt(engine: Engine, bot: str, inst: Instrument, kept: KeptBook) -> None:
    full = rebuild(engine, bot, inst)
    assert kept.pos == full.pos  # side, qty, average, opened, entry fees, every order's PnL
    assert (kept.count, kept.max_id, kept.last_id) == (full.count, full.max_id, full.last_id)


def trade_rows(engine: Engine, bot: str) -> list[tuple[str, str | None, Decimal | None]]:
    with engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                sa.select(Trade.order_id, Trade.position_effect, Trade.pnl)
                .where(Trade.sub_bot_name == bot)
                .order_by(Trade.order_id)
            )
        ]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("bot", "category"), [(B, "linear"), (A, "spot")])
def test_the_kept_book_is_the_rebuild_after_every_batch_of_fills(
    engine: Engine, bot: str, category: str, seed: int
) -> None:
    rng = random.Random(seed)
    ex, clock = make(engine, walk(seed))
    journal = OrderJournal(engine, ex, environment="paper", clock=clock)
    inst = ex.instrument("BTCUSDT", category)  # type: ignore[arg-type]
    kept: KeptBook | None = None
    seen: set[str] = set()
    held_back: list[Fill] = []  # answers lost for a while
    held_since = 0
    appended = rebuilt = late = 0
    for m in range(1, BARS):
        side = rng.choice(["Buy", "Sell"])
        qty = Decimal(rng.randint(1, 30)) / 10  # linear: a sell beyond a long flips it
        if category == "spot" and side == "Sell":
            held = sum((p.size for p in ex.positions(bot, "spot")), Decimal(0))
            qty = inst.round_qty(held * Decimal(rng.choice(["0.3", "0.5", "1"])))
        if qty > 0 and rng.random() < 0.6:
            try:
                ex.place_order(bot, category, market(f"o-{m}", side, str(qty)))  # type: ignore[arg-type]
            except InsufficientBalance:
                pass
        clock.advance()
        batch: list[Fill] = []
        for fill in ex.executions(bot, category):  # type: ignore[arg-type]
            if fill.exec_id in seen:
                continue
            seen.add(fill.exec_id)
            parts = split(fill, inst) if rng.random() < 0.3 else [fill]
            if not held_back and rng.random() < 0.2:
                held_back, held_since = parts, m  # recorded some minutes later
            else:
                batch += parts
        if held_back and m - held_since >= 3 and rng.random() < 0.5:
            late += 1
            batch, held_back = batch + held_back, []
        rng.shuffle(batch)  # the journal records a batch in any order
        recorded = journal.record_fills(bot, batch)
        if not recorded and kept is not None:
            continue  # a re-read without new fills does not touch the book
        touched = {r.fill.exchange_order_id for r in recorded}
        before = kept
        kept = update_trade_pnl(engine, bot, inst, touched, kept)
        appended += kept is before
        rebuilt += kept is not before
        assert_rebuilt(engine, bot, inst, kept)
        # the rebuild's writes: the kept book's left nothing to change
        with statements(engine) as sql:
            update_trade_pnl(engine, bot, inst, touched)
        assert not [s for s in sql if s.startswith("UPDATE trades")]
    assert late
    assert appended > rebuilt > 1  # the first update and the late fills rebuilt
    assert [effect for _, effect, pnl in trade_rows(engine, bot) if pnl is not None]


def _fill(n: int, order: str, side: str, qty: str, price: str, minute: int) -> Fill:
    return Fill(f"x-{n}", order, None, "BTCUSDT", side, D(price), D(qty), D("0.05"),  # type: ignore[arg-type]
                from_ms(T0 + minute * M), fee_currency="USDT")  # fmt: skip


def test_a_fill_recorded_late_with_an_earlier_time_rebuilds(engine: Engine) -> None:
    ex, clock = make(engine, walk(0))
    journal = OrderJournal(engine, ex, environment="paper", clock=clock)
    inst = ex.instrument("BTCUSDT", "linear")
    journal.record_fills(B, [_fill(1, "e1", "Buy", "1", "100", 1)])
    kept = update_trade_pnl(engine, B, inst, {"e1"})
    journal.record_fills(B, [_fill(2, "e2", "Buy", "1", "104", 5)])
    assert update_trade_pnl(engine, B, inst, {"e2"}, kept) is kept  # appended
    assert kept.pos.avg == D(102)
    # the same time as the last applied, recorded after it: it sorts after it, appended too
    journal.record_fills(B, [_fill(3, "x3", "Sell", "1", "106", 5)])
    assert update_trade_pnl(engine, B, inst, {"x3"}, kept) is kept
    assert kept.pos.order_pnl["x3"] == D(4) - D("0.05") - D("0.05")  # entry fees shared by half
    # a sell made at minute 3 whose answer was lost, recorded now: it came before x3
    journal.record_fills(B, [_fill(4, "x4", "Sell", "1", "103", 3)])
    again = update_trade_pnl(engine, B, inst, {"x4"}, kept)
    assert again is not kept
    assert_rebuilt(engine, B, inst, again)
    # in time order: e1, x4 closes it (+3), e2, x3 closes that (+2); each pays its own fee and
    # the whole entry fee of the position it closes
    assert again.pos.order_pnl == {"x4": D("2.9"), "x3": D("1.9")}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_smaller_id_committed_late_rebuilds(engine: Engine) -> None:
    """PostgreSQL hands out ids at insert time but shows rows at commit: a transaction holding
    a smaller id can commit after the kept book applied a larger one."""
    ex, clock = make(engine, walk(0))
    journal = OrderJournal(engine, ex, environment="paper", clock=clock)
    inst = ex.instrument("BTCUSDT", "linear")
    journal.record_fills(B, [_fill(1, "e1", "Buy", "1", "100", 1)])
    kept = update_trade_pnl(engine, B, inst, {"e1"})
    slow = engine.connect()
    slow.begin()
    slow.execute(sa.text(
        "INSERT INTO executions (exec_id, order_id, bot, symbol, side, price, qty, fee, "
        "exec_time, recorded_at) VALUES ('x-slow', 'e2', :bot, 'BTCUSDT', 'Buy', 100, 1, 0, "
        ":t, :t)"), {"bot": B, "t": _fill(0, "", "Buy", "1", "1", 2).time},
    )  # fmt: skip
    journal.record_fills(B, [_fill(3, "e3", "Buy", "1", "102", 3)])  # a larger id, committed
    assert update_trade_pnl(engine, B, inst, {"e3"}, kept) is kept
    slow.commit()
    slow.close()
    again = update_trade_pnl(engine, B, inst, {"e2"}, kept)
    assert again is not kept
    assert_rebuilt(engine, B, inst, again)
    assert again.pos.qty == D(3)


def test_no_new_fill_appends_nothing(engine: Engine) -> None:
    ex, clock = make(engine, walk(0))
    journal = OrderJournal(engine, ex, environment="paper", clock=clock)
    inst = ex.instrument("BTCUSDT", "linear")
    kept = update_trade_pnl(engine, B, inst)
    assert (kept.count, kept.pos.side) == (0, 0)
    assert update_trade_pnl(engine, B, inst, None, kept) is kept
    journal.record_fills(B, [_fill(1, "e1", "Sell", "2", "100", 1)])
    journal.record_fills(A, [_fill(2, "a1", "Buy", "2", "100", 2)])  # another bot's
    assert update_trade_pnl(engine, B, inst, {"e1"}, kept) is kept
    assert (kept.count, kept.pos.side, kept.pos.qty) == (1, -1, D(2))
