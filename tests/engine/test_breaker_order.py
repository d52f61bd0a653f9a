"""The trade tick and the trade loop evaluate the circuit breakers in one order
(:data:`jiritsu.engine.risk.ORDER`): when two would trip, both record the same first one, and a
bot whose breaker is over its limit is paused before it decides in both."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jiritsu.clock import from_ms
from jiritsu.db.engine import make_engine, session_scope
from jiritsu.db.models import Trade
from jiritsu.engine.loop import LoopOptions, run_loop, run_tick
from jiritsu.engine.risk import ORDER
from jiritsu.events import EventType, record_event
from tests.engine.conftest import MIN, T0, frame, load, only_bot, store_candles
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT

LIMITS = {"JIRITSU_RISK__MAX_CONSECUTIVE_LOSSES": "2", "JIRITSU_RISK__EXCHANGE_FAILURE_LIMIT": "2"}
# FALL loses 1 a minute from 40000: 10 minutes move the index 0.025 %
CRASH = {"JIRITSU_RISK__CRASH_WINDOW_MINUTES": "10", "JIRITSU_RISK__CRASH_MOVE_PCT": "0.0001"}


def run(how: str, loaded: Any) -> None:
    """One cycle at the close of bar 29 (the RSI bot wants to buy there)."""
    if how == "tick":
        run_tick(loaded, now_ms=DECIDE + 5_000)
    else:
        options = LoopOptions(replay=(DECIDE, DECIDE + MIN), max_steps=1, install_signals=False)
        assert run_loop(loaded, options).exit_code == 0


def seed(loaded: Any, *, losses: int, failures: int) -> None:
    engine = make_engine(loaded.db_url)
    try:
        for k in range(failures):
            record_event(engine, "ERROR", EventType.EXCHANGE_ERROR, "timeout", bot="SubBot-B",
                         now=from_ms(T0 + k * MIN))  # fmt: skip
        with session_scope(engine) as session:
            for k in range(losses):
                trade = Trade(timestamp=from_ms(T0 + (10 + k) * MIN), sub_bot_name="SubBot-B",
                              symbol="BTCUSDT", order_id=f"o-{k}", side="Sell",
                              price=Decimal(40000), quantity=Decimal("0.001"), fee=Decimal("0.02"),
                              pnl=Decimal("-1"), position_effect="close")  # fmt: skip
                session.add(trade)
    finally:
        engine.dispose()


def outcome(loaded: Any) -> tuple[list[tuple[str, str]], int, list[str]]:
    """(scope, breaker) of every trip in order, the orders sent, the decisions' outcomes."""
    engine = make_engine(loaded.db_url)
    try:
        with engine.connect() as conn:
            trips = conn.execute(sa.text(
                "select bot, details from system_events where event_type = 'CIRCUIT_BREAKER' "
                "order by id"
            )).all()  # fmt: skip
            orders = conn.execute(sa.text("select count(*) from orders")).scalar_one()
            decisions = conn.execute(sa.text("select outcome from decisions")).scalars().all()
    finally:
        engine.dispose()
    found = [(bot or "global", json.loads(d)["breaker"]) for bot, d in trips]
    return found, orders, list(decisions)


def test_the_order_is_global_first_then_the_bots() -> None:
    assert ORDER == ("crash", "drawdown", "daily_loss", "loss_streak", "exchange_failures")


@pytest.mark.parametrize("how", ["tick", "loop"])
@pytest.mark.parametrize(
    ("losses", "failures", "env", "first"),
    [
        (2, 2, {}, ("SubBot-B", "loss_streak")),  # both of the bot's: the loss streak
        (0, 2, {}, ("SubBot-B", "exchange_failures")),  # paused before deciding
        (2, 2, CRASH, ("global", "crash")),  # a global one halts all: the bot's not evaluated
    ],
    ids=["losses-and-failures", "failures-only", "crash-and-losses"],
)
def test_tick_and_loop_trip_the_same_breaker_first(
    isolated_env: Path,
    how: str,
    losses: int,
    failures: int,
    env: dict[str, str],
    first: tuple[str, str],
) -> None:
    loaded = load(isolated_env, {**only_bot("SubBot-B", **RSI_BOT), **LIMITS, **env})
    store_candles(loaded, frame(FALL + QUIET))
    seed(loaded, losses=losses, failures=failures)
    run(how, loaded)
    trips, orders, decisions = outcome(loaded)
    assert trips == [first]
    assert orders == 0  # halted before the entry the rule wanted
    assert decisions == ["skipped"]  # the advisor is not asked while halted
