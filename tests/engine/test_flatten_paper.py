"""Flatten in paper mode closes the position ``status`` shows, and a stop that closed a position
while no bot stepped is adopted by reconciliation with its PnL and position effect."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from jiritsu.clock import RealClock
from jiritsu.exchange.reconcile import BotAccount, reconcile
from jiritsu.status import collect_status
from jiritsu.usecases.control import Requester, flatten
from tests.engine.conftest import MIN, T0, frame, load, make_paper, only_bot, store_candles
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT

# After the 3-leg entry (filled by DECIDE + 3 min), a bar that falls through the stop (avg - 41)
DROP = [(39970.0, 39975.0, 39700.0, 39750.0)]
CANDLES = frame(FALL + QUIET[:6] + DROP + QUIET)
ENV = {**only_bot("SubBot-B", **RSI_BOT), "JIRITSU_PAPER__PRICE_SOURCE": "replay"}


def holding(isolated_env: Path) -> Any:
    """SubBot-B long 0.003 BTC with its stop below, the ledger worked up to DECIDE + 4 min (the
    stored candles go on past the drop)."""
    loaded = load(isolated_env, ENV)
    store_candles(loaded, CANDLES)
    paper = make_paper(loaded, CANDLES, DECIDE)
    runner = paper.runner("SubBot-B")
    for k in range(5):
        paper.at(DECIDE + k * MIN)
        runner.step(DECIDE + k * MIN, halted=False, decide=True)
    (pos,) = paper.rows("select size, stop_loss from paper_positions")
    assert Decimal(pos[0]) == Decimal("0.003")
    assert Decimal(pos[1]) > Decimal("39750")  # the drop bar would stop it out
    return paper


def test_flatten_closes_what_status_shows(isolated_env: Path) -> None:
    paper = holding(isolated_env)
    loaded = load(isolated_env, ENV)
    shown = next(b for b in collect_status(loaded).bots if b.name == "SubBot-B").positions
    assert [(p.side, p.size) for p in shown] == [("Buy", Decimal("0.003"))]
    # the operator's wall clock, years after the candles
    result = flatten(paper.engine, loaded, bot="SubBot-B", by=Requester(), clock=RealClock())
    assert result.report is not None
    closes = [line for line in result.report.lines if line.action == "close"]
    assert [(c.side, c.qty) for c in closes] == [("Sell", Decimal("0.003"))]
    assert "1 position(s) closing" in result.message
    # the stop below did not fire first: nothing closed the position but the flatten order
    assert paper.rows("select count(*) from paper_fills where side = 'Sell'") == [(0,)]
    (order,) = paper.rows("select side, qty, reduce_only, status from paper_orders "
                          "where side = 'Sell'")  # fmt: skip
    assert (order[0], Decimal(order[1]), bool(order[2]), order[3]) == (
        "Sell", Decimal("0.003"), True, "new")  # fmt: skip


def test_a_stop_adopted_by_reconcile_carries_its_pnl(isolated_env: Path) -> None:
    paper = holding(isolated_env)
    paper.at(T0 + 40 * MIN)  # the drop bar went by while no bot stepped: the stop fired
    assert paper.exchange.positions("SubBot-B", "linear", "BTCUSDT") == []
    report = reconcile(paper.engine, paper.exchange, [BotAccount("SubBot-B", "linear", "BTCUSDT")],
                       environment="paper", clock=paper.clock)  # fmt: skip
    assert report.count("fill_adopted") == 1
    (stop,) = paper.rows("select position_effect, pnl, quantity, price from trades "
                         "where side = 'Sell'")  # fmt: skip
    effect, pnl, qty, price = stop
    assert effect == "close"
    assert Decimal(qty) == Decimal("0.003")
    entries = paper.rows("select price, fee from trades where side = 'Buy'")
    avg = sum(Decimal(p) for p, _ in entries) / 3
    # a loss: below the entries' average, after the entry and exit fees
    assert Decimal(pnl) < (Decimal(price) - avg) * Decimal("0.003")
    assert Decimal(pnl) < 0
