"""``jiritsu phase / rebalance / save-profit / snapshot`` end to end: offline on the paper
default (synthetic candles), and in testnet mode against the fake Bybit through pybit."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from jiritsu.db.engine import make_engine
from jiritsu.db.models import MarketPhase, PortfolioSnapshot, Transfer
from jiritsu_cli.main import app
from tests.conftest import REPO
from tests.exchange.bybit_env import ENV_NAMES, KEYS, BybitEnv, btc_rows, bybit_env
from tests.master import A, B, C, M
from tests.master.test_profit import trade

CONFIG = ["-c", str(REPO / "config.toml")]
runner = CliRunner()


def jiritsu(*args: str) -> object:
    return runner.invoke(app, [*CONFIG, *args])


def db(data_dir) -> Session:
    return Session(make_engine(f"sqlite:///{data_dir / 'jiritsu.db'}"))


def test_the_offline_paper_flow(isolated_env, monkeypatch: pytest.MonkeyPatch) -> None:
    assert jiritsu("phase").exit_code == 2  # no candles yet: a usage error, no traceback
    synth = jiritsu("data", "synth", "--days", "4")
    assert synth.exit_code == 0, synth.output

    phase = jiritsu("phase")
    assert phase.exit_code == 0, phase.output
    assert "Market phase of BTCUSDT" in phase.output
    assert "stale:" in phase.output  # synthetic candles of January 2024
    assert "recorded in market_phases" in phase.output
    assert "already recorded for this bar" in jiritsu("phase").output

    shares = json.dumps({A: 0.5, B: 0.25, C: 0.25})  # whatever the phase: A 5000, B/C 2500
    for name in ("STRONG_BULL", "WEAK_BULL", "RANGING", "WEAK_BEAR", "STRONG_BEAR"):
        monkeypatch.setenv(f"JIRITSU_MASTER_BOT__ALLOCATIONS__{name}", shares)
    dry = jiritsu("rebalance", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would move 1500.00 USDT SubBot-B -> SubBot-A" in dry.output
    assert "would move 500.00 USDT SubBot-C -> SubBot-A" in dry.output
    assert "dry run: nothing moved, nothing recorded" in dry.output
    with db(isolated_env) as session:
        assert session.query(Transfer).count() == 0

    moved = jiritsu("rebalance")
    assert moved.exit_code == 0, moved.output
    assert "success: 1500.00 USDT SubBot-B -> SubBot-A" in moved.output
    rest = jiritsu("rebalance")
    assert rest.exit_code == 0, rest.output
    assert "nothing to move" in rest.output

    plan = jiritsu("save-profit", "--dry-run", "--force")
    assert plan.exit_code == 0, plan.output
    assert "dry run: would save 0.00 USDT" in plan.output
    saved = jiritsu("save-profit", "--force")
    assert saved.exit_code == 0, saved.output
    assert "saved 0.00 USDT" in saved.output
    again = jiritsu("save-profit", "--force")
    assert again.exit_code == 0, again.output
    assert "already saved for" in again.output

    snap = jiritsu("snapshot")
    assert snap.exit_code == 0, snap.output
    assert "10000.00" in snap.output
    assert "5000.00" in snap.output

    history = jiritsu("phase", "--history", "2024-01-03..2024-01-05", "--record")
    assert history.exit_code == 0, history.output
    assert "bars: strong_bull" in history.output
    assert "new reading(s) in market_phases" in history.output
    assert jiritsu("phase", "--at", "2024-01-03T12:30").exit_code == 0
    assert jiritsu("phase", "--at", "yesterday").exit_code == 2

    with db(isolated_env) as session:
        rows = session.query(Transfer).order_by(Transfer.id).all()
        assert [(t.from_account, t.to_account, t.amount, t.status) for t in rows] == [
            (B, A, Decimal(1500), "success"),
            (C, A, Decimal(500), "success"),
        ]
        assert session.query(PortfolioSnapshot).count() == 2  # after saving, and the command
        assert session.query(MarketPhase).count() > 40


def test_a_halt_stops_rebalance_and_saving_with_exit_4(isolated_env) -> None:
    from jiritsu.clock import wall_now
    from jiritsu.controls import halt

    assert jiritsu("snapshot").exit_code == 0  # creates the database
    halt(
        make_engine(f"sqlite:///{isolated_env / 'jiritsu.db'}"),
        "global",
        "operator",
        now=wall_now(),
    )
    for args in (["rebalance"], ["save-profit", "--force"]):
        result = jiritsu(*args)
        assert result.exit_code == 4, result.output
        assert "halted globally (operator)" in result.output


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[BybitEnv]:
    with bybit_env() as e:
        monkeypatch.setenv("JIRITSU_GENERAL__ENVIRONMENT", "testnet")
        monkeypatch.setenv("JIRITSU_EXCHANGE__BASE_URL", e.fake.endpoint)
        monkeypatch.setenv("JIRITSU_EXCHANGE__CA_FILE", str(e.fake.ca_path))
        for account, (key_env, secret_env) in ENV_NAMES.items():
            monkeypatch.setenv(key_env, KEYS[account][0])
            monkeypatch.setenv(secret_env, KEYS[account][1])
        # The phase from 1-minute bars (EMA 5/20) the fake serves up to the real "now".
        for key, value in {
            "TIMEFRAME": "1", "SHORT_PERIOD": "5", "LONG_PERIOD": "20",
            "THRESHOLDS__WEAK_PCT": "0.0005", "THRESHOLDS__STRONG_PCT": "0.001",
        }.items():  # fmt: skip
            monkeypatch.setenv(f"JIRITSU_MASTER_BOT__MARKET_PHASE__{key}", value)
        start = (int(time.time() * 1000) // M) * M - 180 * M
        e.fake.set_price_path("BTCUSDT", btc_rows(start, 600))  # +10 a minute from 40000
        e.fake.clock = None  # follow real time
        yield e


def test_the_commands_against_the_fake_bybit(env: BybitEnv, isolated_env) -> None:
    phase = jiritsu("phase")
    assert phase.exit_code == 0, phase.output
    assert "Market phase of BTCUSDT: strong_bull" in phase.output
    assert "stale" not in phase.output

    env.fake.inject("/v5/asset/transfer/universal-transfer", "ret_code", ret_code=131212)
    refused = jiritsu("rebalance")  # strong_bull: A gives 400 to C (refused), B gives 100
    assert refused.exit_code == 1, refused.output
    assert "failed: 400.00 USDT SubBot-A -> SubBot-C" in refused.output
    assert "success: 100.00 USDT SubBot-B -> SubBot-C" in refused.output

    moved = jiritsu("rebalance")
    assert moved.exit_code == 0, moved.output
    assert "success: 400.00 USDT SubBot-A -> SubBot-C" in moved.output
    assert [env.fake.balance(b) for b in (A, B, C)] == [600, 900, 1500]

    snap = jiritsu("snapshot")
    assert snap.exit_code == 0, snap.output
    assert "3000.00" in snap.output
    assert "500.00" in snap.output  # the main account's FUND wallet
    env.fake.set_balance(C, "USDT", 1530)  # C made 30 by trading (its closing trade):
    trade(make_engine(f"sqlite:///{isolated_env / 'jiritsu.db'}"), C, "30", datetime.now(UTC))
    saved = jiritsu("save-profit", "--force")
    assert saved.exit_code == 0, saved.output
    assert "success: 15.00 USDT SubBot-C -> savings" in saved.output
    assert env.fake.balance("main", account_type="FUND") == 515
