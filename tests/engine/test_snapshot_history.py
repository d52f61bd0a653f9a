"""The equity breakers' answers from memory (a simulation's database is its own) equal the
database's: over random sequences of snapshots (the loop's, fed to the history, and others'
that it must read), trips and lifts of the global halt, UTC midnights and money moved between
the bots and the savings, on SQLite and PostgreSQL. And the crash rule's moves computed once
over the stored bars give the trip the feed's window gives at every step time."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
import sqlalchemy as sa

from jiritsu import controls
from jiritsu.clock import SimClock, from_ms
from jiritsu.engine import risk
from jiritsu.exchange import ledger
from jiritsu.exchange.types import MAIN, OrderRequest, TransferRequest
from jiritsu.market.data import MarketData
from jiritsu.market.frames import CANDLE_SCHEMA
from jiritsu.master import snapshot as master_snapshot
from tests.engine.conftest import MIN, T0, flat, frame

HOUR = 60 * MIN
HOUR_TD = timedelta(hours=1)
BOTS = ("SubBot-A", "SubBot-B", "SubBot-C")


def db_env(db_url: str) -> dict[str, str]:
    kind = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    return {
        "JIRITSU_DATABASE__DB_TYPE": kind,
        "JIRITSU_DATABASE__DB_URL": db_url,
        "JIRITSU_DATABASE__DB_URL_ENV": "",
        "JIRITSU_RISK__MAX_DRAWDOWN_PCT": "0.002",
        "JIRITSU_RISK__DAILY_LOSS_PCT": "0.003",
    }


def peak_from_database(engine: Any, lift: Any) -> tuple[Decimal, Decimal] | None:
    """The highest snapshot since ``lift`` from every row read afresh (earliest of equals)."""
    best = None
    for sid, ts, v, s in risk._snapshot_rows(engine, lift):
        if best is None or v > best[0] or (v == best[0] and (ts, sid) < (best[1], best[2])):
            best = (v, ts, sid, s)
    return None if best is None else (best[0], best[3])


def credit(paper: Any, bot: str, delta: Decimal, t: int) -> None:
    with ledger.locked_session(paper.engine) as session:
        ledger.credit(session, bot, "UNIFIED", "USDT", delta, from_ms(t))


def move_money(paper: Any, rng: random.Random, t: int, n: int) -> None:
    """A gain or loss in cents in a bot's wallet, SubBot-A's equity (its position's PnL in 8
    decimals) made a whole number of cents (its balance then ends in zeros the database drops),
    a transfer between bots or a saving into the main account's FUND wallet."""
    what = rng.random()
    if what < 0.4:
        credit(paper, rng.choice(BOTS), Decimal(rng.randint(-3000, 3000)).scaleb(-2), t)
    elif what < 0.55:
        equity = paper.exchange.balance("SubBot-A").equity
        credit(paper, "SubBot-A", equity.quantize(Decimal("0.01")) - equity, t)
    else:
        src, dst = rng.sample(BOTS, 2)
        amount = Decimal(rng.randint(1, 5000)).scaleb(-2)
        to_wallet = "UNIFIED"
        if what > 0.75:  # (the value stays, the savings move: equal values, other savings)
            dst, to_wallet = MAIN, "FUND"
        paper.exchange.transfer(TransferRequest(f"t-{n}", "USDT", amount, src, dst,
                                                to_wallet=to_wallet))  # fmt: skip


def agree(paper: Any, history: risk.SnapshotHistory, now: Any) -> tuple[Any, Any]:
    """Every answer of the history is the database's; the two trips (None: under the limit)."""
    settings, engine = paper.loaded.settings, paper.engine
    value = risk.portfolio_value(paper.exchange, settings)
    lift = risk._lift_time(engine, controls.GLOBAL)
    same(history.lift_time(), lift)
    same(history.peak(lift), peak_from_database(engine, lift))
    same(history.peak(lift), risk._peak_since(engine, lift))
    since = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    same(history.values(since), risk._snapshot_values(engine, since))
    found = (risk.drawdown_trip(engine, value, settings),
             risk.daily_loss_trip(engine, value, settings, now))  # fmt: skip
    same(risk.drawdown_trip(engine, value, settings, history), found[0])
    same(risk.daily_loss_trip(engine, value, settings, now, history), found[1])
    return found


def same(a: Any, b: Any) -> None:
    assert repr(a) == repr(b)  # (Decimal('1.0') == Decimal('1'): the digits must agree too)


@pytest.mark.parametrize("seed", [1, 2])
def test_the_history_answers_as_the_database(paper_factory: Any, db_url: str, seed: int) -> None:
    rng = random.Random(seed)
    start = T0 - 2 * 24 * HOUR
    walk = np.round(40000 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 4e-4, 20000))))
    candles = frame([(c, c + 5, c - 5, c) for c in walk.tolist()], start)
    paper = paper_factory(candles, start, db_env(db_url))
    start += 5 * MIN
    paper.at(start)
    settings, engine = paper.loaded.settings, paper.engine
    # an open position: its unrealised PnL moves the equity (in digits the ledger leaves)
    paper.exchange.place_order(
        "SubBot-A", "linear", OrderRequest("open-1", "BTCUSDT", "Buy", Decimal("0.013"))
    )
    master_snapshot.take_snapshot(engine, paper.exchange, settings, now=from_ms(start))
    history = risk.SnapshotHistory(engine)  # (a row before it is read from the database)
    t, trips, lifts, others, tripped = start, 0, 0, 0, [0, 0]
    for n in range(260):
        t += rng.choice([HOUR, HOUR, HOUR, 17 * MIN, 3 * HOUR, 0])  # (0: a second at once)
        now = from_ms(t)
        paper.at(t)
        for k in range(rng.choice([0, 0, 1, 2])):
            move_money(paper, rng, t, 10 * n + k)
        act = rng.random()
        if act < 0.06:
            trips += controls.halt(engine, controls.GLOBAL, "test", now=now,
                                   cooldown_minutes=rng.choice([0, 90]))  # fmt: skip
        elif act < 0.12:
            lifts += controls.resume(engine, controls.GLOBAL, now=now)
        else:
            controls.state(engine, controls.GLOBAL, now=now)  # lifts an elapsed cool-down
        kind = rng.random()
        if kind < 0.7:  # the loop's own snapshot
            risk.take_snapshot(engine, paper.exchange, settings, now=now, history=history)
        elif kind < 0.85:  # someone else's (profit saving's), sometimes out of time order
            when = now - timedelta(minutes=rng.choice([0, 0, 30]))
            master_snapshot.take_snapshot(engine, paper.exchange, settings, now=when)
            others += 1
        found = agree(paper, history, now)
        tripped = [n + (trip is not None) for n, trip in zip(tripped, found, strict=True)]
    # the sequence went through what it is meant to: trips and lifts, midnights, foreign rows
    assert min(trips, lifts) >= 3
    assert others >= 10
    assert (t - start) // (24 * HOUR) >= 8
    assert len(history.rows) == len(risk._snapshot_rows(engine)) > 150
    assert min(tripped) >= 10  # both rules over their limits in some checks, not in others
    assert max(tripped) <= 230
    # a new peak written by another writer, stamped before the rows the peak has seen
    t += HOUR
    paper.at(t)
    risk.take_snapshot(engine, paper.exchange, settings, now=from_ms(t), history=history)
    agree(paper, history, from_ms(t))
    credit(paper, "SubBot-B", Decimal(900), t)
    master_snapshot.take_snapshot(engine, paper.exchange, settings, now=from_ms(t - 30 * MIN))
    agree(paper, history, from_ms(t))
    assert (
        history.peak(history.lift_time())[0] == risk.portfolio_value(paper.exchange, settings).value
    )


def count_statements(engine: Any) -> list[str]:
    seen: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: seen.append(statement))  # fmt: skip
    return seen


def test_checks_after_the_loops_own_snapshot_read_nothing(paper_factory: Any) -> None:
    """Once the rows are read, a check after the loop's own snapshot asks the database
    nothing; another writer's snapshot or a halt-state change is read once."""
    paper = paper_factory(frame(flat(40000.0, 10)), T0)
    settings, engine = paper.loaded.settings, paper.engine
    history = risk.SnapshotHistory(engine)
    value = risk.take_snapshot(engine, paper.exchange, settings, now=from_ms(T0), history=history)
    now = from_ms(T0 + HOUR)
    risk.check_portfolio(engine, paper.exchange, None, settings, now=now, value=value,
                         history=history)  # fmt: skip
    statements = count_statements(engine)
    for hour in range(2, 6):
        now = from_ms(T0 + hour * HOUR)
        paper.at(T0 + hour * HOUR)
        value = risk.take_snapshot(engine, paper.exchange, settings, now=now, history=history)
        before = len(statements)
        assert risk.check_portfolio(engine, paper.exchange, None, settings, now=now, value=value,
                                    history=history) == []  # fmt: skip
        assert statements[before:] == []
    master_snapshot.take_snapshot(engine, paper.exchange, settings, now=now)
    controls.halt(engine, controls.GLOBAL, "test", now=now)
    before = len(statements)
    risk.check_portfolio(engine, paper.exchange, None, settings, now=now, value=value,
                         history=history)  # fmt: skip
    read = [s for s in statements[before:] if s.lstrip().upper().startswith("SELECT")]
    assert len(read) == 3  # the new snapshot row and its balances, the lift time
    assert len(history.rows) == 6


def test_crash_moves_give_the_windows_trip_at_every_step_time(paper_factory: Any) -> None:
    """Random walks with jumps and gaps (missing minutes and hours): at every minute, at times
    between minutes and before the first bar, the move computed once over all the bars trips as
    the feed's window of the step does, with the same message and details."""
    rng = np.random.default_rng(7)
    ts, t = [], T0
    for _ in range(3000):
        t += MIN * int(rng.choice([1, 1, 1, 1, 2, 7, 61]))
        ts.append(t)
    close = 40000.0 * np.exp(np.cumsum(rng.normal(0, 0.004, len(ts))))
    close[rng.integers(0, len(ts), 20)] *= 1.12  # jumps past crash_move_pct
    candles = pl.DataFrame({"ts": ts, "open": close, "high": close * 1.001,
                            "low": close * 0.999, "close": close, "volume": [1.0] * len(ts)},
                           schema=CANDLE_SCHEMA)  # fmt: skip
    paper = paper_factory(frame(flat(40000.0, 10)), T0, {"JIRITSU_RISK__CRASH_MOVE_PCT": "0.06"})
    settings = paper.loaded.settings
    feed = MarketData(None, SimClock(T0), {"BTCUSDT": candles}, days=None)
    feed.add("BTCUSDT", candles)
    moves = risk.CrashMoves(feed, settings)
    times = [
        T0 - MIN,
        T0,
        T0 + MIN + 1,
        *range(T0, ts[-1] + 3 * MIN, MIN),
        *(int(x) for x in rng.integers(T0, ts[-1], 400)),
    ]
    tripped = 0
    for now in times:
        expected = risk.crash_trip(feed, settings, now)
        same(moves.trip(settings, now), expected)
        tripped += expected is not None
    assert tripped > 20
    assert moves.serves(feed, settings)
    closes = {x + MIN for x in ts}  # (a bar closes at each of these)
    assert [int(x) for x in moves.minutes(settings)] == [
        now for now in range(T0, ts[-1] + 3 * MIN, MIN)
        if now in closes and risk.crash_trip(feed, settings, now) is not None
    ]  # fmt: skip


def test_a_private_loop_records_the_newest_phase_as_the_database_has_it(
    paper_factory: Any,
) -> None:
    """The phase a simulation's snapshot records is read again only after a reading was
    stored in this process (a reading of its bar already stored counts too): over readings
    stored out of time order and twice, it is always the database's newest."""
    from jiritsu.engine.loop import TradeLoop
    from jiritsu.master.phase import PhaseReading, latest_phase, record_reading, writes

    paper = paper_factory(frame(flat(40000.0, 10)), T0)
    engine = paper.engine
    loop = TradeLoop(lambda: paper.loaded)
    loop.ctx = paper.ctx
    assert loop._latest_phase() is None  # live: the snapshot looks it up itself
    loop.private_db = True
    assert loop._latest_phase() is None  # (read: no reading yet)
    statements = count_statements(engine)
    rng = random.Random(3)
    marks = [writes(engine)]
    for _ in range(40):
        stored = rng.random() < 0.5
        if stored:
            close = from_ms(T0 + rng.randint(0, 30) * 4 * HOUR)
            phase = rng.choice(["bull", "weak_bull", "range", "weak_bear", "bear"])
            record_reading(engine, PhaseReading("BTCUSDT", phase, "EMA_Cross", 0.01, "60",
                                                close - HOUR_TD, close, close, {}))  # fmt: skip
            marks.append(writes(engine))
        before = len(statements)
        found = loop._latest_phase()
        assert len(statements) - before == int(stored)  # read again only after a reading
        assert found == latest_phase(engine, "BTCUSDT")
    assert marks == list(range(marks[0], marks[0] + len(marks)))
    assert len(marks) > 10
