"""The reads and writes of a rebalancing run with plain statements built once, on SQLite and
PostgreSQL: a phase reading stored row by row gives the rows and counts of the former
multi-row INSERT; the unsettled transfers are the former ORM query's rows; a run given the
loop's halt states asks the ``controls`` table nothing, live it reads each scope once; the
transfer journal's plain statements write every column the former ORM steps wrote."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from jiritsu import controls
from jiritsu.db.engine import session_scope
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


def former_intent(engine: Engine, key: str, now: Any, **fields: Any) -> int:
    """The journal's first step before: an ORM object added and flushed."""
    with session_scope(engine) as session:
        row = Transfer(idempotency_key=key, status="pending", created_at=now, updated_at=now,
                       **fields)  # fmt: skip
        session.add(row)
        session.flush()
        return int(row.id)


def former_update(engine: Engine, row_id: int, now: Any, note: str | None, **values: Any) -> Any:
    """An answer or settlement before: the row read in a session, changed and flushed."""
    with session_scope(engine) as session:
        row = session.get(Transfer, row_id)
        assert row is not None
        for name, value in values.items():
            setattr(row, name, value)
        if note is not None:
            row.details = {**(row.details or {}), "settlement": {"at": now.isoformat(),
                                                                  "note": note}}  # fmt: skip
        row.updated_at = now
        flag_modified(row, "updated_at")
        return tr._outcome(row)


def transfer_rows(engine: Engine) -> list[tuple[Any, ...]]:
    """Every column but the id and the key, in id order."""
    t = Transfer.__table__
    cols = [c for c in t.c if c.name not in ("id", "idempotency_key")]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(*cols).order_by(t.c.id))]


@pytest.mark.parametrize("seed", range(2))
def test_the_journal_writes_the_former_orm_rows(engine: Engine, seed: int) -> None:
    """Random transfers through their steps (sent, answered, refused, unknown, settled with a
    note, with and without details), once through the former ORM steps and once through the
    plain statements, the table emptied in between: every column alike, and the outcomes."""
    rng = random.Random(seed)
    script = []
    for k in range(25):
        fields = {
            "kind": rng.choice(("rebalance", "profit_save")), "environment": "paper",
            "from_account": rng.choice((A, B)), "to_account": C,
            "from_member_id": rng.choice((None, 101)), "to_member_id": None,
            "from_account_type": "UNIFIED", "to_account_type": rng.choice(("UNIFIED", "FUND")),
            "coin": "USDT", "amount": tr.CENT * rng.randint(1, 10**6),
            "reason": rng.choice((None, "strong_bull: A holds ...")),
            "details": rng.choice((None, {"phase": "ranging", "total": "10000.00"})),
        }  # fmt: skip
        steps: list[tuple[dict[str, Any], str | None]] = [({"status": "sent"}, None)]
        for _ in range(rng.randint(0, 3)):
            status = rng.choice(("success", "failed", "unknown", "sent"))
            values: dict[str, Any] = {"status": status}
            if rng.random() < 0.6:
                values["exchange_status"] = rng.choice((None, "SUCCESS", "STATUS_UNKNOWN"))
                values["error"] = rng.choice((None, "InsufficientBalance: needs 5"))
            steps.append((values, rng.choice((None, None, "abandoned: never sent"))))
        script.append((NOW + timedelta(minutes=k), fields, steps))
    outcomes: dict[str, list[Any]] = {}
    tables = {}
    for name in ("former", "now"):
        with engine.begin() as conn:
            conn.execute(sa.delete(Transfer))
        seen = outcomes.setdefault(name, [])
        for k, (at, fields, steps) in enumerate(script):
            if name == "former":
                row_id = former_intent(engine, f"{name}-{seed}-{k}", at, **fields)
            else:
                row_id = tr.record_intent(
                    engine, key=f"{name}-{seed}-{k}", now=at,
                    member_ids=(fields["from_member_id"], fields["to_member_id"]),
                    from_wallet=fields["from_account_type"], to_wallet=fields["to_account_type"],
                    **{f: v for f, v in fields.items() if not f.endswith(("_id", "_type"))},
                ).row_id  # fmt: skip
            for j, (values, note) in enumerate(steps):
                when = at + timedelta(seconds=j + 1)
                if name == "former":
                    out = former_update(engine, row_id, when, note, **values)
                else:
                    out = tr._update(engine, row_id, now=when, settle_note=note, **values)
                seen.append(replace(out, row_id=0, key=""))
        tables[name] = transfer_rows(engine)
    assert outcomes["now"] == outcomes["former"]
    assert tables["now"] == tables["former"]
    assert {r[10] for r in tables["now"]} >= {"sent", "success", "failed"}  # status


def test_a_transfer_is_journalled_in_three_statements(engine: Engine, tmp_path: Path) -> None:
    """The pending row, then sent, then the answer: one INSERT and two UPDATEs (no read)."""
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    with statements(engine) as seen:
        outcome = tr.execute_transfer(engine, ex, kind="rebalance", from_account=A,
                                      to_account=C, amount=tr.CENT * 1234, coin="USDT",
                                      now=NOW)  # fmt: skip
    assert outcome.ok
    journal = [s.split()[0] for s in seen if " transfers" in s and "paper_transfers" not in s]
    assert journal == ["INSERT", "UPDATE", "UPDATE"]
