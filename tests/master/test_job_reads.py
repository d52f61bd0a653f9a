"""The reads and writes of a rebalancing run with plain statements built once, on SQLite and
PostgreSQL: a phase reading stored row by row gives the rows and counts of the former
multi-row INSERT; the unsettled transfers are the former ORM query's rows; a run given the
loop's halt states asks the ``controls`` table nothing, live it reads each scope once."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu import controls
from jiritsu.db.models import MarketPhase, Transfer
from jiritsu.db.upsert import conflict_insert
from jiritsu.master import phase as ph
from jiritsu.master import transfers as tr
from jiritsu.master.rebalance import run_rebalance
from tests.db.test_halt_reads import Reader
from tests.exchange.test_paper_reads import statements
from tests.master import A, B, C, paper, settings, utc

CLOSE = utc(2026, 1, 1, 4)
NOW = utc(2026, 1, 1, 4, 0)


def former_record(engine: Engine, readings: list[ph.PhaseReading]) -> int:
    """The store before: one multi-row INSERT per 100 readings, built at each call."""
    rows = [
        {"ts": r.close_ts, "symbol": r.symbol, "phase": r.phase, "indicator": r.indicator,
         "value": r.value, "details": ph._row_details(r)}
        for r in readings
    ]  # fmt: skip
    table = MarketPhase.__table__
    added = 0
    with engine.begin() as conn:
        for start in range(0, len(rows), 100):
            stmt = (
                conflict_insert(conn.dialect.name, table)
                .values(rows[start : start + 100])
                .on_conflict_do_nothing(index_elements=["symbol", "indicator", "ts"])
                .returning(table.c.id)
            )
            added += len(conn.execute(stmt).all())
    return added


def phase_rows(engine: Engine) -> list[tuple[Any, ...]]:
    """Every stored reading in id order (ids aside: PostgreSQL's sequence moves on)."""
    t = MarketPhase
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(t.ts, t.symbol, t.phase, t.indicator, t.value, t.details).order_by(t.id)
        )]  # fmt: skip


def random_reading(rng: random.Random) -> ph.PhaseReading:
    close = CLOSE + timedelta(hours=4 * rng.randrange(12))
    value = rng.uniform(-0.05, 0.05)
    return ph.PhaseReading(
        rng.choice(("BTCUSDT", "ETHUSDT")), rng.choice(("ranging", "weak_bull", "strong_bear")),
        rng.choice(("EMA_Cross", "ADX")), value, "60", close - timedelta(hours=1), close,
        close + timedelta(minutes=rng.randrange(5)), {"spread": value, "bars": rng.randrange(99)},
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(3))
def test_readings_store_the_rows_and_counts_of_the_multi_row_insert(
    engine: Engine, seed: int
) -> None:
    """The same batches (repeats within a batch and of stored readings, 150 at once) through
    both, the table emptied in between: the same answers and the same rows in the same order."""
    rng = random.Random(seed)
    batches = [[random_reading(rng) for _ in range(rng.choice((1, 1, 3, 150)))]
               for _ in range(12)]  # fmt: skip
    answers = {}
    tables = {}
    for name, store in (("former", former_record), ("now", ph.record_readings)):
        with engine.begin() as conn:
            conn.execute(sa.delete(MarketPhase))
        answers[name] = [store(engine, batch) for batch in batches]
        tables[name] = phase_rows(engine)
    assert answers["now"] == answers["former"]
    assert tables["now"] == tables["former"]
    assert 0 in answers["now"]  # (a batch of stored readings only)
    assert len(tables["now"]) > 12


def former_unsettled(engine: Engine, kinds: tuple[str, ...]) -> list[tuple[Any, ...]]:
    with Session(engine) as session:
        rows = session.scalars(
            sa.select(Transfer)
            .where(Transfer.status.in_(tr.UNSETTLED), Transfer.kind.in_(kinds))
            .order_by(Transfer.id)
        ).all()
        return [(int(r.id), r.idempotency_key, r.status, r.updated_at) for r in rows]


def test_the_unsettled_rows_are_the_former_querys(engine: Engine) -> None:
    rng = random.Random(7)
    for k in range(40):
        intent = tr.record_intent(
            engine, kind=rng.choice(("rebalance", "profit_save", "manual")), from_account=A,
            to_account=B, amount=tr.CENT * rng.randint(1, 9999), coin="USDT",
            now=NOW + timedelta(seconds=k),
        )  # fmt: skip
        status = rng.choice(("pending", "sent", "success", "failed", "unknown"))
        if status != "pending":
            tr._update(engine, intent.row_id, now=NOW + timedelta(minutes=k), status=status)
        for kinds in (tr.MASTER_KINDS, ("manual",), ("rebalance", "profit_save", "manual")):
            with engine.connect() as conn:
                now = conn.execute(tr._unsettled_query(), {"kinds": list(kinds)}).all()
            assert [tuple(r) for r in now] == former_unsettled(engine, kinds)
    assert former_unsettled(engine, tr.MASTER_KINDS)


def controls_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if "FROM controls" in s]


def test_a_run_with_the_loops_halt_states_asks_controls_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    controls.halt(engine, B, "5 losses in a row", cooldown_minutes=240, now=NOW)
    reader = Reader(engine)
    reader()
    with statements(engine) as seen:
        held = run_rebalance(engine, ex, cfg, phase="strong_bull", now=NOW, halt_states=reader)
    assert controls_reads(seen) == []
    assert held.excluded == {B: "halted: 5 losses in a row"}
    with statements(engine) as seen:  # live: the global scope and each bot, one SELECT each
        live = run_rebalance(engine, ex, cfg, phase="strong_bull", now=NOW + timedelta(hours=1))
    assert len(controls_reads(seen)) == 4
    assert live.excluded == held.excluded
    # the cool-down elapsed: the run lifts B's halt (its row written) and B takes part
    later = NOW + timedelta(hours=4)
    lifted = run_rebalance(engine, ex, cfg, phase="strong_bull", now=later, halt_states=reader)
    assert lifted.excluded == {}
    assert sorted(b.bot for b in lifted.plan.bots) == [A, B, C]
    (row,) = [s for s in reader() if s.scope == B]  # the reader sees the lift at once
    assert not row.halted
