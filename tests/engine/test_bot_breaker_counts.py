"""The bot breakers a decision asks (loss streak, exchange failures), read with one lift time on
one connection in three queries, against a model of their definitions over random histories of
closing trades, failures, recoveries, halts and resumes (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu import controls
from jiritsu.db.models import SystemEvent, Trade
from jiritsu.engine import risk
from jiritsu.events import EventType, record_event

BOT, OTHER = "SubBot-B", "SubBot-C"
T0 = datetime(2019, 5, 1, tzinfo=timezone.utc)
SETTINGS = SimpleNamespace(risk=SimpleNamespace(max_consecutive_losses=3, exchange_failure_limit=2))
FAILURES = {EventType.EXCHANGE_ERROR.value, EventType.ORDER_ERROR.value}


class Model:
    """The definitions in the risk module's docstring, over what was written."""

    def __init__(self) -> None:
        self.trades: list[tuple[datetime, int, str, str, Decimal | None]] = []
        self.events: list[tuple[int, datetime, str, str, str]] = []  # id, time, bot, level, type
        self.lift: datetime | None = None

    def streak(self) -> int:
        mine = [t for t in self.trades if t[2] == BOT and t[3] == "close" and t[4] is not None]
        if self.lift is not None:
            mine = [t for t in mine if t[0] >= self.lift]
        streak = 0
        for trade in sorted(mine, key=lambda t: (t[0], t[1]), reverse=True):
            pnl = trade[4]
            if pnl is None or pnl >= 0:
                break
            streak += 1
        return streak

    def failures(self) -> int:
        mine = [e for e in self.events if e[2] == BOT]
        ends = [e[0] for e in mine if e[3] == "INFO" and e[4] == EventType.EXCHANGE_ERROR.value]
        after = max(ends, default=None)
        return sum(
            1
            for e in mine
            if e[3] == "ERROR"
            and e[4] in FAILURES
            and (after is None or e[0] > after)
            and (self.lift is None or e[1] >= self.lift)
        )


def _trade(engine: Engine, when: datetime, bot: str, effect: str, pnl: Decimal | None) -> int:
    with engine.begin() as conn:
        key = conn.execute(
            sa.insert(Trade),
            {"timestamp": when, "sub_bot_name": bot, "symbol": "BTCUSDT",
             "order_id": f"o-{when.timestamp()}-{random.random()}", "side": "Sell",
             "price": Decimal(40000), "quantity": Decimal("0.001"), "pnl": pnl,
             "position_effect": effect, "created_at": when},
        ).inserted_primary_key  # fmt: skip
    assert key is not None
    return int(key[0])


def _newest_event(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(SystemEvent.id))).scalar_one())


def test_check_bot_counts_as_the_definitions_over_random_histories(engine: Engine) -> None:
    rng = random.Random(5)
    model = Model()
    now = T0
    for step in range(260):
        now += timedelta(minutes=rng.choice([0, 0, 1, 5]))  # ties with lifts and each other
        op = rng.random()
        bot = BOT if rng.random() < 0.8 else OTHER
        if op < 0.45:
            effect = "close" if rng.random() < 0.85 else "open"
            pnl = rng.choice([Decimal("-1.5"), Decimal("-0.01"), Decimal(0), Decimal(2), None])
            trade_id = _trade(engine, now, bot, effect, pnl)
            model.trades.append((now, trade_id, bot, effect, pnl))
        elif op < 0.8:
            level, kind = rng.choice([
                ("ERROR", EventType.EXCHANGE_ERROR), ("ERROR", EventType.ORDER_ERROR),
                ("WARNING", EventType.ORDER_ERROR), ("INFO", EventType.EXCHANGE_ERROR),
                ("ERROR", EventType.ORDER),
            ])  # fmt: skip
            record_event(engine, level, kind, f"event {step}", None, bot=bot, now=now)
            model.events.append((_newest_event(engine), now, bot, level, kind.value))
        elif op < 0.9:
            if controls.halt(engine, BOT, "test", now=now):
                model.lift = now
        elif controls.resume(engine, BOT, now=now):
            model.lift = now
        trips = {t.breaker: t.details for t in risk.check_bot(engine, BOT, SETTINGS)}
        streak, failures = model.streak(), model.failures()
        assert (risk.loss_streak(engine, BOT), risk.exchange_failures(engine, BOT)) == (
            streak, failures), step  # fmt: skip
        want: dict[str, Any] = {}
        if streak >= 3:
            want["loss_streak"] = {"streak": streak}
        if failures >= 2:
            want["exchange_failures"] = {"failures": failures}
        assert trips == want, step


def test_check_bot_runs_statements_built_once(engine: Engine) -> None:
    """Before and after a lift, every check runs the same statement objects (the bot and the
    lift time are parameters), three each: the lift, the streak, the failures."""
    runs: list[list[int]] = []

    def seen(_conn: Any, statement: Any, *_args: Any) -> None:
        runs[-1].append(id(statement))

    sa.event.listen(engine, "before_execute", seen)
    try:
        for bot in (BOT, OTHER, BOT):
            runs.append([])
            risk.check_bot(engine, bot, SETTINGS)
        runs.append([])  # the halt's and the resume's own statements
        assert controls.halt(engine, BOT, "test", now=T0)
        assert controls.resume(engine, BOT, now=T0 + timedelta(minutes=1))
        for _ in range(2):
            runs.append([])
            risk.check_bot(engine, BOT, SETTINGS)
    finally:
        sa.event.remove(engine, "before_execute", seen)
    assert len(runs[0]) == 3
    assert runs[0] == runs[1] == runs[2]
    assert runs[4] == runs[5]
    assert runs[4][0] == runs[0][0]
    assert runs[4][1:] != runs[0][1:]
