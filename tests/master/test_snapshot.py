"""Portfolio snapshots: one ``portfolio_history`` row with its per-bot rows, the savings kept
apart from the trading total, the phase, and nothing written when a balance cannot be read."""

from __future__ import annotations

import inspect
import json
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from jiritsu.db.models import PortfolioBotBalance
from jiritsu.db.models import PortfolioSnapshot as SnapshotRow
from jiritsu.exchange.errors import NotFound
from jiritsu.master.phase import PhaseReading, record_reading
from jiritsu.master.snapshot import BotBalance, take_snapshot
from tests.master import A, B, C, D, credit, paper, settings, utc

NOW = utc(2026, 1, 2, 12, 0)


def test_the_signature_the_trade_loop_calls() -> None:
    params = inspect.signature(take_snapshot).parameters
    assert list(params) == ["engine", "exchange", "settings", "now", "phase", "locked",
                            "lock_wait"]  # fmt: skip
    assert [params[p].kind.name for p in ("now", "phase", "locked")] == ["KEYWORD_ONLY"] * 3


def test_a_snapshot_reads_no_balance_while_a_master_run_moves_money(
    engine: Engine, tmp_path: Path
) -> None:
    from jiritsu.locks import MasterBusy, master_lock

    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    with master_lock(engine, tmp_path):  # a rebalance in progress
        with pytest.raises(MasterBusy):
            take_snapshot(engine, ex, cfg, now=NOW, lock_wait=0)
        inside = take_snapshot(engine, ex, cfg, now=NOW, locked=True)  # the run's own
    after = take_snapshot(engine, ex, cfg, now=NOW, lock_wait=0)
    assert (inside.id, after.id) == (1, 2)


def test_a_snapshot_records_every_bot_the_total_and_the_savings(
    engine: Engine, tmp_path: Path
) -> None:
    cfg = settings(tmp_path, paper={"main_balance": "500"})
    ex, _ = paper(engine, cfg)
    credit(engine, C, "12.5", NOW - timedelta(hours=1))
    record_reading(
        engine,
        PhaseReading("BTCUSDT", "weak_bear", "EMA_Cross", -0.01, "60", NOW - timedelta(hours=2),
                     NOW - timedelta(hours=1), NOW, {}),
    )  # fmt: skip

    snap = take_snapshot(engine, ex, cfg, now=NOW)
    assert snap.bots == (
        BotBalance(A, D(3000), D(3000)),
        BotBalance(B, D(4000), D(4000)),
        BotBalance(C, D("3012.5"), D("3012.5")),
    )
    # the savings (MAIN's FUND wallet) are not part of the trading total
    assert (snap.total_balance_usdt, snap.profit_saved_balance) == (D("10012.5"), D(500))
    assert (snap.phase, snap.environment, snap.timestamp) == ("weak_bear", "paper", NOW)

    with Session(engine) as session:
        [row] = session.query(SnapshotRow).all()
        bots = session.query(PortfolioBotBalance).order_by(PortfolioBotBalance.bot_name).all()
        wide = session.execute(
            sa.text("SELECT total_balance_usdt, bot_balances FROM portfolio_history_wide")
        ).one()
    assert (row.id, row.timestamp, row.total_balance_usdt, row.profit_saved_balance) == (
        snap.id, NOW, D("10012.5"), D(500))  # fmt: skip
    assert (row.phase, row.environment) == ("weak_bear", "paper")
    assert [(b.snapshot_id, b.bot_name, b.balance, b.available_balance) for b in bots] == [
        (row.id, A, D(3000), D(3000)),
        (row.id, B, D(4000), D(4000)),
        (row.id, C, D("3012.5"), D("3012.5")),
    ]
    balances = wide[1] if isinstance(wide[1], dict) else json.loads(wide[1])
    assert {k: D(str(v)) for k, v in balances.items()} == {A: 3000, B: 4000, C: D("3012.5")}


def test_only_enabled_bots_and_an_explicit_phase(engine: Engine, tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    cfg.bot(B).enabled = False
    snap = take_snapshot(engine, ex, cfg, now=NOW, phase="ranging")
    assert [b.bot for b in snap.bots] == [A, C]
    assert (snap.total_balance_usdt, snap.profit_saved_balance, snap.phase) == (
        D(6000), D(0), "ranging")  # fmt: skip


def test_nothing_is_written_when_a_balance_cannot_be_read(engine: Engine, tmp_path: Path):
    cfg = settings(tmp_path)
    ex, _ = paper(engine, cfg)
    extra = cfg.bot(C).model_copy(update={"name": "SubBot-D"})
    cfg.sub_bots.append(extra)  # configured, but the exchange has no such account
    with pytest.raises(NotFound):
        take_snapshot(engine, ex, cfg, now=NOW)
    with Session(engine) as session:
        assert session.query(SnapshotRow).count() == 0
        assert session.query(PortfolioBotBalance).count() == 0
