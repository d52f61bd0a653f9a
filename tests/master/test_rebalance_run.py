"""Rebalancing runs on the paper exchange (SQLite and PostgreSQL): what moves, what is recorded,
what a dry run and a halt leave untouched, and margin that stays where positions need it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.controls import halt
from jiritsu.db.models import MarketPhase, SystemEvent, Transfer
from jiritsu.errors import Halted
from jiritsu.exchange.types import OrderRequest
from jiritsu.master.phase import PhaseReading
from jiritsu.master.rebalance import run_rebalance
from jiritsu.notify import build_notifier
from tests.fakes.discord import FakeDiscord
from tests.master import A, B, C, D, paper, settings, utc

NOW = utc(2026, 1, 1, 4, 0)


def rows(engine: Engine, model: type) -> list:
    with Session(engine) as session:
        return list(session.query(model).order_by(model.id))


def equities(ex) -> dict[str, D]:
    return {bot: ex.balance(bot).equity for bot in (A, B, C)}


def reading(phase: str, now: datetime = NOW) -> PhaseReading:
    return PhaseReading(
        symbol="BTCUSDT",
        phase=phase,
        indicator="EMA_Cross",
        value=0.031,
        timeframe="60",
        bar_ts=now - timedelta(hours=1),
        close_ts=now,
        as_of=now,
        details={"spread": 0.031, "slope": 0.004},
    )


def test_rebalance_moves_records_and_reports_then_rests(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    with FakeDiscord() as fake:
        notifier = build_notifier(fake.url_for(), min_level="WARNING")
        result = run_rebalance(engine, ex, cfg, phase=reading("strong_bull"), now=NOW,
                               notifier=notifier)  # fmt: skip
        again = run_rebalance(engine, ex, cfg, phase="strong_bull", now=NOW + timedelta(hours=4))
        messages = list(fake.messages)

    # total 10000: strong_bull targets 2000 / 3000 / 5000 -> A and B give 1000 each to C
    assert result.ok
    assert int(result.exit_code) == 0
    assert [(o.from_account, o.to_account, o.amount, o.status) for o in result.outcomes] == [
        (A, C, D(1000), "success"),
        (B, C, D(1000), "success"),
    ]
    assert equities(ex) == {A: D(2000), B: D(3000), C: D(5000)}

    transfers = rows(engine, Transfer)
    assert [(t.kind, t.status, t.exchange_status, t.coin, t.environment) for t in transfers] == [
        ("rebalance", "success", "SUCCESS", "USDT", "paper")
    ] * 2
    first = transfers[0]
    assert (first.from_account_type, first.to_account_type, first.created_at) == (
        "UNIFIED",
        "UNIFIED",
        NOW,
    )
    assert first.idempotency_key == result.outcomes[0].key
    assert first.details["phase"] == "strong_bull"
    assert first.details["from"] == {"equity": "3000", "target": "2000.00"}
    assert first.reason.startswith("strong_bull: SubBot-A holds 3000.00 (target 2000.00, 20.0 %)")

    [event] = rows(engine, SystemEvent)
    assert (event.event_type, event.level) == ("REBALANCE", "INFO")
    assert event.message == "rebalance for strong_bull: moved 2000 USDT in 2 of 2 transfer(s)"
    assert [t["status"] for t in event.details["transfers"]] == ["success", "success"]
    [phase_row] = rows(engine, MarketPhase)
    assert (phase_row.phase, phase_row.ts) == ("strong_bull", NOW)

    [message] = messages
    text = json.dumps(message)
    assert "Rebalance: strong_bull" in text
    assert "[ok] SubBot-A -> SubBot-C 1000.00 USDT" in text
    assert "SubBot-C: 3000.00 -> target 5000.00 (50.0 %)" in text

    # Four hours later, already on target: nothing moves and nothing is recorded.
    assert again.outcomes == []
    assert again.plan.skipped == (
        "every bot is within the tolerance band (±500.00 = 5.0 % of 10000.00)",
    )
    assert len(rows(engine, Transfer)) == 2
    assert len(rows(engine, SystemEvent)) == 1


def test_dry_run_measures_and_plans_but_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    result = run_rebalance(engine, ex, cfg, phase=reading("strong_bear"), now=NOW, dry_run=True)
    # strong_bear targets 6000 / 2000 / 2000: B gives 2000, C 1000, both to A
    assert [(t.from_bot, t.to_bot, t.amount) for t in result.plan.transfers] == [
        (B, A, D(2000)),
        (C, A, D(1000)),
    ]
    assert result.dry_run
    assert result.outcomes == []
    assert equities(ex) == {A: D(3000), B: D(4000), C: D(3000)}
    for model in (Transfer, SystemEvent, MarketPhase):
        assert rows(engine, model) == []


def test_a_global_halt_moves_nothing(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    halt(engine, "global", "drawdown", now=NOW - timedelta(hours=1))
    for dry_run in (False, True):
        with pytest.raises(Halted, match=r"halted globally \(drawdown\)") as caught:
            run_rebalance(engine, ex, cfg, phase="strong_bull", now=NOW, dry_run=dry_run)
        assert int(caught.value.exit_code) == 4
    assert rows(engine, Transfer) == []
    assert equities(ex) == {A: D(3000), B: D(4000), C: D(3000)}


def test_a_halted_bot_is_left_alone(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    halt(engine, B, "5 losses in a row", now=NOW - timedelta(hours=1))
    result = run_rebalance(engine, ex, cfg, phase="strong_bull", now=NOW)
    # A and C only: shares .2 and .5 of 6000 -> targets 1714.29 and 4285.71
    assert result.excluded == {B: "halted: 5 losses in a row"}
    assert [(o.from_account, o.to_account, o.amount) for o in result.outcomes] == [
        (A, C, D("1285.71"))
    ]
    assert equities(ex) == {A: D("1714.29"), B: D(4000), C: D("4285.71")}


def test_margin_behind_an_open_position_never_moves(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, clock = paper(engine, cfg)
    ex.place_order(B, "linear", OrderRequest("b-long-1", "BTCUSDT", "Buy", D(25), "Market"))
    clock.advance()  # the next bar opens at 100: B holds 25 BTC, margin 2500, fee 1.375
    before = ex.balance(B)
    assert (before.equity, before.available) == (D("3998.625"), D("1498.625"))

    result = run_rebalance(engine, ex, cfg, phase="strong_bear", now=NOW)
    # total 9998.625 -> targets A 5999.18, B 1999.72, C 1999.72 (cents, half even)
    # B is 1998.905 above target but only 1498.625 is free: it gives 1498.62; C gives 1000.28
    assert result.plan.targets == {A: D("5999.18"), B: D("1999.72"), C: D("1999.72")}
    assert [(o.from_account, o.to_account, o.amount, o.status) for o in result.outcomes] == [
        (B, A, D("1498.62"), "success"),
        (C, A, D("1000.28"), "success"),
    ]
    assert "SubBot-B is 1998.90 above target but only 1498.62 is available" in (
        result.plan.skipped[0]
    )
    after = ex.balance(B)
    assert (after.equity, after.available) == (D("2500.005"), D("0.005"))
    [position] = ex.positions(B, "linear")
    assert position.size == D(25)  # untouched
