"""The injected clock reaches every row a job writes: the master jobs, the controls and a trade
tick run on a simulated clock set to a fixed past time, and every timestamp they stored is that
time (or, for what the market did, an earlier bar's) -- never the wall clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from jiritsu.clock import SimClock, from_ms, to_ms
from jiritsu.db.engine import make_engine
from jiritsu.db.models import Base, Trade
from jiritsu.db.types import UTCDateTime
from jiritsu.engine.loop import run_tick
from jiritsu.exchange import ledger
from jiritsu.market.synth import synth_candles
from jiritsu.runtime import build_runtime
from jiritsu.usecases import control, master
from tests.engine.conftest import load, store_candles

START = datetime(2021, 3, 1, tzinfo=timezone.utc)
PAST = START + timedelta(days=4, hours=7)  # a Friday, on the hour
# Columns that hold what the market did (a bar's or a fill's time), not when it was written.
MARKET_TIMES = {
    ("candles", "ts"),
    ("market_phases", "bar_ts"),
    ("market_phases", "close_ts"),
    ("market_phases", "as_of"),
    ("executions", "exec_time"),
    ("trades", "timestamp"),
    ("decisions", "bar_ts"),
}
# Wall time by design (jiritsu.clock.wall_now): a process's liveness, the installation's facts.
WALL_TABLES = {"heartbeats", "meta"}


def stored_times(engine: sa.engine.Engine) -> dict[tuple[str, str], set[datetime]]:
    """Every value of every timestamp column of every table, by (table, column)."""
    out: dict[tuple[str, str], set[datetime]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in WALL_TABLES:
                continue
            for column in table.columns:
                if isinstance(column.type, UTCDateTime):
                    values = conn.execute(sa.select(column).where(column.is_not(None)))
                    found = set(values.scalars())
                    if found:
                        out[(table.name, column.name)] = found
    return out


def test_jobs_on_a_simulated_clock_stamp_every_row_with_its_time(isolated_env: Path) -> None:
    skewed = '{"SubBot-A": 1000, "SubBot-B": 1000, "SubBot-C": 8000}'  # a rebalance moves money
    loaded = load(isolated_env, {"JIRITSU_PAPER__STARTING_BALANCES": skewed})
    store_candles(loaded, synth_candles(days=5, seed=7, start=START))
    engine = make_engine(loaded.db_url)
    clock = SimClock(PAST)
    with build_runtime(loaded, "simulate", clock, db=engine, notify=False) as rt:
        rt.exchange.seed()
        with ledger.locked_session(engine) as session:  # a week's trading profit to save
            ledger.credit(session, "SubBot-A", "UNIFIED", "USDT", Decimal(500), PAST)
            session.add(Trade(timestamp=PAST - timedelta(days=1), sub_bot_name="SubBot-A",
                              symbol="BTCUSDT", order_id="o-1", side="Sell", price=Decimal(100),
                              quantity=Decimal(1), pnl=Decimal(500), position_effect="close",
                              environment="paper", created_at=PAST,
                              updated_at=PAST))  # fmt: skip
        by = control.Requester("tester")
        control.halt(engine, rt.settings, bot="SubBot-C", reason="a test", by=by, clock=rt.clock)
        control.resume(engine, rt.settings, bot="SubBot-C", by=by, clock=rt.clock)
        master.phase(rt)
        rebalanced = master.rebalance(rt)
        saved = master.save_profit(rt, force=True)
        master.snapshot(rt)
    assert rebalanced.moved, "the test wants a rebalance that moves money"
    assert saved.saved, "the test wants a saving"
    tick = run_tick(loaded, now_ms=to_ms(PAST))
    assert tick.reports
    times = stored_times(engine)
    engine.dispose()
    for table, column in [("system_events", "timestamp"), ("portfolio_history", "timestamp"),
                          ("transfers", "created_at"), ("decisions", "created_at"),
                          ("controls", "halted_at")]:  # fmt: skip
        assert (table, column) in times, f"nothing written to {table}"
    wrong = {
        key: sorted(values)
        for key, values in times.items()
        if key not in MARKET_TIMES and values != {PAST}
    }
    assert wrong == {}
    market = {v for key in MARKET_TIMES for v in times.get(key, ())}
    assert max(market) <= PAST
    assert from_ms(clock.now_ms()) == PAST  # nobody moved the job's clock
