"""A bot keeps its trade book between re-reads on the paper exchange: a re-read after a fill
applies that fill to the kept book, which is then exactly the book rebuilt from every recorded
fill; after a resync (a reconciliation, a failed step, a reload) the book is rebuilt, so a fill
recorded behind the bot's back -- here with an earlier time -- is in it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from jiritsu.exchange.book import rebuild
from tests.engine.conftest import MIN, frame, only_bot
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT

BOT = "SubBot-B"


def test_the_kept_book_is_the_rebuild_at_every_re_read(paper_factory: Any) -> None:
    env = only_bot(BOT, **{**RSI_BOT, "split_entry__enabled": "false"})
    spike = (39970.0, 41000.0, 39960.0, 40900.0)  # through any take profit
    paper = paper_factory(frame(FALL + QUIET[:3] + [spike] + QUIET), DECIDE, env)
    runner = paper.runner(BOT)
    inst, books, seen = runner.inst, [], []
    for k in range(5):  # the entry goes out, fills; the spike's bar fills the take profit
        paper.at(DECIDE + k * MIN)
        runner.step(DECIDE + k * MIN, halted=False, decide=True)
        live, _ = runner.read_state(DECIDE + k * MIN)
        assert live.book == rebuild(paper.engine, BOT, inst).pos
        books.append(live.book)
        seen.append((live.book.side, len(live.book.order_pnl)))
    assert seen[1:] == [(1, 0), (1, 0), (1, 0), (0, 1)]  # filled; closed, priced
    assert all(b is books[0] for b in books)  # built once, then only appended to

    # a fill the exchange listed late, recorded by a reconciliation with its earlier time
    [entry] = paper.exchange.executions(BOT, "linear")[:1]
    late = replace(entry, exec_id="late-1", exchange_order_id="late-order",
                   client_order_id=None, time=entry.time - timedelta(seconds=30))  # fmt: skip
    paper.ctx.journal.record_fills(BOT, [late])
    runner.resync()
    live, fills = runner.read_state(DECIDE + 5 * MIN)
    assert fills == 0
    assert live.book is not books[0]
    assert live.book == rebuild(paper.engine, BOT, inst).pos
    assert live.book.qty == entry.qty  # the late buy is still held
    assert live.book.opened == late.time
