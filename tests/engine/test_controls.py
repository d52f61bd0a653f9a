"""halt / resume / flatten and the one-shot tick: library and command line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from jiritsu import controls
from jiritsu.clock import from_ms
from jiritsu.engine.flatten import flatten
from jiritsu.engine.loop import run_tick
from jiritsu_cli.main import app
from tests.engine.conftest import MIN, OFFLINE, frame, load, only_bot, store_candles
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT

runner = CliRunner()


def test_flatten_cancels_closes_and_halts(paper_factory: Any) -> None:
    env = only_bot("SubBot-B", **{**RSI_BOT, "split_entry__method": "price"})
    paper = paper_factory(frame(FALL + QUIET), DECIDE, env)
    bot = paper.runner("SubBot-B")
    for k in range(2):  # leg 0 fills at DECIDE's bar; legs 1 and 2 rest below the market
        paper.at(DECIDE + k * MIN)
        bot.step(DECIDE + k * MIN, halted=False, decide=True)
    now = DECIDE + 2 * MIN
    paper.at(now)
    report = flatten(paper.engine, paper.exchange, paper.loaded.settings, bot="SubBot-B",
                     clock=paper.clock)  # fmt: skip
    lines = [(x.action, x.side, x.qty) for x in report.lines]
    assert lines == [
        ("cancelled", "Buy", Decimal("0.001")),
        ("cancelled", "Buy", Decimal("0.001")),
        ("close", "Sell", Decimal("0.001")),
    ]
    assert report.halted == ["SubBot-B"]
    assert controls.halted(paper.engine, "SubBot-B", now=from_ms(now)).halted
    assert not controls.halted(paper.engine, "SubBot-A", now=from_ms(now)).halted
    paper.at(now + MIN)
    assert paper.exchange.step() == 1  # the closing market order fills at the next open
    assert paper.exchange.positions("SubBot-B", "linear", "BTCUSDT") == []
    assert paper.rows("select status from paper_orders where order_type = 'Limit'") == [
        ("cancelled",), ("cancelled",)]  # fmt: skip
    # the loop, still running, sees the halt: no new entry although the rule still says BUY
    report2 = bot.step(now + MIN, halted=True, decide=True)
    assert report2.orders == []
    (event,) = paper.rows("select level, event_type, message from system_events "
                          "where event_type = 'HALT'")  # fmt: skip
    assert event[:2] == ("WARNING", "HALT")
    assert "1 position(s) closing" in event[2]


def test_flatten_everything_halts_globally(paper_factory: Any) -> None:
    paper = paper_factory(frame(FALL + QUIET), DECIDE, only_bot("SubBot-B", **RSI_BOT))
    report = flatten(paper.engine, paper.exchange, paper.loaded.settings, bot=None,
                     clock=paper.clock)  # fmt: skip
    assert report.halted == [controls.GLOBAL]
    assert [x.action for x in report.lines] == ["flat", "flat", "flat"]
    assert controls.halted(paper.engine, now=from_ms(DECIDE)).halted


def test_tick_twice_in_the_same_bar_enters_once(isolated_env: Path) -> None:
    loaded = load(isolated_env, only_bot("SubBot-B", **RSI_BOT))
    store_candles(loaded, frame(FALL + QUIET))
    first = run_tick(loaded, now_ms=DECIDE + 5_000)
    second = run_tick(loaded, now_ms=DECIDE + 40_000)
    assert first.exit_code == 0
    assert second.exit_code == 0
    assert first.reports[0].acted
    assert first.reports[0].orders == ["Buy 0.001 Market leg 0"]
    assert second.reports[0].orders == []
    from jiritsu.db.engine import make_engine

    engine = make_engine(loaded.db_url)
    with engine.connect() as conn:
        import sqlalchemy as sa

        assert conn.execute(sa.text("select count(*) from orders")).scalar() == 1
        assert conn.execute(sa.text("select count(*) from decisions")).scalar() == 1
        beat = conn.execute(sa.text("select component from heartbeats")).scalars().all()
    engine.dispose()
    assert beat == ["trade-tick"]


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in OFFLINE.items():
        monkeypatch.setenv(key, value)


@pytest.mark.usefixtures("offline")
def test_halt_resume_and_the_ticks_exit_codes(isolated_env: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    halted = runner.invoke(app, ["halt", "--reason", "maintenance"])
    assert halted.exit_code == 0, halted.output
    assert "global halted: maintenance" in halted.output
    assert "already halted" in runner.invoke(app, ["halt", "--reason", "again"]).output
    tick = runner.invoke(app, ["trade-tick"])
    assert tick.exit_code == 4, tick.output
    status = runner.invoke(app, ["status"])
    assert "HALTED" in status.output
    assert "maintenance" in status.output
    assert runner.invoke(app, ["resume"]).exit_code == 0
    assert runner.invoke(app, ["halt", "--bot", "SubBot-C", "--reason", "x"]).exit_code == 0
    assert runner.invoke(app, ["trade-tick", "--bot", "SubBot-B"]).exit_code == 0
    assert runner.invoke(app, ["trade-tick", "--bot", "SubBot-C"]).exit_code == 4
    assert runner.invoke(app, ["resume", "--bot", "SubBot-C"]).exit_code == 0
    assert "was not halted" in runner.invoke(app, ["resume", "--bot", "SubBot-C"]).output
    unknown = runner.invoke(app, ["halt", "--bot", "SubBot-X", "--reason", "x"])
    assert unknown.exit_code == 2


@pytest.mark.usefixtures("offline")
def test_flatten_asks_first_and_refuses_without_a_terminal(isolated_env: Path) -> None:
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    refused = runner.invoke(app, ["flatten"])
    assert refused.exit_code == 2
    assert "confirm with --yes" in refused.output
    done = runner.invoke(app, ["flatten", "--bot", "SubBot-A", "--yes"])
    assert done.exit_code == 0, done.output
    assert "no position" in done.output
    assert "halted: SubBot-A" in done.output


def test_a_tick_never_trades_a_bot_another_process_is_trading(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jiritsu.engine import loop
    from jiritsu.locks import BotBusy, bot_lock

    loaded = load(isolated_env, only_bot("SubBot-B", **RSI_BOT))
    store_candles(loaded, frame(FALL + QUIET))
    monkeypatch.setattr(loop, "BOT_LOCK_WAIT", 0.3)
    with bot_lock(loaded.settings.general.data_dir, "SubBot-B", wait_seconds=0):  # a live loop
        with pytest.raises(BotBusy, match="SubBot-B: another process is working its orders"):
            run_tick(loaded, now_ms=DECIDE + 5_000)
    assert run_tick(loaded, now_ms=DECIDE + 40_000).reports[0].orders == [
        "Buy 0.001 Market leg 0"]  # fmt: skip
