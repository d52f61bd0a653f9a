"""The fake Bybit, driven through the REAL pybit client over real HTTPS sockets.

These tests pin both the fake's behaviour and pybit's (retries, exceptions), which the exchange
layer has to live with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import pytest
import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError
from pybit.unified_trading import HTTP

from tests.conftest import REPO
from tests.fakes.bybit import FakeBybit, Instrument

T0 = 1_704_067_200_000  # 2024-01-01 00:00:00 UTC, a Monday
MIN = 60_000
MAIN = ("main", 1001, "MAIN-KEY", "MAIN-SECRET")
SUB1 = ("sub1", 1002, "SUB1-KEY", "SUB1-SECRET")
SUB2 = ("sub2", 1003, "SUB2-KEY", "SUB2-SECRET")


def btc_rows(n: int = 240) -> list[tuple]:
    """A gentle up-trend: row i opens at 40000 + 10*i and closes 10 higher."""
    rows = []
    for i in range(n):
        o = 40000 + 10 * i
        rows.append((T0 + i * MIN, o, o + 15, o - 5, o + 10, 2))
    return rows


def rows_from(ohlc: list[tuple], start: int = T0) -> list[tuple]:
    return [(start + i * MIN, o, h, lo, c, 1) for i, (o, h, lo, c) in enumerate(ohlc)]


@pytest.fixture
def fake():
    with FakeBybit() as f:
        f.add_account(*MAIN, usdt=Decimal(10000), master=True, fund_usdt=Decimal(500))
        f.add_account(*SUB1, usdt=Decimal(1000), fund_usdt=Decimal(100))
        f.add_account(*SUB2, usdt=Decimal(1000))
        f.set_price_path("BTCUSDT", btc_rows())
        f.set_price_path("ETHUSDT", rows_from([(2000, 2001, 1999, 2000)] * 60))
        f.clock = T0
        yield f
        assert f.internal_errors == []


def session(fake: FakeBybit, who: tuple = MAIN, **kw) -> HTTP:
    opts = {"timeout": 3, "max_retries": 1, "retry_delay": 0, **kw}
    s = HTTP(api_key=who[2], api_secret=who[3], testnet=True, **opts)
    s.endpoint = fake.endpoint
    s.client.verify = fake.ca_path
    return s


def market(s: HTTP, symbol: str, side: str, qty: str, **kw) -> dict:
    return s.place_order(
        category="linear", symbol=symbol, side=side, orderType="Market", qty=qty, **kw
    )


def ret_code_of(exc: pytest.ExceptionInfo) -> int:
    return exc.value.status_code


# --------------------------------------------------------------------------- market data
def test_server_time_and_rate_limit_headers(fake):
    s = session(fake, return_response_headers=True)
    body, _elapsed, headers = s.get_server_time()
    assert body["retCode"] == 0
    assert body["retMsg"] == "OK"
    assert body["retExtInfo"] == {}
    now_ms = int(time.time() * 1000)
    assert abs(int(body["result"]["timeSecond"]) * 1000 - now_ms) < 5000
    assert body["result"]["timeNano"].startswith(body["result"]["timeSecond"])
    assert abs(body["time"] - now_ms) < 5000
    assert int(headers["X-Bapi-Limit"]) > 0
    assert int(headers["X-Bapi-Limit-Status"]) >= 0
    assert int(headers["X-Bapi-Limit-Reset-Timestamp"]) > now_ms - 1000


def test_instruments_linear_and_spot(fake):
    s = session(fake)
    linear = s.get_instruments_info(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert linear["priceFilter"]["tickSize"] == "0.1"
    lot = linear["lotSizeFilter"]
    assert (lot["qtyStep"], lot["minOrderQty"], lot["minNotionalValue"]) == ("0.001", "0.001", "5")
    assert isinstance(lot["maxOrderQty"], str)
    spot = s.get_instruments_info(category="spot", symbol="BTCUSDT")["result"]["list"][0]
    assert spot["lotSizeFilter"]["basePrecision"] == "0.000001"
    assert spot["lotSizeFilter"]["minOrderAmt"] == "5"
    assert spot["priceFilter"]["tickSize"] == "0.1"
    all_linear = s.get_instruments_info(category="linear")["result"]["list"]
    assert {"BTCUSDT", "ETHUSDT"} <= {i["symbol"] for i in all_linear}


def test_tickers_around_current_price(fake):
    s = session(fake)
    t = s.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert t["lastPrice"] == "40010"  # close of the current (first) row
    assert t["markPrice"] == "40010"
    assert Decimal(t["bid1Price"]) < Decimal(t["lastPrice"]) < Decimal(t["ask1Price"])
    fake.advance(minutes=3)
    t = s.get_tickers(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert t["lastPrice"] == "40040"
    with pytest.raises(InvalidRequestError) as exc:
        s.get_tickers(category="linear", symbol="NOPEUSDT")
    assert ret_code_of(exc) == 10001


def test_klines_newest_first_limit_start_end_and_paging(fake):
    s = session(fake)
    fake.advance(minutes=59)  # rows 0..59 visible, row 59 is the current bar
    rows = s.get_kline(category="linear", symbol="BTCUSDT", interval="1")["result"]["list"]
    assert len(rows) == 60
    assert [int(r[0]) for r in rows] == [T0 + i * MIN for i in range(59, -1, -1)]  # newest first
    assert rows[0] == [str(T0 + 59 * MIN), "40590", "40605", "40585", "40600", "2", "81200"]
    assert all(isinstance(v, str) for r in rows for v in r)

    five = s.get_kline(category="linear", symbol="BTCUSDT", interval="5", limit=3)["result"]["list"]
    assert [int(r[0]) for r in five] == [T0 + 55 * MIN, T0 + 50 * MIN, T0 + 45 * MIN]
    assert five[0][1:6] == ["40550", "40605", "40545", "40600", "10"]  # 5 rows aggregated

    window = s.get_kline(
        category="linear", symbol="BTCUSDT", interval="1", start=T0 + 10 * MIN, end=T0 + 14 * MIN
    )["result"]["list"]
    assert [int(r[0]) for r in window] == [T0 + i * MIN for i in (14, 13, 12, 11, 10)]

    # paging backwards: next page ends just before the oldest bar of the previous page
    seen: list[int] = []
    end = None
    while True:
        page = s.get_kline(category="linear", symbol="BTCUSDT", interval="1", limit=25, end=end)[
            "result"
        ]["list"]
        if not page:
            break
        seen += [int(r[0]) for r in page]
        end = int(page[-1][0]) - 1
    assert seen == [T0 + i * MIN for i in range(59, -1, -1)]

    hourly = s.get_kline(category="spot", symbol="BTCUSDT", interval="60")["result"]["list"]
    assert hourly == [[str(T0), "40000", "40605", "39995", "40600", "120", hourly[0][6]]]
    daily = s.get_kline(category="linear", symbol="BTCUSDT", interval="D")["result"]["list"]
    assert daily[0][0] == str(T0)
    with pytest.raises(InvalidRequestError) as exc:
        s.get_kline(category="linear", symbol="BTCUSDT", interval="7")
    assert ret_code_of(exc) == 10001
    with pytest.raises(InvalidRequestError):
        s.get_kline(category="linear", symbol="BTCUSDT", interval="1", limit=1001)


def test_klines_show_only_bars_up_to_now(fake):
    s = session(fake)
    rows = s.get_kline(category="linear", symbol="BTCUSDT", interval="5")["result"]["list"]
    assert rows == [[str(T0), "40000", "40015", "39995", "40010", "2", "80020"]]  # partial bar
    fake.advance(minutes=1)
    rows = s.get_kline(category="linear", symbol="BTCUSDT", interval="5")["result"]["list"]
    assert rows[0][1:6] == ["40000", "40025", "39995", "40020", "4"]


# --------------------------------------------------------------------------- trading
def test_market_order_fills_and_shows_everywhere(fake):
    s = session(fake)
    r = market(s, "BTCUSDT", "Buy", "0.01", orderLinkId="mkt-1")
    assert r["retCode"] == 0
    assert r["result"]["orderLinkId"] == "mkt-1"
    order_id = r["result"]["orderId"]

    o = s.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="mkt-1")["result"]
    assert o["list"][0]["orderStatus"] == "Filled"
    assert o["list"][0]["avgPrice"] == "40010.1"  # the ask: last 40010 + one tick

    ex = s.get_executions(category="linear", symbol="BTCUSDT")["result"]["list"]
    assert len(ex) == 1
    e = ex[0]
    assert (e["orderId"], e["orderLinkId"], e["side"]) == (order_id, "mkt-1", "Buy")
    assert (e["execPrice"], e["execQty"], e["isMaker"]) == ("40010.1", "0.01", False)
    fee = Decimal("40010.1") * Decimal("0.01") * Decimal("0.00055")
    assert Decimal(e["execFee"]) == fee
    assert e["feeRate"] == "0.00055"
    assert e["execTime"] == str(T0)
    uuid.UUID(e["execId"])

    p = s.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (p["side"], p["size"], p["avgPrice"], p["leverage"]) == ("Buy", "0.01", "40010.1", "1")
    assert p["unrealisedPnl"] == "-0.001"  # mark 40010 vs entry 40010.1

    w = s.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    usdt = next(c for c in w["coin"] if c["coin"] == "USDT")
    assert Decimal(usdt["walletBalance"]) == Decimal(10000) - fee
    assert Decimal(w["totalInitialMargin"]) == Decimal("400.101")
    assert fake.balance("main") == Decimal(10000) - fee
    assert [pos.size for pos in fake.positions("main")] == [Decimal("0.01")]


def test_limit_order_rests_then_fills_as_maker_when_the_path_trades_through(fake):
    fake.set_price_path(
        "ETHUSDT",
        rows_from([(2000, 2001, 1999, 2000), (2000, 2002, 1995, 1996), (1996, 1997, 1980, 1985)]),
    )
    s = session(fake)
    r = s.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.5",
        price="1990",
        orderLinkId="lim-1",
    )
    assert r["retCode"] == 0
    open_ = s.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"]
    assert [(o["orderLinkId"], o["orderStatus"], o["leavesQty"]) for o in open_] == [
        ("lim-1", "New", "0.5")
    ]
    fake.advance(minutes=1)  # low 1995: not yet
    assert (
        s.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"][0]["orderStatus"]
        == "New"
    )
    fake.advance(minutes=1)  # low 1980: trades through 1990
    assert s.get_open_orders(category="linear", symbol="ETHUSDT")["result"]["list"] == []
    closed = s.get_open_orders(category="linear", symbol="ETHUSDT", openOnly=1)["result"]["list"]
    assert closed[0]["orderStatus"] == "Filled"
    assert closed[0]["avgPrice"] == "1990"
    e = s.get_executions(category="linear", orderLinkId="lim-1")["result"]["list"][0]
    assert (e["execPrice"], e["isMaker"], e["feeRate"]) == ("1990", True, "0.0002")
    assert e["execTime"] == str(T0 + 2 * MIN)
    hist = s.get_order_history(category="linear", orderLinkId="lim-1")["result"]["list"]
    assert hist[0]["orderStatus"] == "Filled"

    # a PostOnly order that would take liquidity is accepted (retCode 0) and then cancelled
    r = s.place_order(
        category="linear",
        symbol="ETHUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.1",
        price="1990",
        timeInForce="PostOnly",
        orderLinkId="po-1",
    )
    assert r["retCode"] == 0
    po = s.get_open_orders(category="linear", symbol="ETHUSDT", orderLinkId="po-1")["result"]
    assert po["list"][0]["orderStatus"] == "Cancelled"
    assert po["list"][0]["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"


def test_duplicate_order_link_id_is_110072(fake):
    s = session(fake)
    market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="dup-1")
    with pytest.raises(InvalidRequestError) as exc:
        market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="dup-1")
    assert ret_code_of(exc) == 110072
    assert len([o for o in fake.orders if o.order_link_id == "dup-1"]) == 1
    # unique per account: another account may use the same id
    assert (
        market(session(fake, SUB1), "BTCUSDT", "Buy", "0.001", orderLinkId="dup-1")["retCode"] == 0
    )
    with pytest.raises(InvalidRequestError) as exc:
        market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="has space")
    assert ret_code_of(exc) == 10001


def test_order_filters_return_bybit_codes(fake):
    doge = Instrument(
        "linear",
        "DOGEUSDT",
        "DOGE",
        "USDT",
        tick_size=Decimal("0.00001"),
        qty_step=Decimal("1"),
        min_order_qty=Decimal("1"),
        min_notional_value=Decimal("5"),
    )
    fake.add_instrument(doge)
    fake.set_price_path("DOGEUSDT", rows_from([(0.1, 0.1, 0.1, 0.1)] * 5))
    s = session(fake)

    def code(**kw) -> int:
        with pytest.raises(InvalidRequestError) as exc:
            s.place_order(**kw)
        return ret_code_of(exc)

    lin = {"category": "linear", "symbol": "BTCUSDT", "side": "Buy"}
    assert code(**lin, orderType="Market", qty="0.0015") == 10001  # not a multiple of qtyStep
    assert code(**lin, orderType="Limit", qty="0.001", price="39000.05") == 10001  # tickSize
    assert code(**lin, orderType="Limit", qty="0.001") == 10001  # Limit without price
    doge_buy = {"category": "linear", "symbol": "DOGEUSDT", "side": "Buy", "orderType": "Market"}
    assert code(**doge_buy, qty="10") == 110094  # notional 1 USDT < minNotionalValue 5
    spot = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit"}
    assert code(**spot, qty="0.000001", price="39000") == 170136  # < minOrderQty
    assert code(**spot, qty="0.0000101", price="39000") == 170137  # > basePrecision decimals
    assert code(**spot, qty="0.001", price="39000.05") == 170134  # price decimals
    assert code(**spot, qty="0.0001", price="39000") == 170140  # 3.9 USDT < minOrderAmt
    assert fake.orders == []


def test_insufficient_balance_110007_linear_and_170131_spot(fake):
    s = session(fake)
    with pytest.raises(InvalidRequestError) as exc:
        market(s, "ETHUSDT", "Buy", "5")  # 10000 USDT notional at 1x + fee > 10000
    assert ret_code_of(exc) == 110007
    sub2 = session(fake, SUB2)
    with pytest.raises(InvalidRequestError) as exc:
        sub2.place_order(
            category="spot",
            symbol="BTCUSDT",
            side="Buy",
            orderType="Limit",
            qty="0.1",
            price="39000",
        )
    assert ret_code_of(exc) == 170131
    assert fake.orders == []


def test_reduce_only_only_reduces(fake):
    s = session(fake)
    with pytest.raises(InvalidRequestError) as exc:
        market(s, "ETHUSDT", "Sell", "0.1", reduceOnly=True)
    assert ret_code_of(exc) == 110017
    market(s, "ETHUSDT", "Buy", "0.1")
    with pytest.raises(InvalidRequestError) as exc:
        market(s, "ETHUSDT", "Buy", "0.1", reduceOnly=True)
    assert ret_code_of(exc) == 110017
    market(s, "ETHUSDT", "Sell", "0.5", reduceOnly=True, orderLinkId="close-1")  # trimmed to 0.1
    assert fake.positions("main") == []
    o = s.get_open_orders(category="linear", symbol="ETHUSDT", orderLinkId="close-1")["result"]
    assert (o["list"][0]["qty"], o["list"][0]["cumExecQty"]) == ("0.1", "0.1")


def test_cancel_by_order_link_id_and_not_found(fake):
    s = session(fake)
    s.place_order(
        category="linear",
        symbol="BTCUSDT",
        side="Buy",
        orderType="Limit",
        qty="0.001",
        price="39000",
        orderLinkId="c-1",
    )
    r = s.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="c-1")
    assert r["result"]["orderLinkId"] == "c-1"
    o = s.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="c-1")["result"]
    assert (o["list"][0]["orderStatus"], o["list"][0]["cancelType"]) == (
        "Cancelled",
        "CancelByUser",
    )
    with pytest.raises(InvalidRequestError) as exc:
        s.cancel_order(category="linear", symbol="BTCUSDT", orderLinkId="c-1")
    assert ret_code_of(exc) == 110001
    with pytest.raises(InvalidRequestError) as exc:
        s.cancel_order(category="linear", symbol="BTCUSDT", orderId=str(uuid.uuid4()))
    assert ret_code_of(exc) == 110001


def test_spot_market_buy_is_in_quote_coin_and_sell_in_base(fake):
    s = session(fake)
    r = s.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Market", qty="100")
    o = s.get_open_orders(category="spot", symbol="BTCUSDT", orderId=r["result"]["orderId"])[
        "result"
    ]["list"][0]
    ask = Decimal("40010.1")
    base = (Decimal(100) / ask).quantize(Decimal("0.000001"), rounding="ROUND_DOWN")
    assert (o["qty"], o["marketUnit"], o["cumExecQty"]) == ("100", "quoteCoin", str(base))
    e = s.get_executions(category="spot")["result"]["list"][0]
    assert e["feeCurrency"] == "BTC"  # a spot buy pays its fee in the coin it receives
    assert fake.balance("main", "BTC") == base - base * Decimal("0.001")
    assert fake.balance("main", "USDT") == Decimal(10000) - base * ask

    s.place_order(category="spot", symbol="BTCUSDT", side="Sell", orderType="Market", qty="0.002")
    e = s.get_executions(category="spot", limit=1)["result"]["list"][0]
    assert (e["side"], e["execQty"], e["execPrice"], e["feeCurrency"]) == (
        "Sell",
        "0.002",
        "40009.9",
        "USDT",
    )
    w = s.get_wallet_balance(accountType="UNIFIED", coin="BTC")["result"]["list"][0]
    assert w["coin"][0]["walletBalance"] == str(base - base * Decimal("0.001") - Decimal("0.002"))


def test_set_leverage_and_110043_when_unchanged(fake):
    s = session(fake)
    with pytest.raises(InvalidRequestError) as exc:
        s.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="1", sellLeverage="1")
    assert ret_code_of(exc) == 110043
    assert (
        s.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="5")[
            "retCode"
        ]
        == 0
    )
    p = s.get_positions(category="linear", symbol="BTCUSDT")["result"]["list"][0]
    assert (p["leverage"], p["size"], p["side"]) == ("5", "0", "")
    with pytest.raises(InvalidRequestError) as exc:
        s.set_leverage(category="linear", symbol="BTCUSDT", buyLeverage="5", sellLeverage="5")
    assert ret_code_of(exc) == 110043


def test_tpsl_stop_loss_wins_when_both_touched_in_one_bar(fake):
    fake.set_price_path(
        "ETHUSDT",
        rows_from(
            [
                (2000, 2001, 1999, 2000),
                (2000, 2010, 1990, 2005),  # touches neither 2050 nor 1950
                (2005, 2060, 1940, 2000),  # touches both: the stop loss wins
                (2000, 2100, 1900, 2000),
            ]
        ),
    )
    s = session(fake)
    market(s, "ETHUSDT", "Buy", "1", orderLinkId="long-1")
    assert (
        s.set_trading_stop(
            category="linear",
            symbol="ETHUSDT",
            tpslMode="Full",
            positionIdx=0,
            takeProfit="2050",
            stopLoss="1950",
        )["retCode"]
        == 0
    )
    p = s.get_positions(category="linear", symbol="ETHUSDT")["result"]["list"][0]
    assert (p["takeProfit"], p["stopLoss"]) == ("2050", "1950")
    conditional = s.get_open_orders(category="linear", symbol="ETHUSDT", orderFilter="StopOrder")
    kinds = {o["stopOrderType"]: o for o in conditional["result"]["list"]}
    assert set(kinds) == {"TakeProfit", "StopLoss"}
    assert all(o["orderStatus"] == "Untriggered" for o in kinds.values())
    with pytest.raises(InvalidRequestError) as exc:  # same values again
        s.set_trading_stop(
            category="linear",
            symbol="ETHUSDT",
            tpslMode="Full",
            positionIdx=0,
            takeProfit="2050",
            stopLoss="1950",
        )
    assert ret_code_of(exc) == 34040

    fake.advance(minutes=1)
    assert len(fake.positions("main")) == 1
    fake.advance(minutes=1)
    assert fake.positions("main") == []
    ex = s.get_executions(category="linear", symbol="ETHUSDT")["result"]["list"]
    assert (ex[0]["stopOrderType"], ex[0]["execPrice"], ex[0]["side"]) == (
        "StopLoss",
        "1950",
        "Sell",
    )
    assert ex[0]["closedSize"] == "1"
    history = s.get_order_history(category="linear", symbol="ETHUSDT")["result"]["list"]
    status = {o["stopOrderType"]: o["orderStatus"] for o in history if o["stopOrderType"]}
    assert status == {"StopLoss": "Filled", "TakeProfit": "Deactivated"}
    p = s.get_positions(category="linear", symbol="ETHUSDT")["result"]["list"][0]
    assert Decimal(p["cumRealisedPnl"]) < -50  # (1950 - 2000.01) minus fees


def test_take_profit_from_order_and_zero_cancels(fake):
    fake.set_price_path(
        "ETHUSDT", rows_from([(2000, 2001, 1999, 2000), (2000, 2030, 1999, 2020), (2020,) * 4])
    )
    s = session(fake)
    market(s, "ETHUSDT", "Sell", "1", takeProfit="1900", stopLoss="2100")
    p = s.get_positions(category="linear", symbol="ETHUSDT")["result"]["list"][0]
    assert (p["side"], p["takeProfit"], p["stopLoss"]) == ("Sell", "1900", "2100")
    s.set_trading_stop(
        category="linear", symbol="ETHUSDT", tpslMode="Full", positionIdx=0, stopLoss="0"
    )
    p = s.get_positions(category="linear", symbol="ETHUSDT")["result"]["list"][0]
    assert (p["takeProfit"], p["stopLoss"]) == ("1900", "0")
    with pytest.raises(InvalidRequestError) as exc:  # a short's take profit must be below
        s.set_trading_stop(
            category="linear",
            symbol="ETHUSDT",
            tpslMode="Full",
            positionIdx=0,
            takeProfit="2100",
        )
    assert ret_code_of(exc) == 10001
    fake.advance(minutes=2)
    assert len(fake.positions("main")) == 1  # no stop any more, the rally did not close it


def test_execution_list_lag_is_opt_in_and_hides_only_the_list(fake):
    """With a lag, a fill is missed by the account's next N execution-list requests (another
    account's requests do not count) and by any before the delay has passed, while the order,
    the wallet and the position show it at once; without one, it is listed at once, and lifting
    a lag lists what it held back."""
    s, other = session(fake), session(fake, SUB1)

    def listed() -> list[str]:
        return [e["orderLinkId"] for e in s.get_executions(category="spot")["result"]["list"]]

    buy = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market"}
    s.place_order(**buy, qty="100", orderLinkId="now")
    assert listed() == ["now"]  # the default: no lag
    fake.lag_executions(queries=2)
    s.place_order(**buy, qty="100", orderLinkId="lagged")
    (order,) = s.get_order_history(category="spot", orderLinkId="lagged")["result"]["list"]
    assert order["orderStatus"] == "Filled"
    assert fake.balance("main", "BTC") > 2 * Decimal("0.0024")  # both buys are held
    other.get_executions(category="spot")  # another account's request: not counted
    assert [listed(), listed(), listed()] == [["now"], ["now"], ["lagged", "now"]]
    fake.lag_executions(ms=300)
    market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="delayed")
    assert [p.size for p in fake.positions("main")] == [Decimal("0.001")]
    linear = {"category": "linear", "orderLinkId": "delayed"}
    assert s.get_executions(**linear)["result"]["list"] == []
    time.sleep(0.35)
    assert [e["orderLinkId"] for e in s.get_executions(**linear)["result"]["list"]] == ["delayed"]
    market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="later")
    fake.lag_executions(queries=100)
    assert listed() == ["lagged", "now"]  # what was listed stays listed
    linear["orderLinkId"] = "later"
    assert s.get_executions(**linear)["result"]["list"] == []  # under the new lag
    fake.lag_executions()
    assert len(s.get_executions(**linear)["result"]["list"]) == 1
    with pytest.raises(ValueError, match="cannot be negative"):
        fake.lag_executions(queries=-1)


def test_execution_pagination_with_cursor(fake):
    s = session(fake)
    for i in range(5):
        market(s, "BTCUSDT", "Buy", "0.001", orderLinkId=f"p-{i}")
        fake.advance(seconds=10)
    pages = []
    cursor = None
    while True:
        kw = {"cursor": cursor} if cursor else {}
        res = s.get_executions(category="linear", symbol="BTCUSDT", limit=2, **kw)["result"]
        pages.append([e["orderLinkId"] for e in res["list"]])
        cursor = res["nextPageCursor"]
        if not cursor:
            break
        assert "%" in cursor  # percent-encoded, like Bybit's; it must round-trip untouched
    assert pages == [["p-4", "p-3"], ["p-2", "p-1"], ["p-0"]]
    ids = [e.exec_id for e in fake.executions]
    assert len(set(ids)) == 5
    res = s.get_executions(category="linear", startTime=T0 + 15_000, endTime=T0 + 35_000)["result"][
        "list"
    ]
    assert [e["orderLinkId"] for e in res] == ["p-3", "p-2"]
    with pytest.raises(InvalidRequestError) as exc:
        s.get_executions(category="linear", limit=101)
    assert ret_code_of(exc) == 10001


# --------------------------------------------------------------------------- auth
def test_bad_secret_is_10004_and_unknown_key_10003(fake):
    s = session(fake, ("main", 1001, "MAIN-KEY", "WRONG"))
    with pytest.raises(InvalidRequestError) as exc:
        s.get_wallet_balance(accountType="UNIFIED")
    assert ret_code_of(exc) == 10004
    s = session(fake, ("x", 1, "NOPE", "NOPE"))
    with pytest.raises(InvalidRequestError) as exc:
        s.get_wallet_balance(accountType="UNIFIED")
    assert ret_code_of(exc) == 10003


def test_signature_is_checked_over_the_raw_query_string(fake):
    def get(query: str, signed: str) -> dict:
        ts = str(int(time.time() * 1000))
        sign = hmac.new(
            b"MAIN-SECRET", f"{ts}MAIN-KEY5000{signed}".encode(), hashlib.sha256
        ).hexdigest()
        headers = {
            "X-BAPI-API-KEY": "MAIN-KEY",
            "X-BAPI-SIGN": sign,
            "X-BAPI-SIGN-TYPE": "2",
            "X-BAPI-TIMESTAMP": ts,
            "X-BAPI-RECV-WINDOW": "5000",
        }
        url = f"{fake.endpoint}/v5/account/wallet-balance?{query}"
        return requests.get(url, headers=headers, verify=fake.ca_path, timeout=3).json()

    assert get("accountType=UNIFIED&coin=USDT", "accountType=UNIFIED&coin=USDT")["retCode"] == 0
    # the same parameters in another order are a different payload
    assert get("coin=USDT&accountType=UNIFIED", "accountType=UNIFIED&coin=USDT")["retCode"] == 10004


def test_clock_skew_makes_pybit_raise_retries_exceeded(fake):
    fake.skew_ms = -2000  # our clock is 2 s ahead of the server: never inside the window
    s = session(fake, max_retries=3)
    with pytest.raises(FailedRequestError) as exc:
        s.get_wallet_balance(accountType="UNIFIED")
    assert exc.value.status_code == 400
    assert "Retries exceeded" in exc.value.message
    attempts = [r for r in fake.requests if r.path == "/v5/account/wallet-balance"]
    assert [r.ret_code for r in attempts] == [10002, 10002, 10002]
    assert [r.headers["X-BAPI-RECV-WINDOW"] for r in attempts] == ["5000", "7500", "10000"]


def test_lagging_clock_is_silently_rescued_by_pybit_recv_window_growth(fake):
    fake.skew_ms = 6000  # our clock is 6 s behind: 5000 fails, pybit's 7500 passes
    s = session(fake, max_retries=2)
    assert s.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0
    assert [r.ret_code for r in fake.requests] == [10002, 0]


# --------------------------------------------------------------------------- pybit vs faults
def test_10006_with_future_reset_is_retried_by_pybit(fake):
    fault = fake.inject("/v5/order/create", "ret_code", ret_code=10006, reset_in_ms=150)
    s = session(fake, max_retries=3)
    t = time.monotonic()
    r = market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="rl-1")
    assert r["retCode"] == 0
    assert time.monotonic() - t >= 0.1  # pybit slept until the reset timestamp
    assert fault.fired == 1
    calls = [r for r in fake.requests if r.path == "/v5/order/create"]
    assert [(c.ret_code, c.processed) for c in calls] == [(10006, False), (0, True)]
    assert json.loads(calls[0].body)["orderLinkId"] == json.loads(calls[1].body)["orderLinkId"]
    assert len(fake.orders) == 1


def test_10006_with_reset_in_the_past_crashes_pybit_with_value_error(fake):
    fake.inject("/v5/order/create", "ret_code", ret_code=10006, reset_in_ms=-5000)
    s = session(fake, max_retries=3)
    with pytest.raises(ValueError, match="non-negative"):
        market(s, "BTCUSDT", "Buy", "0.001")
    assert fake.orders == []


def test_order_rate_limit_is_enforced_per_uid(fake):
    fake.rate_limits["/v5/order/create"] = 1
    s = session(fake, max_retries=3)
    market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="burst-0")
    market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="burst-1")  # 10006, pybit waits, retries
    calls = [r for r in fake.requests if r.path == "/v5/order/create"]
    assert [(c.ret_code, c.processed) for c in calls] == [(0, True), (10006, False), (0, True)]
    assert calls[1].account == "main"
    assert len(fake.orders) == 2
    # another UID has its own budget
    market(session(fake, SUB1), "BTCUSDT", "Buy", "0.001")
    assert fake.requests[-1].ret_code == 0


def test_http_500_and_403_raise_failed_request_error_without_retry(fake):
    fake.inject("/v5/market/time", "http_500")
    s = session(fake, max_retries=3)
    with pytest.raises(FailedRequestError) as exc:
        s.get_server_time()
    assert exc.value.status_code == 500
    fake.inject("/v5/market/time", "http_403")
    with pytest.raises(FailedRequestError) as exc:
        s.get_server_time()
    assert exc.value.status_code == 403
    assert len(fake.requests) == 2  # no retries on HTTP errors


def test_non_json_body_is_failed_request_error_409(fake):
    fake.inject("/v5/market/time", "non_json")
    with pytest.raises(FailedRequestError) as exc:
        session(fake, max_retries=3).get_server_time()
    assert exc.value.status_code == 409


def test_dropped_connection_is_a_raw_requests_connection_error(fake):
    fake.inject("/v5/market/tickers", "drop")
    s = session(fake, max_retries=3)
    with pytest.raises(requests.exceptions.ConnectionError):
        s.get_tickers(category="linear", symbol="BTCUSDT")
    assert s.get_tickers(category="linear", symbol="BTCUSDT")["retCode"] == 0  # next one works


def test_timeout_is_a_raw_requests_read_timeout(fake):
    fake.inject("/v5/market/tickers", "timeout", seconds=1.5)
    s = session(fake, timeout=0.3, max_retries=3)
    with pytest.raises(requests.exceptions.ReadTimeout):
        s.get_tickers(category="linear", symbol="BTCUSDT")


def test_accepted_order_whose_answer_was_lost_comes_back_as_110072(fake):
    fake.inject("/v5/order/create", "accept_then_drop")
    s = session(fake)
    with pytest.raises(requests.exceptions.ConnectionError):
        market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="lost-1")
    with pytest.raises(InvalidRequestError) as exc:
        market(s, "BTCUSDT", "Buy", "0.001", orderLinkId="lost-1")
    assert ret_code_of(exc) == 110072
    assert len(fake.orders) == 1
    found = s.get_open_orders(category="linear", symbol="BTCUSDT", orderLinkId="lost-1")
    assert found["result"]["list"][0]["orderStatus"] == "Filled"
    first = fake.requests[0]
    assert (first.fault, first.status, first.processed) == ("accept_then_drop", None, True)


def test_accept_then_500_on_transfer_then_131214(fake):
    fake.inject("/v5/asset/transfer/universal-transfer", "accept_then_500")
    s = session(fake)
    tid = str(uuid.uuid4())
    kw = {
        "transferId": tid,
        "coin": "USDT",
        "amount": "50",
        "fromMemberId": 1001,
        "toMemberId": 1002,
        "fromAccountType": "FUND",
        "toAccountType": "UNIFIED",
    }
    with pytest.raises(FailedRequestError) as exc:
        s.create_universal_transfer(**kw)
    assert exc.value.status_code == 500
    with pytest.raises(InvalidRequestError) as exc:
        s.create_universal_transfer(**kw)
    assert ret_code_of(exc) == 131214
    assert len(fake.transfers) == 1
    assert fake.balance("sub1") == Decimal(1050)


# --------------------------------------------------------------------------- transfers
def test_universal_transfer_rules(fake):
    s = session(fake)
    tid = str(uuid.uuid4())
    r = s.create_universal_transfer(
        transferId=tid,
        coin="USDT",
        amount="100",
        fromMemberId=1001,
        toMemberId=1002,
        fromAccountType="FUND",
        toAccountType="UNIFIED",
    )
    assert r["retMsg"] == "success"
    assert r["result"] == {"transferId": tid, "status": "SUCCESS"}
    assert fake.balance("main", account_type="FUND") == Decimal(400)
    assert fake.balance("sub1") == Decimal(1100)
    looked_up = s.get_universal_transfer_records(transferId=tid)["result"]["list"]
    assert looked_up[0]["status"] == "SUCCESS"
    assert (looked_up[0]["amount"], looked_up[0]["toMemberId"]) == ("100", "1002")

    with pytest.raises(InvalidRequestError) as exc:  # same transferId again
        s.create_universal_transfer(
            transferId=tid,
            coin="USDT",
            amount="100",
            fromMemberId=1001,
            toMemberId=1002,
            fromAccountType="FUND",
            toAccountType="UNIFIED",
        )
    assert ret_code_of(exc) == 131214
    assert len(fake.transfers) == 1
    assert fake.balance("sub1") == Decimal(1100)

    with pytest.raises(InvalidRequestError) as exc:
        s.create_universal_transfer(
            transferId=str(uuid.uuid4()),
            coin="USDT",
            amount="1000",
            fromMemberId=1001,
            toMemberId=1002,
            fromAccountType="FUND",
            toAccountType="UNIFIED",
        )
    assert ret_code_of(exc) == 131212

    with pytest.raises(InvalidRequestError) as exc:  # pybit does not stringify `amount`
        s.create_universal_transfer(
            transferId=str(uuid.uuid4()),
            coin="USDT",
            amount=10,
            fromMemberId=1001,
            toMemberId=1002,
            fromAccountType="FUND",
            toAccountType="UNIFIED",
        )
    assert ret_code_of(exc) == 10001

    sub1 = session(fake, SUB1)
    with pytest.raises(InvalidRequestError) as exc:  # a sub key may only send to the main
        sub1.create_universal_transfer(
            transferId=str(uuid.uuid4()),
            coin="USDT",
            amount="10",
            fromMemberId=1002,
            toMemberId=1003,
            fromAccountType="UNIFIED",
            toAccountType="UNIFIED",
        )
    assert ret_code_of(exc) == 10005
    sub1.create_universal_transfer(
        transferId=str(uuid.uuid4()),
        coin="USDT",
        amount="10",
        fromMemberId=1002,
        toMemberId=1001,
        fromAccountType="UNIFIED",
        toAccountType="FUND",
    )
    assert fake.balance("main", account_type="FUND") == Decimal(410)
    fund = s.get_coins_balance(accountType="FUND", coin="USDT")["result"]
    assert fund["balance"][0]["walletBalance"] == "410"
    assert fund["memberId"] == "1001"
    assert [t.status for t in fake.transfers] == ["SUCCESS", "SUCCESS"]


def test_unified_transfer_cannot_take_margin_in_use(fake):
    s = session(fake, SUB2)
    market(s, "ETHUSDT", "Buy", "0.4")  # 800 USDT of initial margin out of 1000
    with pytest.raises(InvalidRequestError) as exc:
        s.create_universal_transfer(
            transferId=str(uuid.uuid4()),
            coin="USDT",
            amount="500",
            fromMemberId=1003,
            toMemberId=1001,
            fromAccountType="UNIFIED",
            toAccountType="FUND",
        )
    assert ret_code_of(exc) == 131228


def test_sub_members_need_the_master_key(fake):
    subs = session(fake).get_sub_uid_list()["result"]["subMembers"]
    assert [(m["uid"], m["username"]) for m in subs] == [("1002", "sub1"), ("1003", "sub2")]
    with pytest.raises(InvalidRequestError) as exc:
        session(fake, SUB1).get_sub_uid_list()
    assert ret_code_of(exc) == 10005


# --------------------------------------------------------------------------- plumbing
def test_openssl_backend_serves_too():
    with FakeBybit(tls_backend="openssl") as f:
        assert session(f).get_server_time()["retCode"] == 0


def test_standalone_runs_until_stopped(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.bybit", "--port", "0", "--synthetic", "--days", "1"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().split()[-1]
        ca = proc.stdout.readline().split()[-1]
        main_line = proc.stdout.readline()
        assert "DEMO-MAIN-KEY" in main_line
        s = HTTP(api_key="DEMO-MAIN-KEY", api_secret="DEMO-MAIN-SECRET", testnet=True, timeout=3)
        s.endpoint = endpoint
        s.client.verify = ca
        rows = s.get_kline(category="linear", symbol="BTCUSDT", interval="1", limit=5)
        assert len(rows["result"]["list"]) == 5
        assert s.get_wallet_balance(accountType="UNIFIED")["retCode"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert proc.returncode == 0
