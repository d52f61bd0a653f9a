"""The order journal and reconciliation against the fake Bybit, through the real pybit client.

The cases the journal exists for: an answer lost between sending and recording, a restart, fills
made while the process was down, orders nobody recorded, and a second run that changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.clock import RealClock, SimClock
from jiritsu.db.models import Execution, Order, SystemEvent, Trade
from jiritsu.exchange.errors import AuthError, ExchangeError, ExchangeUnavailable
from jiritsu.exchange.ids import client_order_id
from jiritsu.exchange.journal import OrderJournal
from jiritsu.exchange.reconcile import BotAccount, reconcile
from jiritsu.exchange.types import OrderRequest
from tests.exchange.bybit_env import BybitEnv, bybit_env

BOT = BotAccount("SubBot-C", "linear", "BTCUSDT")
WALL = RealClock()  # the loopback fake runs on the wall clock
CREATE = "/v5/order/create"


@pytest.fixture
def env() -> Iterator[BybitEnv]:
    with bybit_env() as e:
        yield e


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            m.__tablename__: conn.execute(sa.select(sa.func.count()).select_from(m)).scalar_one()
            for m in (Order, Execution, Trade, SystemEvent)
        }


def _orders(engine: Engine) -> list[Order]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return list(session.scalars(sa.select(Order).order_by(Order.id)))


def test_lost_answer_then_restart_leaves_one_order_and_one_row(
    env: BybitEnv, engine: Engine
) -> None:
    exchange = env.exchange()
    request = OrderRequest(
        client_order_id=client_order_id(BOT.name, "bar-1", 0),
        symbol="BTCUSDT",
        side="Buy",
        qty=Decimal("0.01"),
    )
    # Every attempt is accepted by the exchange and its answer lost, as if we died each time.
    env.fake.inject("/v5/order/create", "accept_then_drop", times=None)
    with pytest.raises(ExchangeUnavailable):
        OrderJournal(engine, exchange, environment="testnet", clock=WALL).submit(
            BOT.name, BOT.category, request, reason="ema cross"
        )
    (row,) = _orders(engine)
    assert row.status == "unknown"
    env.fake.clear_faults()

    # Restart: a new journal (new process) submits the same decision again.
    state = OrderJournal(engine, env.exchange(), environment="testnet", clock=WALL).submit(
        BOT.name, BOT.category, request, reason="ema cross"
    )
    assert len(env.fake.orders) == 1
    (row,) = _orders(engine)
    assert row.client_order_id == request.client_order_id
    assert row.exchange_order_id == state.exchange_order_id
    assert row.status == "filled"
    assert row.reason == "ema cross"


def test_reconcile_adopts_what_happened_while_down_and_is_idempotent(
    env: BybitEnv, engine: Engine
) -> None:
    exchange = env.exchange()
    journal = OrderJournal(engine, exchange, environment="testnet", clock=WALL)
    # 1. Recorded, then the process died before sending: the exchange never saw it.
    never_sent = OrderRequest(
        client_order_id("SubBot-C", "bar-2", 0), "BTCUSDT", "Buy", Decimal("0.01")
    )
    journal.record(BOT.name, BOT.category, never_sent)
    # 2. Recorded, sent and filled, but the process died before recording the answer.
    filled_while_down = OrderRequest(
        client_order_id("SubBot-C", "bar-3", 0), "BTCUSDT", "Buy", Decimal("0.02")
    )
    journal.record(BOT.name, BOT.category, filled_while_down, reason="rsi 28")
    env.raw("SubBot-C").place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.02",
        orderLinkId=filled_while_down.client_order_id,
    )  # fmt: skip
    # 3. An order nobody recorded (placed by hand on the exchange), still open.
    env.raw("SubBot-C").place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.005",
        price="30000", orderLinkId="manual-by-operator-1",
    )  # fmt: skip

    report = reconcile(engine, exchange, [BOT], environment="testnet", clock=WALL)
    kinds = sorted(d.kind for d in report.differences)
    assert kinds == ["fill_adopted", "order_adopted", "order_updated", "order_vanished"]
    rows = {o.client_order_id: o for o in _orders(engine)}
    assert rows[never_sent.client_order_id].status == "cancelled"
    assert "never reached" in rows[never_sent.client_order_id].error
    assert rows[filled_while_down.client_order_id].status == "filled"
    assert rows[filled_while_down.client_order_id].filled_qty == Decimal("0.02")
    assert rows["manual-by-operator-1"].status == "new"
    with engine.connect() as conn:
        trade = conn.execute(sa.select(Trade)).one()
        events = conn.execute(sa.select(SystemEvent.level, SystemEvent.event_type)).all()
    assert trade.quantity == Decimal("0.02")
    assert trade.entry_reason == "rsi 28"
    assert trade.client_order_id == filled_while_down.client_order_id
    assert events == [("WARNING", "RECONCILE")] * 4

    before = _counts(engine)
    again = reconcile(engine, exchange, [BOT], environment="testnet", clock=WALL)
    assert again.clean, again.differences
    assert _counts(engine) == before


def test_a_fill_older_than_the_lookback_shows_as_a_position_difference(
    env: BybitEnv, engine: Engine
) -> None:
    env.raw("SubBot-C").place_order(
        category="linear", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.01",
        orderLinkId="ancient-1",
    )  # fmt: skip
    exchange = env.exchange()
    later = datetime.fromtimestamp(env.t0 / 1000, timezone.utc) + timedelta(days=9)
    report = reconcile(engine, exchange, [BOT], environment="testnet", clock=SimClock(later))
    (diff,) = [d for d in report.differences if d.kind == "position"]
    assert diff.details == {"exchange": "-0.01", "fills": "0"}


def test_reconcile_command_against_the_fake(
    env: BybitEnv, monkeypatch: pytest.MonkeyPatch, isolated_env: object
) -> None:
    from typer.testing import CliRunner

    from jiritsu_cli.main import app
    from tests.exchange.bybit_env import ENV_NAMES, KEYS

    monkeypatch.setenv("JIRITSU_GENERAL__ENVIRONMENT", "testnet")
    monkeypatch.setenv("JIRITSU_EXCHANGE__BASE_URL", env.fake.endpoint)
    monkeypatch.setenv("JIRITSU_EXCHANGE__CA_FILE", str(env.fake.ca_path))
    for account, (key_env, secret_env) in ENV_NAMES.items():
        monkeypatch.setenv(key_env, KEYS[account][0])
        monkeypatch.setenv(secret_env, KEYS[account][1])
    env.raw("SubBot-C").place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.01",
        orderLinkId="while-down-1",
    )  # fmt: skip
    runner = CliRunner()
    first = runner.invoke(app, ["reconcile", "--bot", "SubBot-C"])
    assert first.exit_code == 0, first.output
    assert "fill_adopted" in first.output
    second = runner.invoke(app, ["reconcile", "--bot", "SubBot-C"])
    assert second.exit_code == 0, second.output
    assert "in sync with the exchange (SubBot-C)" in second.output
    unknown = runner.invoke(app, ["reconcile", "--bot", "SubBot-X"])
    assert unknown.exit_code == 2
    assert "no enabled bot named 'SubBot-X'" in unknown.output


@pytest.mark.parametrize(
    ("status", "error", "reason"),
    [(404, ExchangeError, "ExchangeError: bybit place order"),
     (401, AuthError, "AuthError: bybit place order")],
)  # fmt: skip
def test_an_unclassified_failure_is_recorded_and_settled_once(
    env: BybitEnv, engine: Engine, status: int, error: type[Exception], reason: str
) -> None:
    exchange = env.exchange()
    request = OrderRequest(client_order_id(BOT.name, "bar-9", 0), "BTCUSDT", "Buy", Decimal("0.01"))
    env.fake.inject(CREATE, f"http_{status}", times=None)
    with pytest.raises(error):
        OrderJournal(engine, exchange, environment="testnet", clock=WALL).submit(
            BOT.name, BOT.category, request
        )
    (row,) = _orders(engine)
    assert row.status == "unknown"  # the exchange may or may not have it: ask before anything
    assert row.error.startswith(reason)
    assert f"HTTP {status}" in row.error
    report = reconcile(engine, exchange, [BOT], environment="testnet", clock=WALL)
    assert [d.kind for d in report.differences] == ["order_vanished"]
    (row,) = _orders(engine)
    assert (row.status, row.error) == ("cancelled", "vanished: never reached the exchange")
    assert reconcile(engine, exchange, [BOT], environment="testnet", clock=WALL).clean
    # a restart re-deriving the same order: settled, so neither sent again nor an error
    env.fake.clear_faults()
    env.fake.clear_requests()
    again = OrderJournal(engine, env.exchange(), environment="testnet", clock=WALL).submit(
        BOT.name, BOT.category, request
    )
    assert (again.status, again.exchange_order_id) == ("cancelled", None)
    assert env.calls(CREATE) == []
    assert env.fake.orders == []


def test_reconcile_leaves_a_bot_alone_while_a_trade_loop_holds_it(
    env: BybitEnv, engine: Engine, tmp_path: Path
) -> None:
    """The loop's order filled on the exchange and not recorded yet (its next step will) is
    not reconcile's business while the loop holds the bot: no adoption, no WARNING, no alert."""
    from jiritsu.locks import bot_lock

    exchange = env.exchange()
    journal = OrderJournal(engine, exchange, environment="testnet", clock=WALL)
    request = OrderRequest(client_order_id("SubBot-C", "bar-9", 0), "BTCUSDT", "Buy",
                           Decimal("0.01"))  # fmt: skip
    journal.record(BOT.name, BOT.category, request, reason="the loop's own order")
    env.raw("SubBot-C").place_order(
        category="linear", symbol="BTCUSDT", side="Buy", orderType="Market", qty="0.01",
        orderLinkId=request.client_order_id,
    )  # fmt: skip
    with bot_lock(tmp_path, BOT.name, wait_seconds=0):  # the running loop
        report = reconcile(engine, exchange, [BOT], environment="testnet", clock=WALL,
                           data_dir=tmp_path, lock_wait=0.3)  # fmt: skip
    assert (report.bots, report.clean) == ([], True)
    assert report.skipped == {BOT.name: "a trade loop is working its orders and reconciles "
                                        "them itself"}  # fmt: skip
    assert _counts(engine)["system_events"] == 0
    assert [o.status for o in _orders(engine)] == ["pending"]  # untouched
    after = reconcile(engine, exchange, [BOT], environment="testnet", clock=WALL, data_dir=tmp_path)
    assert after.bots == [BOT.name]  # the loop is gone: the bot is reconciled again
    assert [o.status for o in _orders(engine)] == ["filled"]
