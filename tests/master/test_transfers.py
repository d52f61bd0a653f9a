"""Moving money safely: the write-ahead journal, crashes at every step settled by looking the
transfer id up, refusals recorded without a crash, and the lock that serialises master runs.

The Bybit tests run the real pybit client against the loopback fake (the shipped config in
testnet mode: sub-accounts of 1000 USDT each, main FUND 500). strong_bull then means targets
600 / 900 / 1500 of 3000 (band 150): A gives 400 to C, and B (100 above target, inside the band)
covers C's remaining 100.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.db.models import SystemEvent, Transfer
from jiritsu.locks import MasterBusy, master_lock
from jiritsu.master.rebalance import run_rebalance
from jiritsu.master.transfers import (
    DuplicateTransfer,
    UnsettledTransfers,
    execute_transfer,
    mark_sent,
    record_intent,
    settle_transfers,
)
from tests.exchange.bybit_env import BybitEnv, bybit_env
from tests.master import A, B, C, D, paper, settings, utc

TRANSFER = "/v5/asset/transfer/universal-transfer"
NOW = utc(2026, 1, 4, 0, 0)


@pytest.fixture
def env() -> Iterator[BybitEnv]:
    with bybit_env() as e:
        yield e


def transfers(engine: Engine) -> list[Transfer]:
    with Session(engine) as session:
        return list(session.query(Transfer).order_by(Transfer.id))


def events(engine: Engine) -> list[SystemEvent]:
    with Session(engine) as session:
        return list(session.query(SystemEvent).order_by(SystemEvent.id))


def intent_a_to_c(engine: Engine, amount: str = "400", now: datetime = NOW):
    return record_intent(
        engine,
        kind="rebalance",
        from_account=A,
        to_account=C,
        amount=D(amount),
        coin="USDT",
        environment="testnet",
        reason="strong_bull",
        now=now,
    )


def fake_balances(env: BybitEnv) -> dict[str, D]:
    return {bot: env.fake.balance(bot) for bot in (A, B, C)}


def test_rebalance_through_the_master_key(env: BybitEnv, engine: Engine) -> None:
    cfg = env.loaded().settings
    result = run_rebalance(engine, env.exchange(), cfg, phase="strong_bull", now=NOW)
    assert [(o.from_account, o.to_account, o.amount, o.status) for o in result.outcomes] == [
        (A, C, D(400), "success"),
        (B, C, D(100), "success"),
    ]
    assert fake_balances(env) == {A: D(600), B: D(900), C: D(1500)}
    calls = env.calls(TRANSFER)
    assert [c.account for c in calls] == ["main", "main"]  # sub -> sub with the master key
    assert sorted(t.transfer_id for t in env.fake.transfers) == sorted(
        o.key for o in result.outcomes
    )
    assert [t.environment for t in transfers(engine)] == ["testnet", "testnet"]


def test_insufficient_balance_is_recorded_and_the_run_carries_on(
    env: BybitEnv, engine: Engine
) -> None:
    env.fake.inject(TRANSFER, "ret_code", ret_code=131212)  # the next transfer only
    cfg = env.loaded().settings
    result = run_rebalance(engine, env.exchange(), cfg, phase="strong_bull", now=NOW)
    first, second = result.outcomes
    assert (first.status, first.exchange_status) == ("failed", "131212")
    assert "InsufficientBalance" in (first.error or "")
    assert second.status == "success"
    assert int(result.exit_code) == 1
    assert len(env.calls(TRANSFER)) == 2  # a refusal is not retried
    assert fake_balances(env) == {A: D(1000), B: D(900), C: D(1100)}
    [event] = events(engine)
    assert (event.event_type, event.level) == ("REBALANCE", "ERROR")
    assert "1 failed or unknown" in event.message
    # The next run plans afresh from the real balances: A still owes C its 400.
    again = run_rebalance(
        engine, env.exchange(), cfg, phase="strong_bull", now=NOW + timedelta(hours=4)
    )
    assert [(o.from_account, o.to_account, o.amount, o.status) for o in again.outcomes] == [
        (A, C, D(400), "success")
    ]
    assert fake_balances(env) == {A: D(600), B: D(900), C: D(1500)}


def test_crash_before_the_call_abandons_the_row_and_plans_afresh(
    env: BybitEnv, engine: Engine
) -> None:
    stale = intent_a_to_c(engine)  # recorded, then the process died: never sent
    cfg = env.loaded().settings
    result = run_rebalance(engine, env.exchange(), cfg, phase="strong_bull", now=NOW)
    assert result.settled is not None
    [settled] = result.settled.settled
    assert (settled.key, settled.status) == (stale.request.transfer_id, "failed")
    assert settled.error is not None
    assert settled.error.startswith("abandoned: recorded but never sent")
    assert env.exchange().get_transfer(stale.request.transfer_id) is None  # never sent
    assert [(o.from_account, o.to_account, o.amount) for o in result.outcomes] == [
        (A, C, D(400)),
        (B, C, D(100)),
    ]
    assert len(env.fake.transfers) == 2
    assert fake_balances(env) == {A: D(600), B: D(900), C: D(1500)}
    row = transfers(engine)[0]
    assert row.details["settlement"]["note"].startswith("abandoned")


def test_an_answer_lost_after_the_transfer_happened_is_settled_by_lookup(
    env: BybitEnv, engine: Engine
) -> None:
    cfg = env.loaded().settings
    env.fake.inject(TRANSFER, "accept_then_drop", times=None)  # done, but no answer ever comes
    lost = run_rebalance(engine, env.exchange(), cfg, phase="strong_bull", now=NOW)
    assert [o.status for o in lost.outcomes] == ["unknown", "unknown"]
    assert int(lost.exit_code) == 1
    assert len(env.fake.transfers) == 2  # each happened exactly once despite the retries
    assert {c.ret_code for c in env.calls(TRANSFER)} == {0, 131214}
    env.fake.clear_faults()

    later = NOW + timedelta(hours=4)
    result = run_rebalance(engine, env.exchange(), cfg, phase="strong_bull", now=later)
    assert result.settled is not None
    assert [(o.key, o.status) for o in result.settled.settled] == [
        (o.key, "success") for o in lost.outcomes
    ]
    assert result.outcomes == []  # the balances already show both moves: nothing more
    assert len(env.fake.transfers) == 2
    assert fake_balances(env) == {A: D(600), B: D(900), C: D(1500)}
    assert [t.status for t in transfers(engine)] == ["success", "success"]


def test_crash_after_the_call_before_the_update_is_settled_by_lookup(
    env: BybitEnv, engine: Engine
) -> None:
    ex = env.exchange()
    intent = intent_a_to_c(engine)
    mark_sent(engine, intent, now=NOW)
    assert ex.transfer(intent.request).status == "success"  # ... and the process died here
    assert transfers(engine)[0].status == "sent"

    cfg = env.loaded().settings
    result = run_rebalance(engine, env.exchange(), cfg, phase="strong_bull", now=NOW)
    assert result.settled is not None
    assert [(o.key, o.status) for o in result.settled.settled] == [
        (intent.request.transfer_id, "success")
    ]
    # A 600, B 1000, C 1400: B +100 and C -100 are inside the 150 band: nothing more moves
    assert result.outcomes == []
    assert len(env.fake.transfers) == 1
    assert fake_balances(env) == {A: D(600), B: D(1000), C: D(1400)}
    [event] = events(engine)  # the operator learns how the interrupted transfer ended
    assert (event.level, event.event_type) == ("WARNING", "REBALANCE")
    assert event.message == "settled 1 transfer(s) an earlier run left unfinished"
    assert event.details["settled"][0]["status"] == "success"


def test_a_transfer_sent_moments_ago_and_not_found_blocks_the_run(
    env: BybitEnv, engine: Engine
) -> None:
    intent = intent_a_to_c(engine)
    mark_sent(engine, intent, now=NOW)  # the request may still be on the wire
    cfg = env.loaded().settings
    with pytest.raises(UnsettledTransfers, match="1 earlier transfer") as caught:
        run_rebalance(
            engine, env.exchange(), cfg, phase="strong_bull", now=NOW + timedelta(seconds=30)
        )
    assert int(caught.value.exit_code) == 1
    assert env.calls(TRANSFER) == []  # nothing new was sent
    assert transfers(engine)[0].status == "sent"
    [event] = events(engine)
    assert (event.level, event.event_type) == ("WARNING", "REBALANCE")

    # Past the grace period it never arrived: failed, and the run goes ahead.
    result = run_rebalance(
        engine, env.exchange(), cfg, phase="strong_bull", now=NOW + timedelta(minutes=5)
    )
    assert result.settled is not None
    [settled] = result.settled.settled
    assert settled.status == "failed"
    assert settled.error == "not found on the exchange 5 min after it was sent: it never arrived"
    assert len(result.outcomes) == 2
    assert len(env.fake.transfers) == 2


def test_a_recorded_key_is_never_sent_twice(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    first = execute_transfer(engine, ex, kind="manual", from_account=A, to_account=B,
                             amount=D("12.5"), coin="USDT", now=NOW)  # fmt: skip
    with pytest.raises(DuplicateTransfer):
        execute_transfer(engine, ex, kind="manual", from_account=A, to_account=B,
                         amount=D("12.5"), coin="USDT", key=first.key, now=NOW)  # fmt: skip
    assert ex.balance(A).equity == D("2987.5")
    assert len(transfers(engine)) == 1


def test_paper_refusal_is_failed_and_paper_crashes_settle_too(engine: Engine, tmp_path: Path):
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    refused = execute_transfer(engine, ex, kind="rebalance", from_account=A, to_account=B,
                               amount=D(3001), coin="USDT", now=NOW)  # fmt: skip
    assert refused.status == "failed"
    assert "3000 available" in (refused.error or "")
    pending = intent_a_to_c(engine, "10")
    sent = intent_a_to_c(engine, "20")
    mark_sent(engine, sent, now=NOW)
    ex.transfer(sent.request)  # done on the ledger; the row still says "sent"
    report = settle_transfers(engine, ex, now=NOW + timedelta(minutes=1))
    assert [(o.key, o.status) for o in report.settled] == [
        (pending.request.transfer_id, "failed"),
        (sent.request.transfer_id, "success"),
    ]
    assert report.unsettled == []
    assert ex.balance(C).equity == D(3020)


def test_master_runs_are_serialised(engine: Engine, tmp_path: Path) -> None:
    waits: list[float] = []
    with master_lock(engine, tmp_path), pytest.raises(MasterBusy):
        with master_lock(engine, tmp_path, wait_seconds=0, sleep=waits.append):
            pass
    with master_lock(engine, tmp_path):  # released again
        pass
    # Another host (another data directory) on the same PostgreSQL database waits too.
    with master_lock(engine, tmp_path / "host-1"):
        if engine.dialect.name == "postgresql":
            with pytest.raises(MasterBusy, match="database"):
                with master_lock(engine, tmp_path / "host-2", wait_seconds=0):
                    pass
        else:
            with master_lock(engine, tmp_path / "host-2", wait_seconds=0):
                pass
    assert waits == []
