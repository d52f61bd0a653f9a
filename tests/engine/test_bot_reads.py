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


@pytest.mark.parametrize(("together", "transactions"), [(True, 3), (False, 6)],
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
    # together: the reads, the filled order asked by its id (no longer open), the reads again
    # since it moved; in turn: executions, positions, open orders, the order, executions,
    # positions
    assert len(locks(seen)) == transactions
    assert fills == 1
    assert (live.position_side, live.position_qty, live.open_rows) == (1, Decimal("0.003"), 0)
    assert (live.state[K.S_SIDE], live.state[K.S_QTY]) == (1.0, 0.003)
