"""BybitExchange trading and account queries, through the real pybit client and a real HTTPS
socket to the fake Bybit."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import polars as pl
import pytest

from jiritsu.errors import UsageError
from jiritsu.exchange import MAIN, Exchange, NotFound, OrderRejected
from jiritsu.exchange.ids import client_order_id
from jiritsu.exchange.types import OrderRequest
from tests.exchange.bybit_env import MIN, BybitEnv, btc_rows, bybit_env
from tests.fakes.bybit import Instrument as FakeInstrument

CREATE = "/v5/order/create"


@pytest.fixture
def env():
    with bybit_env() as e:
        yield e


def at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def buy(cid: str, qty: str, symbol: str = "BTCUSDT", **kw) -> OrderRequest:
    return OrderRequest(cid, symbol, "Buy", Decimal(qty), **kw)


def test_is_an_exchange(env: BybitEnv):
    assert isinstance(env.exchange(), Exchange)


def test_market_order_fills_and_fills_positions_balance_agree(env: BybitEnv):
    ex = env.exchange()
    cid = client_order_id("SubBot-C", "tick-1/entry", 0)
    state = ex.place_order("SubBot-C", "linear", buy(cid, "0.01"))
    assert state.client_order_id == cid
    assert state.status == "filled"
    assert state.filled_qty == Decimal("0.01")
    ask = Decimal(40110) + Decimal("0.1")  # the current row closes at 40110; ask = one tick up
    assert state.avg_price == ask
    assert state.price is None
    assert not state.is_open

    fills = ex.executions("SubBot-C", "linear", since=at(env.t0))
    assert len(fills) == 1
    f = fills[0]
    fee = ask * Decimal("0.01") * Decimal("0.00055")
    assert (f.client_order_id, f.exchange_order_id, f.side) == (cid, state.exchange_order_id, "Buy")
    assert (f.price, f.qty, f.fee, f.fee_currency, f.is_maker) == (
        ask,
        Decimal("0.01"),
        fee,
        "USDT",
        False,
    )
    assert f.time == at(env.t0)

    [pos] = ex.positions("SubBot-C", "linear")
    assert (pos.symbol, pos.side, pos.size, pos.avg_price) == (
        "BTCUSDT",
        "Buy",
        Decimal("0.01"),
        ask,
    )
    bal = ex.balance("SubBot-C")
    assert bal.wallet_balance == Decimal(1000) - fee == env.fake.balance("SubBot-C")
    assert bal.available < bal.wallet_balance  # margin is in use

    # leverage was set once (the fake already had 1x: 110043 counts as done), never again
    ex.place_order("SubBot-C", "linear", buy(client_order_id("SubBot-C", "tick-2", 0), "0.001"))
    lev = env.calls("/v5/position/set-leverage")
    assert [(r.ret_code, json.loads(r.body)["buyLeverage"]) for r in lev] == [(110043, "1")]
    assert len(env.calls(CREATE)) == 2


def test_leverage_from_config_is_applied_before_the_first_order(env: BybitEnv):
    ex = env.exchange({"JIRITSU_EXCHANGE__LEVERAGE": "3"})
    ex.place_order("SubBot-C", "linear", buy(client_order_id("SubBot-C", "d", 0), "0.01"))
    [pos] = ex.positions("SubBot-C", "linear")
    assert pos.leverage == 3
    paths = [r.path for r in env.fake.requests]
    assert paths.index("/v5/position/set-leverage") < paths.index(CREATE)


def test_limit_order_rests_fills_after_the_clock_moves_and_another_is_cancelled(env: BybitEnv):
    rows = [(2000, 2001, 1999, 2000)] * 11 + [(2000, 2002, 1995, 1996), (1996, 1997, 1980, 1985)]
    env.fake.set_price_path(
        "ETHUSDT", [(env.t0 - 10 * MIN + i * MIN, *r, 1) for i, r in enumerate(rows)]
    )
    ex = env.exchange()
    rest = client_order_id("SubBot-C", "limit", 0)
    other = client_order_id("SubBot-C", "limit", 1)
    state = ex.place_order(
        "SubBot-C", "linear", buy(rest, "0.2", "ETH/USDT", order_type="Limit", price=Decimal(1990))
    )
    assert (state.status, state.price, state.filled_qty) == ("new", Decimal(1990), 0)
    ex.place_order(
        "SubBot-C", "linear", buy(other, "0.1", "ETHUSDT", order_type="Limit", price=Decimal(1900))
    )
    assert {o.client_order_id for o in ex.open_orders("SubBot-C", "linear")} == {rest, other}

    env.fake.advance(minutes=1)  # low 1995: not yet
    assert ex.get_order("SubBot-C", "linear", "ETHUSDT", rest).status == "new"
    env.fake.advance(minutes=1)  # low 1980: trades through 1990
    filled = ex.get_order("SubBot-C", "linear", "ETHUSDT", rest)
    assert (filled.status, filled.avg_price, filled.filled_qty) == ("filled", 1990, Decimal("0.2"))
    [fill] = ex.executions("SubBot-C", "linear", symbol="ETHUSDT")
    assert (fill.is_maker, fill.fee_rate, fill.time) == (
        True,
        Decimal("0.0002"),
        at(env.t0 + 2 * MIN),
    )

    cancelled = ex.cancel_order("SubBot-C", "linear", "ETHUSDT", client_order_id=other)
    assert cancelled is not None
    assert (cancelled.client_order_id, cancelled.status) == (other, "cancelled")
    assert ex.open_orders("SubBot-C", "linear") == []
    # already final: None, after checking
    assert ex.cancel_order("SubBot-C", "linear", "ETHUSDT", client_order_id=other) is None
    assert ex.cancel_order("SubBot-C", "linear", "ETHUSDT", client_order_id=rest) is None
    # by exchange id too
    third = ex.place_order(
        "SubBot-C",
        "linear",
        buy(
            client_order_id("SubBot-C", "limit", 2),
            "0.1",
            "ETHUSDT",
            order_type="Limit",
            price=Decimal(1900),
        ),
    )
    again = ex.cancel_order(
        "SubBot-C", "linear", "ETHUSDT", exchange_order_id=third.exchange_order_id
    )
    assert again is not None
    assert again.status == "cancelled"


def test_quantity_below_the_minimum_is_refused_before_sending(env: BybitEnv):
    ex = env.exchange()
    with pytest.raises(OrderRejected, match="rounds to zero"):
        ex.place_order("SubBot-C", "linear", buy("tiny-1", "0.0004"))
    with pytest.raises(OrderRejected, match="below the minimum"):
        ex.place_order("SubBot-A", "spot", buy("tiny-2", "0.000005"))
    with pytest.raises(OrderRejected, match="needs a price"):
        ex.place_order("SubBot-C", "linear", buy("tiny-3", "0.01", order_type="Limit"))
    with pytest.raises(OrderRejected, match="orderLinkId"):
        ex.place_order("SubBot-C", "linear", buy("has space", "0.01"))
    with pytest.raises(OrderRejected, match="orderLinkId"):
        ex.place_order("SubBot-C", "linear", buy("x" * 37, "0.01"))
    assert env.calls(CREATE) == []
    assert env.fake.orders == []


def test_quantities_and_prices_are_rounded_with_the_instrument(env: BybitEnv):
    ex = env.exchange()
    state = ex.place_order(
        "SubBot-C",
        "linear",
        buy("round-1", "0.0019", order_type="Limit", price=Decimal("39000.06")),
    )
    body = json.loads(env.calls(CREATE)[0].body)
    assert (body["qty"], body["price"], body["timeInForce"]) == ("0.001", "39000.1", "GTC")
    assert (state.qty, state.price) == (Decimal("0.001"), Decimal("39000.1"))


def test_spot_market_buy_is_sized_in_the_base_coin(env: BybitEnv):
    ex = env.exchange()
    state = ex.place_order("SubBot-A", "spot", buy("spot-1", "0.002", "btc-usdt"))
    assert (state.status, state.filled_qty) == ("filled", Decimal("0.002"))
    body = json.loads(env.calls(CREATE)[0].body)
    assert body["marketUnit"] == "baseCoin"
    assert "positionIdx" not in body
    assert env.calls("/v5/position/set-leverage") == []  # spot never sets leverage
    [fill] = ex.executions("SubBot-A", "spot")
    assert fill.fee_currency == "BTC"  # a spot buy pays its fee in the coin it receives
    assert fill.fee == Decimal("0.002") * Decimal("0.001")
    [held] = ex.positions("SubBot-A", "spot")
    assert (held.symbol, held.side, held.size) == ("BTCUSDT", "Buy", Decimal("0.002") - fill.fee)
    assert ex.positions("SubBot-A", "spot", "BTCUSDT") == [held]
    assert ex.positions("SubBot-B", "spot") == []


def test_reduce_only_close_and_trading_stop(env: BybitEnv):
    ex = env.exchange()
    ex.place_order("SubBot-C", "linear", buy("open-1", "0.01"))
    ex.set_trading_stop(
        "SubBot-C", "linear", "BTCUSDT", take_profit=Decimal("45000.04"), stop_loss=Decimal(39000)
    )
    [pos] = ex.positions("SubBot-C", "linear", "BTCUSDT")
    assert (pos.take_profit, pos.stop_loss) == (Decimal(45000), Decimal(39000))
    stops = ex.open_orders("SubBot-C", "linear", "BTCUSDT")
    assert {o.status for o in stops} == {"untriggered"}
    assert {o.client_order_id for o in stops} == {""}
    # the same values again: "not modified" is success
    ex.set_trading_stop(
        "SubBot-C", "linear", "BTCUSDT", take_profit=Decimal(45000), stop_loss=Decimal(39000)
    )
    ex.set_trading_stop("SubBot-C", "linear", "BTCUSDT", take_profit=None, stop_loss=Decimal(39000))
    [pos] = ex.positions("SubBot-C", "linear")
    assert (pos.take_profit, pos.stop_loss) == (None, Decimal(39000))

    close = OrderRequest("close-1", "BTCUSDT", "Sell", Decimal("0.05"), reduce_only=True)
    state = ex.place_order("SubBot-C", "linear", close)
    assert (state.status, state.filled_qty, state.reduce_only) == ("filled", Decimal("0.01"), True)
    assert ex.positions("SubBot-C", "linear") == []
    with pytest.raises(OrderRejected, match="110017"):
        ex.place_order(
            "SubBot-C",
            "linear",
            OrderRequest("close-2", "BTCUSDT", "Sell", Decimal("0.01"), reduce_only=True),
        )
    with pytest.raises(OrderRejected, match="linear"):
        ex.set_trading_stop("SubBot-A", "spot", "BTCUSDT", take_profit=None, stop_loss=None)


def test_exchange_side_refusals_are_order_rejected_with_the_code(env: BybitEnv):
    doge = FakeInstrument(
        "linear",
        "DOGEUSDT",
        "DOGE",
        "USDT",
        tick_size=Decimal("0.00001"),
        qty_step=Decimal(1),
        min_order_qty=Decimal(1),
        min_notional_value=Decimal(5),
    )
    env.fake.add_instrument(doge)
    env.fake.set_price_path(
        "DOGEUSDT", [(env.t0 - 10 * MIN + i * MIN, 0.1, 0.1, 0.1, 0.1, 1) for i in range(20)]
    )
    ex = env.exchange()
    with pytest.raises(OrderRejected) as exc:  # 1 USDT < minNotionalValue: only Bybit knows
        ex.place_order("SubBot-C", "linear", buy("notional", "10", "DOGEUSDT"))
    assert exc.value.code == 110094
    assert "110094" in str(exc.value)
    assert len(env.calls(CREATE)) == 1  # a business refusal is never retried


def test_get_order_of_an_unknown_id_is_none(env: BybitEnv):
    ex = env.exchange()
    assert ex.get_order("SubBot-C", "linear", "BTCUSDT", "never-sent") is None


def test_executions_follow_the_cursor_across_more_than_100_fills(env: BybitEnv):
    env.fake.enforce_rate_limits = False
    raw = env.raw("SubBot-C")
    ids = [f"bulk-{i:03d}" for i in range(123)]
    for i, cid in enumerate(ids):
        raw.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy" if i % 2 == 0 else "Sell",
            orderType="Market",
            qty="0.001",
            orderLinkId=cid,
        )
        if i % 40 == 39:
            env.fake.advance(seconds=1)
    env.fake.clear_requests()
    ex = env.exchange()
    fills = ex.executions("SubBot-C", "linear", since=at(env.t0))
    assert [f.client_order_id for f in fills] == ids  # oldest first, nothing lost or doubled
    assert len({f.exec_id for f in fills}) == 123
    pages = env.calls("/v5/execution/list")
    assert len(pages) == 2
    assert "cursor" not in pages[0].params
    assert pages[1].params["cursor"]
    assert ex.executions("SubBot-C", "linear", since=at(env.t0 + MIN)) == []
    with pytest.raises(UsageError, match="timezone"):
        ex.executions("SubBot-C", "linear", since=datetime(2026, 1, 1))


def test_open_orders_follow_the_cursor(env: BybitEnv):
    env.fake.enforce_rate_limits = False
    raw = env.raw(MAIN)  # 57 resting orders need more margin than a sub-account has
    for i in range(57):
        raw.place_order(
            category="linear",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.001",
            price=str(30000 + i),
            orderLinkId=f"rest-{i}",
        )
    env.fake.clear_requests()
    orders = env.exchange().open_orders(MAIN, "linear")
    assert len({o.client_order_id for o in orders}) == 57
    assert all(o.status == "new" for o in orders)
    assert len(env.calls("/v5/order/realtime")) == 2
    assert env.calls("/v5/order/realtime")[0].params["settleCoin"] == "USDT"


def test_market_data_instrument_ticker_klines_and_time(env: BybitEnv):
    ex = env.exchange()
    inst = ex.instrument("BTC/USDT")
    assert (inst.symbol, inst.qty_step, inst.min_qty, inst.tick_size) == (
        "BTCUSDT",
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("0.1"),
    )
    assert inst.min_notional == 5
    assert ex.instrument("BTCUSDT", "linear") is inst
    assert len(env.calls("/v5/market/instruments-info")) == 1  # cached
    spot = ex.instrument("BTCUSDT", "spot")
    assert (spot.qty_step, spot.min_notional) == (Decimal("0.000001"), 5)
    with pytest.raises(NotFound):
        ex.instrument("NOPEUSDT")

    t = ex.ticker("BTCUSDT")
    assert t.last == 40110
    assert t.bid < t.last < t.ask
    assert t.mark == t.last

    frame = ex.klines("BTCUSDT", "1", start_ms=env.t0 - 5 * MIN, end_ms=env.t0, limit=4)
    assert frame.schema == pl.Schema(
        {
            "ts": pl.Int64,
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        }
    )
    expected = [r for r in btc_rows(env.t0 - 10 * MIN) if r[0] <= env.t0][-4:]
    assert frame.rows() == [tuple(float(v) if i else v for i, v in enumerate(r)) for r in expected]
    assert frame["ts"].is_sorted()
    with pytest.raises(UsageError):
        ex.klines("BTCUSDT", "7")

    skew = abs((ex.server_time() - datetime.now(timezone.utc)).total_seconds())
    assert skew < 5


def test_accounts_without_keys_and_unknown_accounts(env: BybitEnv):
    with pytest.raises(UsageError) as exc:
        env.exchange(keys={"SubBot-B": None})
    assert "BYBIT_SUBBOT_B_API_KEY" in str(exc.value)
    assert "SubBot-B" in str(exc.value)

    ex = env.exchange(keys={"SubBot-B": None, MAIN: None}, require_keys=False)
    assert ex.ticker("BTCUSDT").last == 40110  # market data needs no key
    with pytest.raises(UsageError, match="BYBIT_SUBBOT_B_API_KEY"):
        ex.balance("SubBot-B")
    with pytest.raises(UsageError, match="BYBIT_MASTER_API_KEY"):
        ex.sub_accounts()
    with pytest.raises(UsageError, match="unknown account"):
        ex.balance("SubBot-Z")


def test_disabled_bot_without_keys_is_fine(env: BybitEnv):
    ex = env.exchange({"JIRITSU_SUB_BOTS__SUBBOT_B__ENABLED": "false"}, keys={"SubBot-B": None})
    with pytest.raises(UsageError, match="BYBIT_SUBBOT_B_API_KEY"):
        ex.balance("SubBot-B")
