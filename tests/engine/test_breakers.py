"""Each circuit breaker on the paper exchange: the trip, the halt in ``controls``, the event and
the Discord alert (through the loopback fake), and no second alert while halted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from jiritsu import controls
from jiritsu.clock import from_ms
from jiritsu.db.engine import session_scope
from jiritsu.db.models import Decision, PortfolioBotBalance, PortfolioSnapshot, Trade
from jiritsu.engine import risk
from jiritsu.events import EventType, record_event
from jiritsu.notify import build_notifier
from tests.engine.conftest import MIN, T0, flat, frame
from tests.fakes.discord import FakeDiscord

NOW = T0 + 2 * 60 * MIN  # 02:00


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


def snapshot(engine: Any, when: datetime, bots: dict[str, str], saved: str = "0") -> None:
    with session_scope(engine) as session:
        row = PortfolioSnapshot(
            timestamp=when,
            total_balance_usdt=sum((Decimal(v) for v in bots.values()), Decimal(0)),
            profit_saved_balance=Decimal(saved),
            environment="paper",
        )
        session.add(row)
        session.flush()
        for name, value in bots.items():
            session.add(PortfolioBotBalance(snapshot_id=row.id, bot_name=name, balance=value))


def strict(**risk_env: str) -> dict[str, str]:
    return {f"JIRITSU_RISK__{k.upper()}": v for k, v in risk_env.items()}


def assert_tripped(paper: Any, discord: FakeDiscord, scope: str, level: str, breaker: str) -> None:
    state = controls.state(paper.engine, scope, now=from_ms(NOW))
    assert state.halted
    assert state.halted_by == "breaker"
    assert state.reason.startswith(f"circuit breaker {breaker}: ")
    events = paper.rows("select level, event_type, details from system_events")
    assert [(e[0], e[1]) for e in events] == [(level, "CIRCUIT_BREAKER")]
    assert f'"breaker": "{breaker}"' in events[0][2]
    assert len(discord.messages) == 1
    assert "CIRCUIT_BREAKER" in discord.messages[0]["embeds"][0]["title"]


def trip_all(paper: Any, discord: FakeDiscord, trips: list[risk.Trip]) -> list[bool]:
    notifier = build_notifier(discord.url_for())
    settings = paper.loaded.settings
    return [risk.apply_trip(paper.engine, t, settings, now=from_ms(NOW), notifier=notifier)
            for t in trips]  # fmt: skip


def test_crash_on_the_index_symbol(paper_factory: Any, discord: FakeDiscord) -> None:
    # 60 minutes at 40000, then a fall to 36700 within the hour: -8.25 % > 8 %
    rows = flat(40000.0, 60) + [(40000.0 - 55 * i, 40001.0 - 55 * i, 39944.0 - 55 * i,
                                 39945.0 - 55 * i) for i in range(60)]  # fmt: skip
    paper = paper_factory(frame(rows), NOW, strict(crash_move_pct="0.08"))
    trip = risk.crash_trip(paper.ctx.feed, paper.loaded.settings, NOW)
    assert trip is not None
    assert trip.scope == controls.GLOBAL
    # newest bar (119) closes 36700; the bar 60 minutes before it (59) closed 40000
    assert trip.details["move"] == pytest.approx(36700 / 40000 - 1)
    assert trip.details["to"] == 36700.0
    # the arrays it reads are the bars a step sees
    window = paper.ctx.feed.minute_window("BTCUSDT", NOW, 62)
    bars = paper.ctx.feed.minute_bars("BTCUSDT", "linear", NOW, 62)
    assert window["ts"].tolist() == [b.ts for b in bars]
    assert window["close"].tolist() == [b.close for b in bars]
    assert len(bars) == 62
    assert trip_all(paper, discord, [trip, trip]) == [True, False]  # halted: no second alert
    assert_tripped(paper, discord, controls.GLOBAL, "CRITICAL", "crash")
    assert risk.crash_trip(paper.ctx.feed, paper.loaded.settings, T0 + 60 * MIN) is None
    # a crash lifts itself after its own cool-down (the shipped default), not cooldown_minutes
    state = controls.state(paper.engine, controls.GLOBAL, now=from_ms(NOW))
    cool = paper.loaded.settings.risk.crash_cooldown_minutes
    assert cool > 0
    assert paper.loaded.settings.risk.cooldown_minutes == 0
    assert state.cooldown_until == from_ms(NOW + cool * MIN)


def test_drawdown_from_the_peak_snapshot(paper_factory: Any, discord: FakeDiscord) -> None:
    paper = paper_factory(frame(flat(40000.0, 130)), NOW, strict(max_drawdown_pct="0.15"))
    settings = paper.loaded.settings
    value = risk.portfolio_value(paper.exchange, settings)
    assert (value.bots_total, value.savings) == (Decimal(10000), Decimal(0))
    snapshot(paper.engine, from_ms(T0), {"SubBot-A": "3000", "SubBot-B": "4500",
                                         "SubBot-C": "4000"})  # fmt: skip
    assert risk.drawdown_trip(paper.engine, value, settings) is None  # 1500 / 11500 = 13 %
    snapshot(paper.engine, from_ms(T0 + MIN), {"SubBot-A": "3500", "SubBot-B": "4500",
                                               "SubBot-C": "4000"})  # fmt: skip
    trip = risk.drawdown_trip(paper.engine, value, settings)  # 2000 / 12000 = 16.7 %
    assert trip is not None
    assert trip.details["drawdown"] == pytest.approx(2000 / 12000)
    trip_all(paper, discord, [trip])
    assert_tripped(paper, discord, controls.GLOBAL, "CRITICAL", "drawdown")
    # drawdown keeps cooldown_minutes (0: only a resume lifts it)
    assert controls.state(paper.engine, controls.GLOBAL, now=from_ms(NOW)).cooldown_until is None


def test_money_moved_to_savings_is_not_a_drawdown(paper_factory: Any) -> None:
    env = {**strict(max_drawdown_pct="0.05"), "JIRITSU_PAPER__MAIN_BALANCE": "1000",
           "JIRITSU_PAPER__STARTING_BALANCES": '{"SubBot-A": 3000, "SubBot-B": 3000, '
                                              '"SubBot-C": 3000}'}  # fmt: skip
    paper = paper_factory(frame(flat(40000.0, 130)), NOW, env)
    value = risk.portfolio_value(paper.exchange, paper.loaded.settings)
    assert (value.bots_total, value.savings) == (Decimal(9000), Decimal(1000))
    # before the weekly saving the bots held 10000 and nothing was saved
    snapshot(paper.engine, from_ms(T0), {"SubBot-A": "3000", "SubBot-B": "4000",
                                         "SubBot-C": "3000"})  # fmt: skip
    assert risk.drawdown_trip(paper.engine, value, paper.loaded.settings) is None
    # a real loss on top, measured against the capital at risk at the peak (10000): 6 %
    snapshot(paper.engine, from_ms(T0 + MIN), {"SubBot-A": "3600", "SubBot-B": "4000",
                                               "SubBot-C": "3000"}, saved="0")  # fmt: skip
    trip = risk.drawdown_trip(paper.engine, value, paper.loaded.settings)
    assert trip is not None
    assert trip.details["drawdown"] == pytest.approx(600 / 10600)


def late_row(engine: Any, snapshot_id: int, t: int, value: str) -> None:
    with session_scope(engine) as session:
        session.add(PortfolioSnapshot(id=snapshot_id, timestamp=from_ms(t), environment="paper",
                                      total_balance_usdt=Decimal(value),
                                      profit_saved_balance=Decimal(0)))  # fmt: skip
        session.flush()
        session.add(PortfolioBotBalance(snapshot_id=snapshot_id, bot_name="SubBot-A",
                                        balance=Decimal(value)))  # fmt: skip


def test_the_carried_peak_follows_added_deleted_and_late_snapshots(paper_factory: Any) -> None:
    """The drawdown peak is carried forward between checks (only newer snapshots are read);
    it still sees a new peak, a deleted peak, a row committed late under a lower id, a lift."""
    paper = paper_factory(frame(flat(40000.0, 130)), NOW, strict(max_drawdown_pct="0.15"))
    settings, engine = paper.loaded.settings, paper.engine
    value = risk.portfolio_value(paper.exchange, settings)  # 10000
    bots = {"SubBot-A": "3000", "SubBot-B": "4000", "SubBot-C": "4000"}
    snapshot(engine, from_ms(T0), bots)  # 11000: 9 %
    assert risk.drawdown_trip(engine, value, settings) is None
    snapshot(engine, from_ms(T0 + MIN), {**bots, "SubBot-C": "5000"})  # 12000: 16.7 %
    trip = risk.drawdown_trip(engine, value, settings)
    assert trip is not None
    assert trip.details["peak"] == Decimal(12000)
    with session_scope(engine) as session:  # the peak deleted: back to 11000
        session.execute(sa.delete(PortfolioBotBalance).where(PortfolioBotBalance.snapshot_id == 2))
        session.execute(sa.delete(PortfolioSnapshot).where(PortfolioSnapshot.id == 2))
    assert risk.drawdown_trip(engine, value, settings) is None
    late_row(engine, 10, T0 + 2 * MIN, "11000")  # then one committed late under a lower id
    assert risk.drawdown_trip(engine, value, settings) is None
    late_row(engine, 9, T0 + MIN, "13000")
    trip = risk.drawdown_trip(engine, value, settings)
    assert trip is not None
    assert trip.details["peak"] == Decimal(13000)
    controls.halt(engine, controls.GLOBAL, "test", now=from_ms(T0 + 3 * MIN))
    controls.resume(engine, controls.GLOBAL, now=from_ms(T0 + 3 * MIN))  # the peaks before go
    assert risk.drawdown_trip(engine, value, settings) is None


def test_daily_loss_against_the_day_start(paper_factory: Any, discord: FakeDiscord) -> None:
    paper = paper_factory(frame(flat(40000.0, 130)), NOW, strict(daily_loss_pct="0.05"))
    settings = paper.loaded.settings
    value = risk.portfolio_value(paper.exchange, settings)
    now = from_ms(NOW)
    assert risk.daily_loss_trip(paper.engine, value, settings, now) is None  # no base yet
    # yesterday 23:00 (the last snapshot before midnight): 10400 -> today 10000 = 3.8 %
    snapshot(paper.engine, from_ms(T0) - timedelta(hours=1), {"SubBot-A": "3400",
             "SubBot-B": "4000", "SubBot-C": "3000"})  # fmt: skip
    assert risk.daily_loss_trip(paper.engine, value, settings, now) is None
    # a snapshot exactly at 00:00 is the base: 10600 -> 10000 = 5.66 %
    snapshot(paper.engine, from_ms(T0), {"SubBot-A": "3600", "SubBot-B": "4000",
                                         "SubBot-C": "3000"})  # fmt: skip
    trip = risk.daily_loss_trip(paper.engine, value, settings, now)
    assert trip is not None
    assert trip.details["loss"] == pytest.approx(600 / 10600)
    trip_all(paper, discord, [trip])
    assert_tripped(paper, discord, controls.GLOBAL, "CRITICAL", "daily_loss")


def closing_trade(engine: Any, bot: str, minute: int, pnl: str) -> None:
    with session_scope(engine) as session:
        session.add(
            Trade(
                timestamp=from_ms(T0 + minute * MIN),
                sub_bot_name=bot,
                symbol="BTCUSDT",
                order_id=f"o-{bot}-{minute}",
                side="Sell",
                price=Decimal(40000),
                quantity=Decimal("0.001"),
                fee=Decimal("0.02"),
                pnl=Decimal(pnl),
                position_effect="close",
            )
        )


def test_loss_streak_pauses_one_bot(paper_factory: Any, discord: FakeDiscord) -> None:
    # the loss streak has its own cool-down: the global one (0, until resumed) does not apply
    env = strict(max_consecutive_losses="3", cooldown_minutes="0",
                 loss_streak_cooldown_minutes="60")  # fmt: skip
    paper = paper_factory(frame(flat(40000.0, 130)), NOW, env)
    settings = paper.loaded.settings
    for minute, pnl in enumerate(["-1", "2", "-1", "-0.5"]):
        closing_trade(paper.engine, "SubBot-B", minute, pnl)
    assert risk.loss_streak(paper.engine, "SubBot-B") == 2
    assert risk.loss_streak_trip(paper.engine, "SubBot-B", settings) is None
    closing_trade(paper.engine, "SubBot-B", 10, "-0.1")
    trip = risk.loss_streak_trip(paper.engine, "SubBot-B", settings)
    assert trip is not None
    assert trip.scope == "SubBot-B"
    assert trip.details == {"streak": 3}
    trip_all(paper, discord, [trip])
    assert_tripped(paper, discord, "SubBot-B", "ERROR", "loss_streak")
    state = controls.state(paper.engine, "SubBot-B", now=from_ms(NOW))
    assert state.cooldown_until == from_ms(NOW + 60 * MIN)
    assert not controls.halted(paper.engine, "SubBot-A", now=from_ms(NOW)).halted
    # a trade closed while paused (a stop of the position it held) does not count after
    closing_trade(paper.engine, "SubBot-B", 150, "-0.2")
    # the cool-down lifts it; the streak counts afresh from there
    assert not controls.state(paper.engine, "SubBot-B", now=from_ms(NOW + 60 * MIN)).halted
    assert risk.loss_streak(paper.engine, "SubBot-B") == 0
    # a fill stamped at the very minute of the lift came after it (its bar opens then): it
    # counts, as in the backtest (SubBot-C on 2018-11-12 14:05 lost a trade there)
    closing_trade(paper.engine, "SubBot-B", 180, "-0.3")
    assert risk.loss_streak(paper.engine, "SubBot-B") == 1


def test_exchange_failures_pause_one_bot(paper_factory: Any, discord: FakeDiscord) -> None:
    paper = paper_factory(frame(flat(40000.0, 130)), NOW, strict(exchange_failure_limit="3"))
    settings = paper.loaded.settings
    for minute in range(2):
        record_event(paper.engine, "ERROR", EventType.EXCHANGE_ERROR, "timeout", bot="SubBot-C",
                     now=from_ms(T0 + minute * MIN))  # fmt: skip
    assert risk.exchange_failure_trip(paper.engine, "SubBot-C", settings) is None
    with session_scope(paper.engine) as session:  # written before each send: no success
        session.add(Decision(bot="SubBot-C", created_at=from_ms(T0 + 3 * MIN), provider="rules"))
    assert risk.exchange_failures(paper.engine, "SubBot-C") == 2
    # a step whose exchange calls all succeeded ends the run
    risk.record_recovery(paper.engine, "SubBot-C", 2, now=from_ms(T0 + 5 * MIN))
    assert risk.exchange_failures(paper.engine, "SubBot-C") == 0
    for minute in range(6, 8):
        record_event(paper.engine, "ERROR", EventType.EXCHANGE_ERROR, "timeout", bot="SubBot-C",
                     now=from_ms(T0 + minute * MIN))  # fmt: skip
    # a refused order is a failure too; a refused TP/SL (a WARNING) is not
    record_event(paper.engine, "WARNING", EventType.ORDER_ERROR, "TP/SL refused", bot="SubBot-C",
                 now=from_ms(T0 + 8 * MIN))  # fmt: skip
    record_event(paper.engine, "ERROR", EventType.ORDER_ERROR, "refused", bot="SubBot-C",
                 now=from_ms(T0 + 8 * MIN))  # fmt: skip
    trip = risk.exchange_failure_trip(paper.engine, "SubBot-C", settings)
    assert trip is not None
    assert trip.details == {"failures": 3}
    with session_scope(paper.engine) as session:
        session.execute(sa.text("delete from system_events"))  # only the trip's event below
    trip_all(paper, discord, [trip])
    assert_tripped(paper, discord, "SubBot-C", "ERROR", "exchange_failures")


def test_halt_state_changes_are_counted_per_database(paper_factory: Any) -> None:
    """A simulation reads the halt states again only after this process changed one: every
    change (a halt, a resume, a cool-down lifted on reading) is counted, a plain read is not."""
    paper = paper_factory(frame(flat(40000.0, 120)), NOW)
    engine = paper.engine
    seen = [controls.writes(engine)]
    assert controls.halt(engine, "SubBot-A", "test", cooldown_minutes=5, now=from_ms(NOW))
    seen.append(controls.writes(engine))
    assert not controls.halt(engine, "SubBot-A", "again", now=from_ms(NOW))  # already halted
    controls.all_states(engine)
    controls.state(engine, "SubBot-A", now=from_ms(NOW + MIN))  # not elapsed: still halted
    seen.append(controls.writes(engine))
    assert not controls.state(engine, "SubBot-A", now=from_ms(NOW + 5 * MIN)).halted  # lifted
    seen.append(controls.writes(engine))
    assert controls.halt(engine, controls.GLOBAL, "test", now=from_ms(NOW + 6 * MIN))
    assert controls.resume(engine, controls.GLOBAL, now=from_ms(NOW + 7 * MIN))
    seen.append(controls.writes(engine))
    assert [n - seen[0] for n in seen] == [0, 1, 1, 2, 4]
