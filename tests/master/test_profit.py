"""Weekly profit saving: the saving window in UTC, the arithmetic worked by hand, once per week
whatever happens, transfers in between, crashes mid-saving, and the real Bybit client.

Defaults: Sunday 00:00 UTC, rate 50 %, minimum transfer 10; paper bots start at
A 3000 / B 4000 / C 3000 and MAIN's FUND wallet at 0. 2026-01-04 is a Sunday.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.db.meta import install_id
from jiritsu.db.models import PortfolioSnapshot, SystemEvent, Transfer
from jiritsu.errors import Halted
from jiritsu.exchange.types import MAIN
from jiritsu.master.profit import (
    compute_saving,
    is_due,
    plan_profit_save,
    run_save_profit,
    save_window,
    saving_details,
    transfer_key,
)
from jiritsu.master.snapshot import take_snapshot
from jiritsu.master.transfers import execute_transfer, mark_sent, record_intent
from tests.exchange.bybit_env import BybitEnv, bybit_env
from tests.master import A, B, C, D, credit, paper, settings, utc

SUNDAY = utc(2026, 1, 4)
MB = settings(Path("var")).master_bot


def rows(engine: Engine, model: type) -> list:
    with Session(engine) as session:
        return list(session.query(model).order_by(model.id))


# --------------------------------------------------------------------------- the window


@pytest.mark.parametrize(
    ("now", "moment"),
    [
        (utc(2026, 1, 3, 23, 59), utc(2025, 12, 28)),  # Saturday 23:59: last week's saving
        (utc(2026, 1, 3, 23, 59, 59, 999999), utc(2025, 12, 28)),
        (SUNDAY, SUNDAY),  # Sunday 00:00: the new one
        (utc(2026, 1, 4, 0, 1), SUNDAY),
        (utc(2026, 1, 10, 12), SUNDAY),  # all week long
        # 08:30 in Tokyo on Sunday is still Saturday 23:30 UTC
        (datetime(2026, 1, 4, 8, 30, tzinfo=timezone(timedelta(hours=9))), utc(2025, 12, 28)),
    ],
)
def test_the_saving_window_is_the_latest_scheduled_moment_in_utc(now, moment) -> None:
    assert save_window(now, MB).scheduled == moment


def test_a_timer_run_is_due_for_24_hours_after_the_moment() -> None:
    assert not is_due(utc(2026, 1, 3, 23, 59), MB)
    assert is_due(SUNDAY, MB)
    assert is_due(utc(2026, 1, 4, 23, 59), MB)  # a late timer (after downtime) still saves
    assert not is_due(utc(2026, 1, 5), MB)


def test_another_day_and_hour() -> None:
    mb = settings(Path("var"), master_bot={"profit_save_day": "wednesday",
                                           "profit_save_hour": 13}).master_bot  # fmt: skip
    assert save_window(utc(2026, 1, 7, 12, 59), mb).scheduled == utc(2025, 12, 31, 13)
    assert save_window(utc(2026, 1, 7, 13, 0), mb).scheduled == utc(2026, 1, 7, 13)


def test_transfer_keys_are_deterministic_uuids_per_bot_window_and_attempt() -> None:
    window = save_window(SUNDAY, MB)
    key = transfer_key("i1", "paper", A, window, 0)
    assert uuid.UUID(key).version == 5
    assert key == transfer_key("i1", "paper", A, save_window(utc(2026, 1, 9), MB), 0)
    others = {
        transfer_key("i1", "paper", B, window, 0),
        transfer_key("i1", "paper", A, window, 1),
        transfer_key("i1", "testnet", A, window, 0),
        transfer_key("i1", "paper", A, save_window(SUNDAY + timedelta(days=7), MB), 0),
        transfer_key("i2", "paper", A, window, 0),  # another installation
    }
    assert key not in others
    assert len(others) == 5


# --------------------------------------------------------------------------- the arithmetic


def saving(realised: str, accounted: str, available: str = "1000", rate: str = "0.5"):
    return compute_saving(
        realised=D(realised),
        accounted=D(accounted),
        available=D(available),
        rate=D(rate),
        min_transfer=D(10),
    )


def test_profit_is_the_realised_pnl_the_savings_have_not_covered() -> None:
    # 300 realised, 100 of it covered by earlier savings: 200 profit, half of it is saved, and
    # the savings now cover 300
    s = saving("300", "100")
    assert (s.profit, s.amount, s.new_accounted, s.note) == (D(200), D(100), D(300), None)
    assert saving("-50", "0").amount == 0  # a loss saves nothing
    assert saving("-50", "0").note == "no trading profit since the last saving"


def test_a_saving_cut_short_carries_the_rest_to_next_week() -> None:
    # profit 100, 50 wanted, only 20 available: 20 saved, covering 20 / 0.5 = 40 of the profit
    first = saving("100", "0", available="20")
    assert (first.amount, first.new_accounted) == (D(20), D(40))
    assert first.note == "limited to the available 20.00 (wanted 50.00)"
    # next week, no new trade: the 60 not covered yet -> 30; 20 + 30 = half of 100
    second = saving("100", "40")
    assert (second.profit, second.amount) == (D(60), D(30))


def test_small_savings_wait_and_cents_round_down() -> None:
    small = saving("15", "0")  # 7.50 < 10
    assert (small.profit, small.amount, small.new_accounted) == (D(15), D(0), None)
    assert small.note == (
        "7.50 is the saving; below min_transfer_usdt (10): nothing moves, kept for later"
    )
    odd = saving("100.01", "0", rate="0.3")  # 30.003 -> 30.00; 0.01 stays profit
    assert (odd.amount, odd.new_accounted) == (D("30.00"), D("100.00"))


# --------------------------------------------------------------------------- runs on paper


def test_weekly_savings_with_transfers_in_between(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    credit(engine, A, "200", SUNDAY - timedelta(days=3))  # A's trading profit
    credit(engine, C, "-50", SUNDAY - timedelta(days=3))  # C's loss
    moved = execute_transfer(
        engine, ex, kind="rebalance", from_account=B, to_account=A, amount=D(100), coin="USDT",
        now=SUNDAY - timedelta(days=1),
    )  # fmt: skip
    assert moved.ok

    week1 = run_save_profit(engine, ex, cfg, now=SUNDAY)
    assert week1.status == "saved"
    lines = {line.bot: line for line in week1.plan.bots}
    # A: 200 realised -> 100 (the 100 rebalanced in is no profit); B: nothing traded, nothing
    # to save (the 100 it gave is no loss); C: -50
    assert [(b, lines[b].profit, lines[b].amount) for b in (A, B, C)] == [
        (A, D(200), D(100)),
        (B, D(0), D(0)),
        (C, D(-50), D(0)),
    ]
    assert lines[A].baseline.source == "start"
    [saved] = week1.outcomes
    assert (saved.from_account, saved.to_account, saved.amount, saved.status) == (
        A, MAIN, D(100), "success")  # fmt: skip
    assert saved.key == transfer_key(install_id(engine), "paper", A, save_window(SUNDAY, MB), 0)
    assert ex.balance(MAIN).equity == D(100)
    assert week1.snapshot is not None
    assert (week1.snapshot.total_balance_usdt, week1.snapshot.profit_saved_balance) == (
        D(3200) + D(3900) + D(2950), D(100))  # fmt: skip

    row = rows(engine, Transfer)[-1]
    assert (row.kind, row.from_account_type, row.to_account_type) == (
        "profit_save",
        "UNIFIED",
        "FUND",
    )
    assert (row.details["realised"], row.details["accounted"]) == ("200", "200")
    [event] = rows(engine, SystemEvent)
    assert (event.event_type, event.level, event.details["window"]) == (
        "PROFIT_SAVE", "INFO", "2026-01-04T00:00:00+00:00")  # fmt: skip
    assert event.details["bots"][A]["saved"] == "100"

    # More profit the same week: a second run, even forced, moves nothing more.
    credit(engine, A, "10", SUNDAY + timedelta(hours=1))
    assert run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(hours=2)).status == (
        "already_saved"
    )
    forced = run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(days=3), force=True)
    assert (forced.status, forced.outcomes) == ("already_saved", [])
    assert run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(days=3)).status == "not_due"
    assert ex.balance(MAIN).equity == D(100)

    # Week 2: A +30 more, C +80.
    credit(engine, A, "30", SUNDAY + timedelta(days=5))
    credit(engine, C, "80", SUNDAY + timedelta(days=5))
    week2 = run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(days=7, minutes=1))
    lines = {line.bot: line for line in week2.plan.bots}
    # A: 240 realised - 200 covered = 40 -> 20.  C never saved: -50 + 80 = 30 -> 15 (last
    # week's loss had to be made good first).  B never traded: 0.
    assert [(b, lines[b].profit, lines[b].amount) for b in (A, B, C)] == [
        (A, D(40), D(20)),
        (B, D(0), D(0)),
        (C, D(30), D(15)),
    ]
    assert (lines[A].baseline.source, lines[C].baseline.source) == ("last_saving", "start")
    assert ex.balance(MAIN).equity == D(135)
    assert [t.kind for t in rows(engine, Transfer)] == ["rebalance"] + ["profit_save"] * 3
    assert len(rows(engine, PortfolioSnapshot)) == 2


def test_week_boundaries_saturday_2359_sunday_0000_and_0001(engine: Engine, tmp_path: Path):
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    credit(engine, A, "200", SUNDAY - timedelta(days=1))
    saturday = run_save_profit(engine, ex, cfg, now=SUNDAY - timedelta(minutes=1), force=True)
    assert saturday.window.scheduled == utc(2025, 12, 28)
    assert saturday.saved == D(100)  # last week's saving, made late by hand
    credit(engine, A, "100", SUNDAY - timedelta(seconds=30))
    midnight = run_save_profit(engine, ex, cfg, now=SUNDAY)  # a new week: 3300 - 3200 = 100
    assert (midnight.window.scheduled, midnight.saved) == (SUNDAY, D(50))
    credit(engine, A, "100", SUNDAY + timedelta(seconds=30))
    minute_later = run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(minutes=1))
    assert (minute_later.status, minute_later.outcomes) == ("already_saved", [])
    assert ex.balance(MAIN).equity == D(150)


def test_dry_run_and_halt_move_nothing(engine: Engine, tmp_path: Path) -> None:
    from jiritsu.controls import halt

    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    credit(engine, B, "400", SUNDAY - timedelta(days=1))
    dry = run_save_profit(engine, ex, cfg, now=SUNDAY, dry_run=True)
    assert (dry.status, dry.plan.total, dry.outcomes) == ("dry_run", D(200), [])
    halt(engine, "global", "maintenance", now=SUNDAY)
    with pytest.raises(Halted):
        run_save_profit(engine, ex, cfg, now=SUNDAY)
    for model in (Transfer, SystemEvent, PortfolioSnapshot):
        assert rows(engine, model) == []
    assert ex.balance(MAIN).equity == D(0)


def test_a_crash_mid_saving_never_saves_twice(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    credit(engine, A, "200", SUNDAY - timedelta(days=1))
    credit(engine, B, "100", SUNDAY - timedelta(days=1))
    plan = plan_profit_save(engine, ex, cfg, now=SUNDAY)
    a_line, b_line, _ = plan.bots
    # A: recorded, then the process died before sending (attempt 0 is abandoned, attempt 1 runs).
    record_intent(engine, kind="profit_save", from_account=A, to_account=MAIN, amount=a_line.amount,
                  coin="USDT", from_wallet="UNIFIED", to_wallet="FUND", key=a_line.key,
                  environment="paper", details=saving_details(plan, a_line),
                  now=SUNDAY)  # fmt: skip
    # B: sent and done, then the process died before recording the answer.
    b_intent = record_intent(engine, kind="profit_save", from_account=B, to_account=MAIN,
                             amount=b_line.amount, coin="USDT", from_wallet="UNIFIED",
                             to_wallet="FUND", key=b_line.key, environment="paper",
                             details=saving_details(plan, b_line), now=SUNDAY)  # fmt: skip
    mark_sent(engine, b_intent, now=SUNDAY)
    ex.transfer(b_intent.request)
    credit(engine, B, "40", SUNDAY + timedelta(minutes=5))  # more profit before the re-run

    result = run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(minutes=10))
    assert result.settled is not None
    assert [(o.from_account, o.status) for o in result.settled.settled] == [
        (A, "failed"),
        (B, "success"),
    ]
    lines = {line.bot: line for line in result.plan.bots}
    # B's settled saving covered its 100: 40 more profit, but this window already has B's
    # saving, so nothing more moves until next week.
    assert (lines[B].baseline.source, lines[B].profit, lines[B].amount) == (
        "last_saving", D(40), D(0))  # fmt: skip
    assert lines[B].note == "already saved in this window (transfer #2, success)"
    [again] = result.outcomes
    assert (again.from_account, again.amount, again.status) == (A, D(100), "success")
    assert again.key == transfer_key(install_id(engine), "paper", A, save_window(SUNDAY, MB), 1)
    assert ex.balance(MAIN).equity == D(150)  # A 100 once, B 50 once
    assert [(t.from_account, t.status) for t in rows(engine, Transfer)] == [
        (A, "failed"), (B, "success"), (A, "success")]  # fmt: skip


# --------------------------------------------------------------------------- Bybit


@pytest.fixture
def env() -> Iterator[BybitEnv]:
    with bybit_env() as e:
        yield e


def test_saving_on_bybit_from_realised_pnl(env: BybitEnv, engine: Engine) -> None:
    cfg = env.loaded().settings
    ex = env.exchange()
    trade(engine, A, "100", SUNDAY - timedelta(days=2))  # what the trade loop recorded
    trade(engine, B, "-20", SUNDAY - timedelta(days=1))
    env.fake.set_balance(A, "USDT", 1100)
    env.fake.set_balance(B, "USDT", 980)
    result = run_save_profit(engine, ex, cfg, now=SUNDAY)
    assert [(o.from_account, o.amount, o.status) for o in result.outcomes] == [
        (A, D(50), "success")
    ]
    assert [(b.bot, b.profit) for b in result.plan.bots] == [(A, D(100)), (B, D(-20)), (C, 0)]
    [call] = env.calls("/v5/asset/transfer/universal-transfer")
    body = json.loads(call.body)
    assert call.account == "main"
    assert (body["fromAccountType"], body["toAccountType"], body["amount"]) == (
        "UNIFIED", "FUND", "50")  # fmt: skip
    assert body["transferId"] == transfer_key(
        install_id(engine), "testnet", A, save_window(SUNDAY, MB), 0
    )
    assert env.fake.balance("main", account_type="FUND") == D(550)
    assert result.snapshot is not None
    assert (result.snapshot.total_balance_usdt, result.snapshot.profit_saved_balance) == (
        D(1050) + D(980) + D(1000), D(550))  # fmt: skip
    again = run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(hours=1))
    assert again.status == "already_saved"
    assert len(env.calls("/v5/asset/transfer/universal-transfer")) == 1


def trade(engine: Engine, bot: str, pnl: str, at: datetime, environment: str = "testnet") -> None:
    """A closing trade as the trade loop records it (its PnL after fees)."""
    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import Trade

    with session_scope(engine) as session:
        session.add(Trade(timestamp=at, sub_bot_name=bot, symbol="BTCUSDT",
                          order_id=str(uuid.uuid4()), side="Sell", price=D(40000),
                          quantity=D("0.01"), pnl=D(pnl), position_effect="close",
                          environment=environment))  # fmt: skip


def test_rebalancing_around_a_snapshot_is_never_profit_or_loss(
    env: BybitEnv, engine: Engine
) -> None:
    """Issue 16's reproduction: a rebalance stamped before a snapshot moves the money after it,
    and no bot traded. Nothing is profit: nothing is saved, and no bot owes a loss."""
    cfg = env.loaded().settings
    ex = env.exchange()
    take_snapshot(engine, ex, cfg, now=SUNDAY - timedelta(hours=2))
    for source, target, amount in ((A, B, D(75)), (A, C, D(300))):
        execute_transfer(engine, ex, kind="rebalance", from_account=source, to_account=target,
                         amount=amount, coin="USDT",
                         now=SUNDAY - timedelta(hours=3))  # fmt: skip
    env.fake.set_balance(C, "USDT", 1000 + 300 + 50)  # money from outside: no profit either
    trade(engine, C, "999", SUNDAY - timedelta(days=1), environment="paper")  # another mode's
    result = run_save_profit(engine, ex, cfg, now=SUNDAY, force=True)
    assert result.outcomes == []
    assert [(b.bot, b.profit, b.amount) for b in result.plan.bots] == [
        (A, 0, 0), (B, 0, 0), (C, 0, 0)]  # fmt: skip
    assert env.fake.balance("main", account_type="FUND") == D(500)


def test_two_installations_on_the_same_accounts_save_with_their_own_ids(
    env: BybitEnv, engine: Engine, tmp_path: Path
) -> None:
    """A second database (another installation, a test copy) on the same sub-accounts: its
    saving of the same week is its own transfer, not "a different transfer with that id"."""
    from jiritsu.db.engine import make_engine
    from jiritsu.db.migrate import upgrade

    cfg = env.loaded().settings
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    other = make_engine(other_url)
    try:
        assert install_id(other) != install_id(engine)
        assert install_id(other) == install_id(other)  # made once, then read
        for db, pnl in ((engine, "100"), (other, "40")):
            trade(db, A, pnl, SUNDAY - timedelta(days=1))
            result = run_save_profit(db, env.exchange(), cfg, now=SUNDAY)
            assert [(o.amount, o.status) for o in result.outcomes] == [(D(pnl) / 2, "success")]
    finally:
        other.dispose()
    assert env.fake.balance("main", account_type="FUND") == D(570)


def test_a_failed_saving_does_not_close_the_week(env: BybitEnv, engine: Engine) -> None:
    cfg = env.loaded().settings
    trade(engine, A, "100", SUNDAY - timedelta(days=1))
    env.fake.inject("/v5/asset/transfer/universal-transfer", "ret_code", ret_code=131212)
    refused = run_save_profit(engine, env.exchange(), cfg, now=SUNDAY)
    assert [o.status for o in refused.outcomes] == ["failed"]
    assert refused.exit_code == 1
    with Session(engine) as session:
        [event] = session.query(SystemEvent).filter_by(event_type="PROFIT_SAVE").all()
    assert (event.level, event.details["complete"]) == ("ERROR", False)
    again = run_save_profit(engine, env.exchange(), cfg, now=SUNDAY + timedelta(hours=1))
    assert [(o.amount, o.status) for o in again.outcomes] == [(D(50), "success")]
    assert again.outcomes[0].key == transfer_key(install_id(engine), "testnet", A,
                                                 save_window(SUNDAY, MB), 1)  # fmt: skip
    third = run_save_profit(engine, env.exchange(), cfg, now=SUNDAY + timedelta(hours=2))
    assert (third.status, third.outcomes) == ("already_saved", [])
    assert env.fake.balance("main", account_type="FUND") == D(550)
