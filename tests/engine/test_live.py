"""Live paper trading: the loop tops the candle store up from Bybit's public klines (here the
loopback fake) at every step and trades on them; SIGHUP reloads the configuration and the tuned
overlay while it runs."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from jiritsu.config import write_overlay
from jiritsu.db.engine import make_engine
from tests.engine.conftest import LOT_SIZING
from tests.engine.test_kill_restart import falling_path
from tests.fakes.bybit import FakeBybit
from tests.processes import jiritsu_env, run_jiritsu, start_jiritsu


@pytest.fixture
def market() -> Iterator[FakeBybit]:
    with FakeBybit() as server:  # public market data only: no accounts needed
        server.set_price_path("BTCUSDT", falling_path(int(time.time() * 1000)))
        yield server


def paper_env(fake: FakeBybit, data_dir: Path) -> dict[str, str]:
    return jiritsu_env(data_dir, {
        "JIRITSU_GENERAL__ENVIRONMENT": "paper",
        "JIRITSU_PAPER__PRICE_SOURCE": "bybit",  # live prices; "replay" would be offline
        "JIRITSU_EXCHANGE__BASE_URL": fake.endpoint,
        "JIRITSU_EXCHANGE__CA_FILE": str(fake.ca_path),
        "JIRITSU_NEWS_SENTIMENT__ENABLED": "false",
        **LOT_SIZING,
        "JIRITSU_RISK__CRASH_MOVE_PCT": "1",
        "JIRITSU_SUB_BOTS__SUBBOT_A__ENABLED": "false",
        "JIRITSU_SUB_BOTS__SUBBOT_B__ENABLED": "false",
        "JIRITSU_SUB_BOTS__SUBBOT_C__TIMEFRAME": "1",
    })  # fmt: skip


def query(db: Path, sql: str) -> list[tuple]:
    if not db.exists():
        return []
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def wait_for(predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_live_paper_trades_on_fresh_public_candles_and_reloads_on_sighup(
    market: FakeBybit, isolated_env: Path
) -> None:
    env = paper_env(market, isolated_env)
    db = isolated_env / "jiritsu.db"
    assert run_jiritsu(["db", "upgrade"], env).returncode == 0
    log = (isolated_env / "loop.out").open("w")
    proc = start_jiritsu(["trade-loop"], env, stdout=log, stderr=log)
    try:
        # RSI 0 on the fake's falling 1-minute bars: SubBot-C buys at once (2 legs by price)
        orders = wait_for(lambda: query(db, "select side, order_type from paper_orders"))
        assert orders[0] == ("Buy", "Market")
        stored = query(db, "select count(*), max(ts) from candles")[0]
        assert stored[0] >= 170  # the fake's three hours of history, backfilled
        assert stored[1] >= int(time.time() * 1000) - 3 * 60_000
        write_overlay(
            isolated_env / "tuned.toml",
            {"SubBot-C.base_lot": 120, "SubBot-C.strategy_params.sl_ratio": 1.5},
            {"source": "test"},
        )
        proc.send_signal(signal.SIGHUP)
        (config,) = wait_for(lambda: query(db, "select message, details from system_events "
                                               "where event_type = 'CONFIG'"))  # fmt: skip
        assert "configuration reloaded (SIGHUP): 2 change(s)" in config[0]
        assert '"SubBot-C.base_lot": "150 -> 120"' in config[1]
        assert '"SubBot-C.sl_ratio": "0.75 -> 1.5"' in config[1]
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        assert time.monotonic() - started < 10  # bounded sleeps: honoured promptly
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, (isolated_env / "loop.out").read_text()
    qty = query(db, "select qty from paper_orders where order_type = 'Market'")[0][0]
    assert Decimal(qty) > 0
