"""A process killed between sending an order and recording its answer, then restarted.

The child records the order, sends it, and the fake Bybit accepts it but holds the answer; the
child is SIGKILLed mid-request. The restart re-submits the same decision: exactly one order on
the exchange, one row in ``orders``, and reconciliation adopts its fill once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa

from jiritsu.clock import RealClock
from jiritsu.config import load_config
from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.db.models import Execution, Order
from jiritsu.exchange.reconcile import BotAccount, reconcile
from jiritsu.exchange.types import OrderRequest
from jiritsu.runtime import build_runtime
from tests.exchange.bybit_env import BybitEnv, bybit_env
from tests.processes import fake_bybit_env, jiritsu_env

CHILD = """
import sys
from decimal import Decimal
from jiritsu.config import load_config
from jiritsu.exchange.types import OrderRequest
from jiritsu.runtime import build_runtime

loaded = load_config()
journal = build_runtime(loaded).journal
request = OrderRequest("SubBotC-crash-test-L0", "BTCUSDT", "Buy", Decimal("0.01"))
print("sending", flush=True)
journal.submit("SubBot-C", "linear", request, reason="crash test")
print("answered", flush=True)  # never reached: killed while waiting for the answer
"""


@pytest.fixture
def env() -> Iterator[BybitEnv]:
    with bybit_env() as e:
        yield e


def test_sigkill_mid_request_then_restart(env: BybitEnv, isolated_env: Path) -> None:
    variables = jiritsu_env(
        isolated_env, fake_bybit_env(env.fake), JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS="30"
    )
    loaded = load_config(environ=variables)
    migrate.upgrade(loaded.db_url)

    # The exchange takes the order, then sits on the answer.
    env.fake.inject("/v5/order/create", "accept_then_timeout", times=1, seconds=20)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], env=variables, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not env.fake.orders and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(env.fake.orders) == 1, "the order never reached the exchange"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert "answered" not in child.stdout.read()

    engine = make_engine(loaded.db_url)
    with engine.connect() as conn:
        (status,) = conn.execute(sa.select(Order.status)).one()
    assert status == "sent"  # recorded and sent; its answer was never recorded

    # Restart: the same decision is submitted again by a fresh process state.
    env.fake.clear_faults()
    rt = build_runtime(loaded, db=engine)
    exchange = rt.exchange
    request = OrderRequest("SubBotC-crash-test-L0", "BTCUSDT", "Buy", Decimal("0.01"))
    state = rt.journal.submit("SubBot-C", "linear", request, reason="crash test")
    assert state.status == "filled"
    assert len(env.fake.orders) == 1
    report = reconcile(
        engine,
        exchange,
        [BotAccount("SubBot-C", "linear", "BTCUSDT")],
        environment="testnet",
        clock=RealClock(),
    )
    assert [d.kind for d in report.differences] == ["fill_adopted"]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(Order.status, Order.filled_qty)).all()
        fills = conn.execute(sa.select(sa.func.count()).select_from(Execution)).scalar()
    assert rows == [("filled", Decimal("0.01"))]
    assert fills == 1
    engine.dispose()
