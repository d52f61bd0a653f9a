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
    key = transfer_key("paper", A, window, 0)
    assert uuid.UUID(key).version == 5
    assert key == transfer_key("paper", A, save_window(utc(2026, 1, 9), MB), 0)
    others = {
        transfer_key("paper", B, window, 0),
        transfer_key("paper", A, window, 1),
        transfer_key("testnet", A, window, 0),
        transfer_key("paper", A, save_window(SUNDAY + timedelta(days=7), MB), 0),
    }
    assert key not in others
    assert len(others) == 4


# --------------------------------------------------------------------------- the arithmetic


def saving(equity: str, baseline: str, net_in: str, available: str | None = None,
           rate: str = "0.5"):  # fmt: skip
    return compute_saving(
        equity=D(equity),
        baseline=D(baseline),
        net_in=D(net_in),
        available=D(available or equity),
        rate=D(rate),
        min_transfer=D(10),
    )


def test_profit_is_equity_minus_baseline_and_net_transfers_in() -> None:
    # 3300 - (3000 + 100 received) = 200; half of it is saved; the baseline moves to 3300
    s = saving("3300", "3000", "100")
    assert (s.profit, s.amount, s.new_baseline, s.note) == (D(200), D(100), D(3300), None)
    assert saving("2950", "3000", "0").amount == 0  # a loss saves nothing
    assert saving("2950", "3000", "0").note == "no profit since the baseline"


def test_a_saving_cut_short_carries_the_rest_to_next_week() -> None:
    # profit 100, 50 wanted, only 20 available: 20 saved; 100 - 20 / 0.5 = 60 stays profit,
    # so the baseline becomes 1100 - 60 = 1040
    first = saving("1100", "1000", "0", available="20")
    assert (first.amount, first.new_baseline) == (D(20), D(1040))
    assert first.note == "limited to the available 20.00 (wanted 50.00)"
    # next week, unchanged: 1080 - (1040 - 20 saved) = 60 -> 30; 20 + 30 = half of 100
    second = saving("1080", "1040", "-20")
    assert (second.profit, second.amount) == (D(60), D(30))


def test_small_savings_wait_and_cents_round_down() -> None:
    small = saving("3015", "3000", "0")  # 7.50 < 10
    assert (small.profit, small.amount, small.new_baseline) == (D(15), D(0), None)
    assert small.note == (
        "7.50 is the saving; below min_transfer_usdt (10): nothing moves, kept for later"
    )
    odd = saving("1100.01", "1000", "0", rate="0.3")  # 30.003 -> 30.00; 0.01 stays profit
    assert (odd.amount, odd.new_baseline) == (D("30.00"), D("1100.00"))


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
    # A: 3300 - (3000 + 100 in) = 200 -> 100; B: 3900 - (4000 - 100 out) = 0; C: -50
    assert [(b, lines[b].profit, lines[b].amount) for b in (A, B, C)] == [
        (A, D(200), D(100)),
        (B, D(0), D(0)),
        (C, D(-50), D(0)),
    ]
    assert lines[A].baseline.source == "paper_start"
    [saved] = week1.outcomes
    assert (saved.from_account, saved.to_account, saved.amount, saved.status) == (
        A, MAIN, D(100), "success")  # fmt: skip
    assert saved.key == transfer_key("paper", A, save_window(SUNDAY, MB), 0)
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
    assert row.details["baseline"] == "3300"
    assert row.details["through_id"] == moved.row_id
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
    # A: 3240 - (3300 - 100 saved) = 40 -> 20.  C never saved: 3030 - 3000 = 30 -> 15
    # (last week's loss had to be made good first).  B: 3900 - (4000 - 100) = 0.
    assert [(b, lines[b].profit, lines[b].amount) for b in (A, B, C)] == [
        (A, D(40), D(20)),
        (B, D(0), D(0)),
        (C, D(30), D(15)),
    ]
    assert (lines[A].baseline.source, lines[C].baseline.source) == ("last_saving", "paper_start")
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
                  details=saving_details(plan, a_line), now=SUNDAY)  # fmt: skip
    # B: sent and done, then the process died before recording the answer.
    b_intent = record_intent(engine, kind="profit_save", from_account=B, to_account=MAIN,
                             amount=b_line.amount, coin="USDT", from_wallet="UNIFIED",
                             to_wallet="FUND", key=b_line.key,
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
    # B's settled saving is its new baseline: 4090 - (4100 - 50) = 40 more profit, but this
    # window already has B's saving, so nothing more moves until next week.
    assert (lines[B].baseline.source, lines[B].profit, lines[B].amount) == (
        "last_saving", D(40), D(0))  # fmt: skip
    assert lines[B].note == "already saved in this window (transfer #2, success)"
    [again] = result.outcomes
    assert (again.from_account, again.amount, again.status) == (A, D(100), "success")
    assert again.key == transfer_key("paper", A, save_window(SUNDAY, MB), 1)
    assert ex.balance(MAIN).equity == D(150)  # A 100 once, B 50 once
    assert [(t.from_account, t.status) for t in rows(engine, Transfer)] == [
        (A, "failed"), (B, "success"), (A, "success")]  # fmt: skip


# --------------------------------------------------------------------------- Bybit


@pytest.fixture
def env() -> Iterator[BybitEnv]:
    with bybit_env() as e:
        yield e


def test_saving_on_bybit_from_the_first_snapshot(env: BybitEnv, engine: Engine) -> None:
    cfg = env.loaded().settings
    ex = env.exchange()
    take_snapshot(engine, ex, cfg, now=SUNDAY - timedelta(days=3))  # 1000 each: the baseline
    env.fake.set_balance(A, "USDT", 1100)  # +100 since
    env.fake.set_balance(B, "USDT", 980)  # -20 since
    result = run_save_profit(engine, ex, cfg, now=SUNDAY)
    assert [(o.from_account, o.amount, o.status) for o in result.outcomes] == [
        (A, D(50), "success")
    ]
    assert result.plan.bots[0].baseline.source == "first_snapshot"
    [call] = env.calls("/v5/asset/transfer/universal-transfer")
    body = json.loads(call.body)
    assert call.account == "main"
    assert (body["fromAccountType"], body["toAccountType"], body["amount"]) == (
        "UNIFIED", "FUND", "50")  # fmt: skip
    assert body["transferId"] == transfer_key("testnet", A, save_window(SUNDAY, MB), 0)
    assert env.fake.balance("main", account_type="FUND") == D(550)
    assert result.snapshot is not None
    assert (result.snapshot.total_balance_usdt, result.snapshot.profit_saved_balance) == (
        D(1050) + D(980) + D(1000), D(550))  # fmt: skip
    again = run_save_profit(engine, ex, cfg, now=SUNDAY + timedelta(hours=1))
    assert again.status == "already_saved"
    assert len(env.calls("/v5/asset/transfer/universal-transfer")) == 1
