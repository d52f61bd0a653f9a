"""Crash safety against the fake Bybit (real pybit over loopback TLS): ``jiritsu trade-loop`` is
killed with SIGKILL in the middle of a split entry and restarted.

The first process decides, sends leg 0 of a 3-leg time-split entry (legs 3 s apart) and is
killed as soon as the exchange has that leg. The second process reconciles, finds the plan in
the database and sends legs 1 and 2 -- once each. Checked: the exchange got exactly three orders
with three distinct orderLinkIds, every fill is in ``executions`` exactly once, and the position
computed from the recorded fills equals the exchange's position.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from jiritsu.clock import wall_now
from jiritsu.db.engine import make_engine
from tests.conftest import REPO
from tests.engine.conftest import LOT_SIZING
from tests.exchange.bybit_env import BOTS, KEYS, UIDS
from tests.fakes.bybit import FakeBybit
from tests.processes import fake_bybit_env, jiritsu_env, run_jiritsu, start_jiritsu

MIN = 60_000


def falling_path(now_ms: int) -> list[tuple[int, float, float, float, float, int]]:
    """1-minute rows from 3 h ago to 1 h ahead, falling 5 per minute: RSI 0, an oversold BUY
    on every bar (true range 45: ATR 0.11 % -> the low-volatility bucket)."""
    start = (now_ms // MIN) * MIN - 180 * MIN
    rows = []
    for i in range(240):
        o = 40000.0 - 5 * i
        rows.append((start + i * MIN, o, o + 20, o - 25, o - 5, 2))
    return rows


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:  # the market clock follows real time (not pinned)
        server.add_account("main", UIDS["main"], *KEYS["main"], usdt=10000, master=True)
        for bot in BOTS:
            server.add_account(bot, UIDS[bot], *KEYS[bot], usdt=Decimal(1000))
        server.set_price_path("BTCUSDT", falling_path(int(time.time() * 1000)))
        yield server
        assert server.internal_errors == []


def loop_env(fake: FakeBybit, data_dir: Path) -> dict[str, str]:
    return jiritsu_env(data_dir, fake_bybit_env(fake), {
        "JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS": "5",
        "JIRITSU_NEWS_SENTIMENT__ENABLED": "false",
        **LOT_SIZING,
        "JIRITSU_RISK__CRASH_MOVE_PCT": "1",
        "JIRITSU_SUB_BOTS__SUBBOT_A__ENABLED": "false",
        "JIRITSU_SUB_BOTS__SUBBOT_B__ENABLED": "false",
        "JIRITSU_SUB_BOTS__SUBBOT_C__TIMEFRAME": "1",
        "JIRITSU_SUB_BOTS__SUBBOT_C__SPLIT_ENTRY__METHOD": "time",
        "JIRITSU_SUB_BOTS__SUBBOT_C__SPLIT_ENTRY__COUNT": "3",
        "JIRITSU_SUB_BOTS__SUBBOT_C__SPLIT_ENTRY__INTERVAL_SECONDS": "3",
        "JIRITSU_SUB_BOTS__SUBBOT_C__SPLIT_ENTRY__TIMEOUT_SECONDS": "600",
        "JIRITSU_SUB_BOTS__SUBBOT_C__STRATEGY_PARAMS__TP_SL_ENABLED": "false",
    })  # fmt: skip


def bot_orders(fake: FakeBybit) -> list[str]:
    return [o.order_link_id for o in fake.orders if o.account == "SubBot-C" and o.order_link_id]


def wait_for(predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_sigkill_in_the_middle_of_a_split_entry_then_restart(
    fake: FakeBybit, isolated_env: Path
) -> None:
    env = loop_env(fake, isolated_env)
    assert run_jiritsu(["db", "upgrade"], env).returncode == 0
    log1 = (isolated_env / "run1.out").open("w")
    first = start_jiritsu(["trade-loop"], env, stdout=log1, stderr=log1)
    try:
        wait_for(lambda: len(bot_orders(fake)) >= 1, timeout=60)
        first.send_signal(signal.SIGKILL)  # no cleanup, no last write
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL
    assert len(bot_orders(fake)) == 1, (isolated_env / "run1.out").read_text()

    log2 = (isolated_env / "run2.out").open("w")
    second = start_jiritsu(["trade-loop"], env, stdout=log2, stderr=log2)
    try:
        wait_for(lambda: len(bot_orders(fake)) >= 3, timeout=60)
        time.sleep(2.0)  # room for a duplicate to show up, if there were one
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
    out = (isolated_env / "run2.out").read_text()
    assert second.returncode == 0, out

    links = bot_orders(fake)
    assert len(links) == 3, links
    assert len(set(links)) == 3
    assert all(o.status == "Filled" for o in fake.orders if o.account == "SubBot-C")
    fills = [e for e in fake.executions if e.account == "SubBot-C"]
    position = fake.positions("SubBot-C")
    assert [(p.side, p.size) for p in position] == [("Buy", Decimal("0.003"))]

    engine = make_engine(f"sqlite:///{isolated_env / 'jiritsu.db'}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "select client_order_id, leg_index, status from orders order by leg_index"
            )).all()  # fmt: skip
            execs = conn.execute(sa.text("select exec_id, side, qty from executions")).all()
    finally:
        engine.dispose()
    assert sorted(r[0] for r in rows) == sorted(links)
    assert [(r[1], r[2]) for r in rows] == [(0, "filled"), (1, "filled"), (2, "filled")]
    assert sorted(e[0] for e in execs) == sorted(e.exec_id for e in fills)
    held = sum((Decimal(q) if s == "Buy" else -Decimal(q) for _, s, q in execs), Decimal(0))
    assert held == Decimal("0.003")


def test_an_exchange_that_keeps_failing_pauses_the_bot(fake: FakeBybit, isolated_env: Path) -> None:
    from jiritsu import controls
    from jiritsu.config import load_config
    from jiritsu.db import migrate
    from jiritsu.engine.loop import run_tick

    env = loop_env(fake, isolated_env)
    env.update({"JIRITSU_EXCHANGE__MAX_RETRIES": "0", "JIRITSU_RISK__EXCHANGE_FAILURE_LIMIT": "3"})
    loaded = load_config(REPO / "config.toml", environ=env)
    migrate.upgrade(loaded.db_url)
    fake.inject("/v5/execution/list", "http_503", times=None, account="SubBot-C")
    results = [run_tick(loaded) for _ in range(3)]
    assert [r.exit_code for r in results] == [1, 1, 1]  # an EXCHANGE_ERROR event, nothing sent
    # the third failure in a row pauses the bot in the tick that failed
    assert [r.trips for r in results] == [[], [], ["SubBot-C exchange_failures"]]
    assert results[2].halted == ["SubBot-C"]
    fourth = run_tick(loaded)
    assert fourth.trips == []  # already paused: no second trip, no second alert
    assert fourth.halted == ["SubBot-C"]
    engine = make_engine(loaded.db_url)
    try:
        state = controls.state(engine, "SubBot-C", now=wall_now())
        with engine.connect() as conn:
            levels = conn.execute(sa.text(
                "select level, event_type from system_events order by id"
            )).all()  # fmt: skip
    finally:
        engine.dispose()
    assert state.halted
    assert state.halted_by == "breaker"
    assert levels[:3] == [("ERROR", "EXCHANGE_ERROR")] * 3
    assert ("ERROR", "CIRCUIT_BREAKER") in levels
    assert bot_orders(fake) == []
