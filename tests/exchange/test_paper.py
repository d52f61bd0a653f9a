"""The paper exchange on hand-made 1-minute bars, on SQLite and PostgreSQL.

Conventions: bar ``m`` opens at T0 + m minutes and is given as (minute, open, high, low, close).
Bar 0 is history (it gives the last price when an order is placed at minute 1). Fees: maker
0.02 %, taker 0.055 %; slippage 0 unless a test says otherwise. Starting balances are the
defaults: SubBot-A (spot) 3000, SubBot-B (linear) 4000, SubBot-C (linear) 3000; MAIN's FUND
wallet 500. Every expected value is worked out by hand in a comment.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sqlalchemy.engine import Engine

from jiritsu.clock import SimClock, from_ms
from jiritsu.config import Settings, load_config
from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from jiritsu.errors import UsageError
from jiritsu.exchange.errors import (
    ExchangeUnavailable,
    InsufficientBalance,
    NotFound,
    OrderRejected,
)
from jiritsu.exchange.paper import PaperExchange
from jiritsu.exchange.paper_config import PaperConfig
from jiritsu.exchange.types import MAIN, OrderRequest, TransferRequest
from jiritsu.market.frames import CANDLE_SCHEMA
from jiritsu.market.source import ReplaySource
from jiritsu.runtime import paper_config
from tests.conftest import REPO

D = Decimal
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
M = 60_000
A, B, C = "SubBot-A", "SubBot-B", "SubBot-C"
HISTORY = (0, 100.0, 100.5, 99.5, 100.0)  # last price 100 at minute 1

Row = tuple[int, float, float, float, float]


def frame(rows: list[Row]) -> pl.DataFrame:
    return pl.DataFrame(
        [(T0 + m * M, o, h, lo, c, 1.0) for m, o, h, lo, c in rows],
        schema=CANDLE_SCHEMA,
        orient="row",
    )


def settings(**exchange: Any) -> Settings:
    return Settings.model_validate(
        {"exchange": {"slippage_bps": 0, **exchange}, "paper": {"main_balance": "500"}}
    )


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    migrate.upgrade(db_url)
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def make(
    engine: Engine, rows: list[Row], *, minute: float = 1, **exchange: Any
) -> tuple[PaperExchange, SimClock]:
    """A paper exchange over ``rows`` (BTCUSDT) with its clock at T0 + ``minute``."""
    clock = SimClock(T0 + round(minute * M))
    source = ReplaySource(clock, {"BTCUSDT": frame(rows)})
    return PaperExchange(engine, paper_config(settings(**exchange)), source, clock), clock


def market(cid: str, side: str, qty: str, **kw: Any) -> OrderRequest:
    return OrderRequest(cid, "BTCUSDT", side, D(qty), "Market", **kw)  # type: ignore[arg-type]


def limit(cid: str, side: str, qty: str, price: str, **kw: Any) -> OrderRequest:
    return OrderRequest(cid, "BTCUSDT", side, D(qty), "Limit", D(price), **kw)  # type: ignore[arg-type]


# --- market orders --------------------------------------------------------------------------


def test_market_order_fills_at_next_open_plus_slippage_with_taker_fee(engine: Engine) -> None:
    rows = [HISTORY, (1, 101.0, 102.0, 100.0, 101.5), (2, 101.5, 102.0, 101.0, 101.8)]
    ex, clock = make(engine, rows, slippage_bps=2)

    placed = ex.place_order(B, "linear", market("m-1", "Buy", "1"))
    assert (placed.status, placed.filled_qty) == ("new", D(0))
    assert ex.get_order(B, "linear", "BTCUSDT", "m-1").status == "new"  # bar 1 still forming

    clock.advance()  # bar 1 closes
    order = ex.get_order(B, "linear", "BTCUSDT", "m-1")
    # bar 1 open 101 x (1 + 2 bps) = 101.0202
    assert (order.status, order.filled_qty, order.avg_price) == ("filled", D(1), D("101.0202"))
    [fill] = ex.executions(B, "linear")
    assert (fill.price, fill.qty, fill.side, fill.time) == (
        D("101.0202"),
        D(1),
        "Buy",
        from_ms(T0 + M),
    )
    # taker fee 101.0202 x 0.00055 = 0.05556111
    assert (fill.fee, fill.fee_rate, fill.is_maker, fill.fee_currency) == (
        D("0.05556111"),
        D("0.00055"),
        False,
        "USDT",
    )
    [pos] = ex.positions(B, "linear")
    # unrealised at the last close 101.5: 101.5 - 101.0202 = 0.4798
    assert (pos.side, pos.size, pos.avg_price, pos.unrealised_pnl) == (
        "Buy",
        D(1),
        D("101.0202"),
        D("0.4798"),
    )
    bal = ex.balance(B)
    assert bal.wallet_balance == D("3999.94443889")  # 4000 - 0.05556111
    assert bal.equity == D("4000.42423889")  # wallet + 0.4798
    assert bal.available == D("3898.92423889")  # wallet - margin 101.0202 (leverage 1)
    assert bal.unrealised_pnl == D("0.4798")


def test_market_order_placed_mid_bar_waits_for_the_next_open(engine: Engine) -> None:
    rows = [HISTORY, (1, 101.0, 102.0, 100.0, 101.5), (2, 101.5, 102.0, 101.0, 101.8)]
    ex, clock = make(engine, rows, minute=1.5)  # bar 1 opened before the order: not for it
    ex.place_order(B, "linear", market("m-1", "Buy", "1"))
    clock.advance_to(T0 + 2 * M)
    assert ex.get_order(B, "linear", "BTCUSDT", "m-1").status == "new"
    clock.advance_to(T0 + 3 * M)
    [fill] = ex.executions(B, "linear")
    assert (fill.price, fill.time) == (D("101.5"), from_ms(T0 + 2 * M))


def test_a_gap_in_the_data_delays_the_fill_to_the_next_existing_bar(engine: Engine) -> None:
    rows = [HISTORY, (1, 100.0, 100.5, 99.5, 100.2), (5, 104.0, 104.5, 103.5, 104.0)]
    ex, _ = make(engine, rows, minute=2)  # minutes 2..4 are missing
    ex.place_order(B, "linear", market("m-1", "Buy", "1"))
    assert ex.advance_to(T0 + 5 * M) == 0
    assert ex.get_order(B, "linear", "BTCUSDT", "m-1").status == "new"
    assert ex.advance_to(T0 + 6 * M) == 1
    [fill] = ex.executions(B, "linear")
    assert (fill.price, fill.time) == (D(104), from_ms(T0 + 5 * M))


def test_slippage_grows_with_volatility(engine: Engine) -> None:
    # 15 bars with a true range of 2 around 100: ATR / close = 0.02. MAIN is not a bot, so its
    # volatility comes from 1-minute bars. 2 bps + 0.5 x 0.02 = 0.0102 -> 100 x 1.0102 = 101.02
    rows = [(m, 100.0, 101.0, 99.0, 100.0) for m in range(16)]
    ex, clock = make(engine, rows, minute=15, slippage_bps=2, slippage_volatility_factor="0.5")
    ex.transfer(TransferRequest("fund-main", "USDT", D(500), MAIN, MAIN, "FUND", "UNIFIED"))
    ex.place_order(MAIN, "linear", market("m-1", "Buy", "1"))
    clock.advance()
    [fill] = ex.executions(MAIN, "linear")
    assert fill.price == D("101.02")


def test_an_explicit_paper_config_names_the_accounts_and_the_volatility_bars(
    engine: Engine,
) -> None:
    """No Settings and no bots: the accounts, balances and slippage interval come from the
    PaperConfig alone. "desk" measures its ATR on 5-minute bars: three 5-minute bars with a
    true range of 5 around 100 (ATR / close = 0.05), while each 1-minute bar's range is 1."""
    rows = [(m, 100.0, 100.5, 99.5, 100.0) for m in range(16)]
    rows[2] = (2, 100.0, 102.5, 99.5, 100.0)
    rows[7] = (7, 100.0, 102.5, 99.5, 100.0)
    rows[12] = (12, 100.0, 102.5, 99.5, 100.0)
    for m in (4, 9, 14):
        rows[m] = (m, 100.0, 100.5, 97.5, 100.0)
    clock = SimClock(T0 + 15 * M)
    config = PaperConfig(
        starting_balances={"desk": D(1000)},
        symbols=("BTCUSDT",),
        slippage_volatility_factor=0.5,
        volatility_intervals={"desk": "5"},
    )
    ex = PaperExchange(engine, config, ReplaySource(clock, {"BTCUSDT": frame(rows)}), clock)
    assert ex.balance("desk").wallet_balance == D(1000)
    with pytest.raises(NotFound):
        ex.balance(A)  # a bot of the default configuration is no account here
    ex.place_order("desk", "linear", market("d-1", "Buy", "1"))
    clock.advance()
    [fill] = ex.executions("desk", "linear")
    assert fill.price == D("102.5")  # 100 x (1 + 0.5 x 0.05); 1-minute bars would give 101


# --- limit orders ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "side", "price", "bars", "fill_minute", "fill_price"),
    [
        # buy 99: bar 1 only touches 99, bar 2 trades through -> 99 at minute 2
        (B, "Buy", "99", [(1, 100.0, 100.5, 99.0, 99.5), (2, 99.5, 100.0, 98.9, 99.2)], 2, "99"),
        # buy 99: bar 1 opens at 97, below the limit -> the better open
        (B, "Buy", "99", [(1, 97.0, 98.0, 96.0, 97.5)], 1, "97"),
        # sell 102: bar 1 touches, bar 2 trades through
        (
            C,
            "Sell",
            "102",
            [(1, 101.0, 102.0, 100.5, 101.5), (2, 101.5, 102.5, 101.0, 102.0)],
            2,
            "102",
        ),
        # sell 102: bar 1 opens at 104, above the limit
        (C, "Sell", "102", [(1, 104.0, 105.0, 103.5, 104.5)], 1, "104"),
    ],
)
def test_limit_orders_fill_when_a_bar_trades_through(
    engine: Engine,
    account: str,
    side: str,
    price: str,
    bars: list[Row],
    fill_minute: int,
    fill_price: str,
) -> None:
    ex, clock = make(engine, [HISTORY, *bars])
    start = ex.balance(account).wallet_balance
    ex.place_order(account, "linear", limit("l-1", side, "1", price))
    if fill_minute > 1:
        clock.advance()
        assert ex.get_order(account, "linear", "BTCUSDT", "l-1").status == "new"
    clock.advance_to(T0 + (fill_minute + 1) * M)
    [fill] = ex.executions(account, "linear")
    assert (fill.price, fill.time, fill.is_maker) == (
        D(fill_price),
        from_ms(T0 + fill_minute * M),
        True,
    )
    assert fill.fee == D(fill_price) * D("0.0002")  # maker fee, e.g. 99 x 0.0002 = 0.0198
    assert ex.balance(account).wallet_balance == start - fill.fee
    [pos] = ex.positions(account, "linear")
    assert (pos.side, pos.size, pos.avg_price) == (side, D(1), D(fill_price))


def test_open_orders_reserve_funds_and_cancel_releases_them(engine: Engine) -> None:
    ex, _ = make(engine, [HISTORY, (1, 100.0, 100.5, 99.5, 100.0)])
    ex.place_order(B, "linear", limit("l-1", "Buy", "1", "99"))
    # reserved: margin 99 / 1 + maker fee 99 x 0.0002 = 99.0198
    assert ex.balance(B).available == D("3900.9802")
    assert [o.client_order_id for o in ex.open_orders(B, "linear")] == ["l-1"]
    cancelled = ex.cancel_order(B, "linear", "BTCUSDT", client_order_id="l-1")
    assert cancelled is not None
    assert cancelled.status == "cancelled"
    assert ex.balance(B).available == D(4000)
    assert ex.open_orders(B, "linear") == []
    assert ex.cancel_order(B, "linear", "BTCUSDT", client_order_id="l-1") is None  # final
    assert ex.cancel_order(B, "linear", "BTCUSDT", exchange_order_id="nope") is None
    with pytest.raises(UsageError):
        ex.cancel_order(B, "linear", "BTCUSDT")


def test_ioc_and_post_only(engine: Engine) -> None:
    ex, clock = make(engine, [HISTORY, (1, 100.0, 100.5, 99.5, 100.0)])
    # PostOnly buy at 101 with the last price at 100 would take liquidity: cancelled at once
    post = ex.place_order(B, "linear", limit("p-1", "Buy", "1", "101", time_in_force="PostOnly"))
    assert post.status == "cancelled"
    assert post.reject_reason
    ex.place_order(B, "linear", limit("i-1", "Buy", "1", "99", time_in_force="IOC"))
    clock.advance()  # bar 1 never trades below 99.5: the IOC order dies with the bar
    assert ex.get_order(B, "linear", "BTCUSDT", "i-1").status == "cancelled"
    assert ex.balance(B).available == D(4000)


# --- take profit and stop loss ----------------------------------------------------------------

ENTRY = (1, 100.0, 101.0, 99.5, 100.5)  # opens at 100, touches neither 98/103 nor 97/102


@pytest.mark.parametrize(
    ("account", "side", "tp", "sl", "bar2", "exit_price", "wallet"),
    [
        # long 1 @ 100 (fee 0.055), TP 103 / SL 98; exit fee = exit x 0.00055
        (
            B,
            "Buy",
            "103",
            "98",
            (2, 100.5, 103.5, 100.0, 103.0),
            "103",
            "4002.88835",
        ),  # +3 - 0.05665
        (B, "Buy", "103", "98", (2, 100.0, 100.5, 97.5, 98.5), "98", "3997.8911"),  # -2 - 0.0539
        (B, "Buy", "103", "98", (2, 100.0, 104.0, 97.0, 100.0), "98", "3997.8911"),  # both: SL
        (B, "Buy", "103", "98", (2, 96.0, 97.0, 95.0, 96.5), "96", "3995.8922"),  # gap: -4 - 0.0528
        (
            B,
            "Buy",
            "103",
            "98",
            (2, 105.0, 106.0, 104.0, 105.5),
            "105",
            "4004.88725",
        ),  # +5 - 0.05775
        # short 1 @ 100, TP 97 / SL 102
        (C, "Sell", "97", "102", (2, 99.0, 99.5, 96.5, 97.5), "97", "3002.89165"),  # +3 - 0.05335
        (
            C,
            "Sell",
            "97",
            "102",
            (2, 101.0, 102.5, 100.0, 102.0),
            "102",
            "2997.8889",
        ),  # -2 - 0.0561
        (C, "Sell", "97", "102", (2, 100.0, 103.0, 96.0, 100.0), "102", "2997.8889"),  # both: SL
        (
            C,
            "Sell",
            "97",
            "102",
            (2, 103.0, 104.0, 102.5, 103.5),
            "103",
            "2996.88835",
        ),  # -3 - 0.05665
        (C, "Sell", "97", "102", (2, 95.0, 96.0, 94.0, 95.5), "95", "3004.89275"),  # +5 - 0.05225
    ],
)
def test_take_profit_and_stop_loss(
    engine: Engine,
    account: str,
    side: str,
    tp: str,
    sl: str,
    bar2: Row,
    exit_price: str,
    wallet: str,
) -> None:
    ex, clock = make(engine, [HISTORY, ENTRY, bar2])
    ex.place_order(account, "linear", market("e-1", side, "1", take_profit=D(tp), stop_loss=D(sl)))
    clock.advance()
    [pos] = ex.positions(account, "linear")  # bar 1 touched neither level
    assert (pos.take_profit, pos.stop_loss) == (D(tp), D(sl))
    clock.advance()
    assert ex.positions(account, "linear") == []
    entry, exit_ = ex.executions(account, "linear")
    assert entry.fee == D("0.055")  # 100 x 0.00055
    assert exit_.side != side
    assert (exit_.price, exit_.qty, exit_.time, exit_.is_maker) == (
        D(exit_price),
        D(1),
        from_ms(T0 + 2 * M),
        False,
    )
    assert exit_.client_order_id is None  # sent by the trigger, as on Bybit
    assert ex.balance(account).wallet_balance == D(wallet)


def test_stop_exit_pays_slippage_too(engine: Engine) -> None:
    ex, clock = make(engine, [HISTORY, ENTRY, (2, 100.0, 100.5, 97.5, 98.5)], slippage_bps=2)
    ex.place_order(B, "linear", market("e-1", "Buy", "1", stop_loss=D(98)))
    clock.advance_to(T0 + 3 * M)
    entry, exit_ = ex.executions(B, "linear")
    assert entry.price == D("100.02")  # 100 x 1.0002, fee 0.055011
    assert exit_.price == D("97.9804")  # 98 x 0.9998, fee 97.9804 x 0.00055 = 0.05388922
    # 4000 - 0.055011 + (97.9804 - 100.02) - 0.05388922
    assert ex.balance(B).wallet_balance == D("3997.85149978")


def test_tp_sl_of_a_limit_entry_count_from_the_next_bar(engine: Engine) -> None:
    rows = [
        HISTORY,
        (1, 100.0, 100.5, 96.0, 97.5),  # limit 99 fills; the SL 97 is touched too, but later?
        (2, 98.0, 98.5, 96.5, 97.5),  # now the stop counts: 97
    ]
    ex, clock = make(engine, rows)
    ex.place_order(B, "linear", limit("l-1", "Buy", "1", "99", stop_loss=D(97)))
    clock.advance()
    [pos] = ex.positions(B, "linear")
    assert (pos.size, pos.avg_price, pos.stop_loss) == (D(1), D(99), D(97))
    clock.advance()
    assert ex.positions(B, "linear") == []
    _, exit_ = ex.executions(B, "linear")
    assert (exit_.price, exit_.time) == (D(97), from_ms(T0 + 2 * M))


def test_set_trading_stop_applies_from_the_next_bar(engine: Engine) -> None:
    rows = [HISTORY, ENTRY, (2, 100.5, 101.0, 98.5, 99.0), (3, 99.0, 99.5, 98.0, 98.5)]
    ex, clock = make(engine, rows)
    ex.place_order(B, "linear", market("e-1", "Buy", "1"))
    clock.advance()
    with pytest.raises(OrderRejected, match="below"):
        ex.set_trading_stop(B, "linear", "BTCUSDT", take_profit=None, stop_loss=D(101))
    ex.set_trading_stop(B, "linear", "BTCUSDT", take_profit=D(110), stop_loss=D("99.05"))
    [pos] = ex.positions(B, "linear")
    assert (pos.take_profit, pos.stop_loss) == (D(110), D("99.1"))  # rounded to the 0.1 tick
    ex.set_trading_stop(B, "linear", "BTCUSDT", take_profit=None, stop_loss=D(98))
    clock.advance()  # bar 2 dips to 98.5: above the stop
    assert ex.positions(B, "linear")[0].take_profit is None
    clock.advance()  # bar 3 reaches 98
    assert ex.positions(B, "linear") == []
    assert ex.executions(B, "linear")[-1].price == D(98)
    with pytest.raises(OrderRejected, match="no open"):
        ex.set_trading_stop(B, "linear", "BTCUSDT", take_profit=None, stop_loss=D(90))
    with pytest.raises(OrderRejected, match="linear"):
        ex.set_trading_stop(A, "spot", "BTCUSDT", take_profit=None, stop_loss=D(90))


# --- margin, spot, PnL ----------------------------------------------------------------------


def test_leverage_margin_check(engine: Engine) -> None:
    ex, clock = make(engine, [HISTORY, (1, 100.0, 100.5, 99.5, 100.0)], leverage=10)
    # 400 x 100 / 10 = 4000 margin + taker fee 22 > 4000
    with pytest.raises(InsufficientBalance):
        ex.place_order(B, "linear", market("m-1", "Buy", "400"))
    ex.place_order(B, "linear", market("m-2", "Buy", "300"))  # 3000 + 16.5
    assert ex.balance(B).available == D("983.5")
    with pytest.raises(InsufficientBalance):  # 1000 + 5.5 > 983.5
        ex.place_order(B, "linear", market("m-3", "Sell", "400"))  # closes 300, opens 100
    clock.advance()
    [pos] = ex.positions(B, "linear")
    assert (pos.size, pos.avg_price, pos.leverage) == (D(300), D(100), D(10))
    bal = ex.balance(B)
    assert bal.wallet_balance == D("3983.5")  # 4000 - fee 16.5
    assert bal.available == D("983.5")  # minus margin 3000
    with pytest.raises(InsufficientBalance):  # transfers only take what is free
        ex.transfer(TransferRequest("t-1", "USDT", D(1000), B, MAIN, "UNIFIED", "FUND"))


def test_leverage_one_refuses_more_than_the_wallet(engine: Engine) -> None:
    ex, _ = make(engine, [HISTORY])
    with pytest.raises(InsufficientBalance):  # 40 x 100 + fee 2.2 > 4000
        ex.place_order(B, "linear", market("m-1", "Buy", "40"))
    ex.place_order(B, "linear", market("m-2", "Buy", "39"))  # 3900 + 2.145


def test_spot_buy_sell_and_selling_more_than_held(engine: Engine) -> None:
    rows = [HISTORY, (1, 100.0, 101.0, 99.5, 100.5), (2, 110.0, 111.0, 109.0, 110.5)]
    ex, clock = make(engine, rows)
    with pytest.raises(InsufficientBalance):
        ex.place_order(A, "spot", market("s-0", "Sell", "1"))  # holds nothing
    ex.place_order(A, "spot", market("s-1", "Buy", "1"))
    assert ex.balance(A).available == D(2900)  # 1 x last price 100 reserved
    clock.advance()
    [buy] = ex.executions(A, "spot")
    # the fee comes out of the coins bought: 1 x 0.00055 BTC
    assert (buy.price, buy.fee, buy.fee_currency) == (D(100), D("0.00055"), "BTC")
    [pos] = ex.positions(A, "spot")
    assert (pos.side, pos.size, pos.avg_price) == ("Buy", D("0.99945"), D(100))
    btc = ex.balance(A, "BTC")
    assert (btc.wallet_balance, btc.available) == (D("0.99945"), D("0.99945"))
    usdt = ex.balance(A)
    assert usdt.wallet_balance == D(2900)
    assert usdt.unrealised_pnl == D("0.499725")  # 0.99945 x (100.5 - 100)
    assert usdt.equity == D("3000.444725")  # 2900 + 0.99945 x 100.5

    with pytest.raises(InsufficientBalance):
        ex.place_order(A, "spot", market("s-2", "Sell", "1"))  # 1 > 0.99945
    ex.place_order(A, "spot", market("s-3", "Sell", "0.99945"))
    with pytest.raises(InsufficientBalance):  # the open sell already covers the holding
        ex.place_order(A, "spot", limit("s-4", "Sell", "0.03", "200"))
    clock.advance()
    sell = ex.executions(A, "spot")[-1]
    # proceeds 0.99945 x 110 = 109.9395; fee 109.9395 x 0.00055 = 0.060466725 -> 0.06046672
    # (money is quantized to 1e-8, half-even)
    assert (sell.price, sell.fee, sell.fee_currency) == (D(110), D("0.06046672"), "USDT")
    assert ex.positions(A, "spot") == []
    assert ex.balance(A).wallet_balance == D("3009.87903328")  # 2900 + 109.9395 - 0.06046672


def test_spot_take_profit_sells_the_holding(engine: Engine) -> None:
    rows = [HISTORY, (1, 100.0, 101.0, 99.5, 100.5), (2, 101.0, 106.0, 100.5, 105.5)]
    ex, clock = make(engine, rows)
    ex.place_order(A, "spot", market("s-1", "Buy", "1", take_profit=D(105)))
    clock.advance_to(T0 + 3 * M)
    _, exit_ = ex.executions(A, "spot")
    # sells the 0.99945 BTC held at 105: 104.94225 USDT, fee x 0.00055 = 0.0577182375
    assert (exit_.side, exit_.qty, exit_.price, exit_.fee) == (
        "Sell",
        D("0.99945"),
        D(105),
        D("0.05771824"),
    )
    assert ex.positions(A, "spot") == []
    assert ex.balance(A).wallet_balance == D("3004.88453176")  # 2900 + 104.94225 - 0.05771824


def test_realised_pnl_and_fees_are_exact(engine: Engine) -> None:
    rows = [
        HISTORY,
        (1, 100.0, 100.5, 99.5, 100.0),
        (2, 103.0, 103.5, 102.5, 103.0),
        (3, 110.0, 110.5, 109.5, 110.0),
        (4, 90.0, 90.5, 89.5, 90.0),
    ]
    ex, clock = make(engine, rows)
    ex.place_order(B, "linear", market("p-1", "Buy", "1"))  # at 100
    clock.advance()
    ex.place_order(B, "linear", market("p-2", "Buy", "1"))  # at 103
    clock.advance()
    [pos] = ex.positions(B, "linear")
    assert (pos.size, pos.avg_price) == (D(2), D("101.5"))
    ex.place_order(B, "linear", market("p-3", "Sell", "1"))  # at 110: +8.5
    clock.advance()
    ex.place_order(B, "linear", market("p-4", "Sell", "3"))  # at 90: closes 1 (-11.5), short 2
    clock.advance()
    fees = [f.fee for f in ex.executions(B, "linear")]
    # 100, 103, 110 and 3 x 90 = 270, times 0.00055
    assert fees == [D("0.055"), D("0.05665"), D("0.0605"), D("0.1485")]
    [pos] = ex.positions(B, "linear")
    assert (pos.side, pos.size, pos.avg_price) == ("Sell", D(2), D(90))
    assert pos.realised_pnl == D("-3.32065")  # 8.5 - 11.5 - fees 0.32065
    assert ex.balance(B).wallet_balance == D("3996.67935")  # 4000 - 3 - 0.32065


def test_reduce_only(engine: Engine) -> None:
    ex, clock = make(engine, [HISTORY, ENTRY, (2, 100.5, 101.0, 100.0, 100.5)])
    with pytest.raises(OrderRejected, match="reduce"):
        ex.place_order(B, "linear", market("r-0", "Sell", "1", reduce_only=True))
    ex.place_order(B, "linear", market("r-1", "Buy", "1"))
    clock.advance()
    ex.place_order(B, "linear", market("r-2", "Sell", "2", reduce_only=True))
    clock.advance()
    order = ex.get_order(B, "linear", "BTCUSDT", "r-2")
    assert (order.status, order.filled_qty) == ("filled", D(1))  # capped at the position
    assert ex.positions(B, "linear") == []


# --- idempotency, transfers, seeding ----------------------------------------------------------


def test_place_order_is_idempotent_by_client_id(engine: Engine) -> None:
    ex, clock = make(engine, [HISTORY, (1, 100.0, 100.5, 99.5, 100.0)])
    first = ex.place_order(B, "linear", limit("dup-1", "Buy", "1", "99"))
    again = ex.place_order(B, "linear", limit("dup-1", "Buy", "1", "99"))
    assert again == first
    assert len(ex.open_orders(B, "linear")) == 1
    assert ex.balance(B).available == D("3900.9802")  # reserved once
    with pytest.raises(OrderRejected, match="different order"):
        ex.place_order(B, "linear", limit("dup-1", "Sell", "1", "99"))
    ex.place_order(B, "linear", market("dup-2", "Buy", "1"))
    clock.advance()
    replay = ex.place_order(B, "linear", market("dup-2", "Buy", "1"))
    assert (replay.status, replay.filled_qty) == ("filled", D(1))
    clock.advance()
    assert len(ex.executions(B, "linear")) == 1


def test_transfers_between_a_bot_and_main_fund_are_idempotent(engine: Engine) -> None:
    ex, _ = make(engine, [HISTORY])
    save = TransferRequest("t-1", "USDT", D(100), B, MAIN, "UNIFIED", "FUND")
    assert ex.transfer(save).status == "success"
    assert ex.transfer(save).status == "success"  # the same id again: nothing moves twice
    assert ex.balance(B).wallet_balance == D(3900)
    main = ex.balance(MAIN)  # MAIN reports its FUND wallet, like BybitExchange
    assert (main.wallet_balance, main.equity, main.available) == (D(600), D(600), D(600))
    ex.transfer(TransferRequest("t-2", "USDT", D("50.5"), MAIN, A, "FUND", "UNIFIED"))
    assert ex.wallet_balance(MAIN, "FUND") == D("549.5")
    assert ex.balance(A).wallet_balance == D("3050.5")
    assert ex.get_transfer("t-1").status == "success"
    assert ex.get_transfer("nope") is None

    with pytest.raises(InsufficientBalance):
        ex.transfer(TransferRequest("t-3", "USDT", D(10_000), B, MAIN, "UNIFIED", "FUND"))
    assert ex.get_transfer("t-3") is None  # a refused transfer leaves no trace: retry later
    with pytest.raises(OrderRejected):
        ex.transfer(TransferRequest("t-4", "USDT", D("0.000000001"), B, MAIN, "UNIFIED", "FUND"))
    with pytest.raises(NotFound):
        ex.transfer(TransferRequest("t-5", "USDT", D(1), B, "nobody", "UNIFIED", "FUND"))


def test_seeding_from_config_is_idempotent(engine: Engine) -> None:
    ex, clock = make(engine, [HISTORY])
    assert ex.seed() == 5  # three bots, MAIN FUND and MAIN UNIFIED
    assert ex.seed() == 0
    assert [s.username for s in ex.sub_accounts()] == [A, B, C]
    assert ex.wallet_balance(MAIN, "UNIFIED") == D(0)
    ex.transfer(TransferRequest("t-1", "USDT", D(100), B, MAIN, "UNIFIED", "FUND"))

    richer = Settings.model_validate({"paper": {"starting_balances": {B: "9999"}}})
    again = PaperExchange(
        engine, paper_config(richer), ReplaySource(clock, {"BTCUSDT": frame([HISTORY])}), clock
    )
    assert again.seed() == 0
    assert again.balance(B).wallet_balance == D(3900)  # the books win over the config
    assert again.balance(MAIN).wallet_balance == D(600)


def test_the_ledger_survives_a_restart(db_url: str, engine: Engine) -> None:
    rows = [HISTORY, (1, 100.0, 100.5, 99.5, 100.0), (2, 99.5, 100.0, 98.5, 99.0)]
    ex, _ = make(engine, rows)
    ex.place_order(B, "linear", limit("l-1", "Buy", "1", "99"))
    ex.place_order(B, "linear", market("m-1", "Buy", "1"))

    # a new process: new engine, new clock, new source, same database
    engine2 = make_engine(db_url)
    try:
        later, _ = make(engine2, rows, minute=3)
        assert later.step() == 2  # market at bar 1's open, limit when bar 2 trades through
        assert {o.client_order_id for o in later.open_orders(B, "linear")} == set()
        [pos] = later.positions(B, "linear")
        assert (pos.size, pos.avg_price) == (D(2), D("99.5"))  # (100 + 99) / 2
        # 4000 - taker 100 x 0.00055 - maker 99 x 0.0002
        assert later.balance(B).wallet_balance == D("3999.9252")
    finally:
        engine2.dispose()
    assert ex.get_order(B, "linear", "BTCUSDT", "l-1").status == "filled"


def test_a_clock_behind_the_ledger_is_refused(engine: Engine) -> None:
    rows = [HISTORY, (1, 100.0, 100.5, 99.5, 100.0), (2, 100.0, 100.5, 99.5, 100.0)]
    ex, clock = make(engine, rows)
    ex.place_order(B, "linear", market("m-1", "Buy", "1"))
    clock.advance_to(T0 + 3 * M)
    ex.step()
    earlier, _ = make(engine, rows, minute=1)  # the same database, replayed from the start
    with pytest.raises(UsageError, match="fresh database"):
        earlier.place_order(B, "linear", market("m-2", "Buy", "1"))


def test_exec_ids_are_deterministic(db_url: str, engine: Engine, tmp_path: Path) -> None:
    rows = [HISTORY, (1, 100.0, 100.5, 99.5, 100.0)]
    ex, clock = make(engine, rows)
    ex.place_order(B, "linear", market("m-1", "Buy", "1"))
    clock.advance()
    other_url = f"sqlite:///{tmp_path / 'replay.db'}"
    migrate.upgrade(other_url)
    other_engine = make_engine(other_url)
    try:
        replay, clock2 = make(other_engine, rows)
        replay.place_order(B, "linear", market("m-1", "Buy", "1"))
        clock2.advance()
        assert replay.executions(B, "linear") == ex.executions(B, "linear")
    finally:
        other_engine.dispose()


def test_two_processes_cannot_double_spend(db_url: str, engine: Engine) -> None:
    """Each exchange (own engine, own connection) reserves 2000 of SubBot-A's 3000."""
    rows = [HISTORY]
    engines = [make_engine(db_url), make_engine(db_url)]
    exchanges = [make(e, rows)[0] for e in engines]
    exchanges[0].seed()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def buy(index: int) -> None:
        barrier.wait()
        try:
            exchanges[index].place_order(A, "spot", limit(f"c-{index}", "Buy", "20", "100"))
            outcomes.append("placed")
        except InsufficientBalance:
            outcomes.append("refused")

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert sorted(outcomes) == ["placed", "refused"]
    ex, _ = make(engine, rows)
    assert len(ex.open_orders(A, "spot")) == 1
    assert ex.balance(A).available == D(1000)


# --- validation and market data ---------------------------------------------------------------


def test_requests_are_rounded_like_bybit_and_checked(engine: Engine) -> None:
    ex, _ = make(engine, [HISTORY])
    state = ex.place_order(B, "linear", limit("v-1", "Buy", "1.0009", "99.04"))
    assert (state.qty, state.price) == (D(1), D(99))  # qty down to 0.001, price to the tick
    with pytest.raises(OrderRejected, match="minimum"):
        ex.place_order(B, "linear", market("v-2", "Buy", "0.04"))  # 4 USDT < 5
    with pytest.raises(OrderRejected, match="orderLinkId"):
        ex.place_order(B, "linear", market("bad id!", "Buy", "1"))
    with pytest.raises(OrderRejected, match="above"):  # a long's TP below the price
        ex.place_order(B, "linear", market("v-3", "Buy", "1", take_profit=D(90)))
    with pytest.raises(NotFound):
        ex.place_order("nobody", "linear", market("v-4", "Buy", "1"))


def test_no_price_yet_is_a_temporary_error(engine: Engine) -> None:
    ex, _ = make(engine, [HISTORY], minute=0.5)  # bar 0 has not closed
    with pytest.raises(ExchangeUnavailable):
        ex.place_order(B, "linear", market("m-1", "Buy", "1"))
    with pytest.raises(ExchangeUnavailable):
        ex.ticker("BTCUSDT")


def test_market_data_and_time_come_from_the_source_and_clock(engine: Engine) -> None:
    rows = [(m, 100.0 + m, 101.0 + m, 99.0 + m, 100.5 + m) for m in range(7)]
    ex, _ = make(engine, rows, minute=6)
    assert ex.server_time() == from_ms(T0 + 6 * M)
    ticker = ex.ticker("BTC/USDT")
    assert (ticker.symbol, ticker.last, ticker.bid, ticker.ask) == (
        "BTCUSDT",
        D("105.5"),
        D("105.5"),
        D("105.5"),
    )
    five = ex.klines("BTCUSDT", "5")
    assert five.rows() == [(T0, 100.0, 105.0, 99.0, 104.5, 5.0)]  # 00:05 has not closed
    assert ex.instrument("BTCUSDT").tick_size == D("0.1")
    assert ex.instrument("BTCUSDT", "spot").qty_step == D("0.000001")
    with pytest.raises(ValueError, match="after the clock"):
        ex.step(T0 + 7 * M)
    with pytest.raises(TypeError):
        PaperExchange(engine, paper_config(settings()), ex.source, _FixedClock()).advance_to(T0)


class _FixedClock:
    def now_ms(self) -> int:
        return T0

    def now(self) -> Any:
        return from_ms(T0)


def test_the_runtime_builds_it_over_the_stored_candles(isolated_env: Path) -> None:
    from jiritsu.market.store import CandleStore, cache_root
    from jiritsu.runtime import build_runtime

    loaded = load_config(REPO / "config.toml")
    assert loaded.settings.general.environment == "paper"
    migrate.upgrade(loaded.db_url)
    engine = make_engine(loaded.db_url)
    CandleStore(engine, cache_root(isolated_env)).write("BTCUSDT", "1", frame([HISTORY]))
    with build_runtime(loaded, clock=SimClock(T0 + M), db=engine) as rt:
        assert isinstance(rt.exchange, PaperExchange)
        assert rt.exchange.ticker("BTCUSDT").last == D(100)
        assert {s.username for s in rt.exchange.sub_accounts()} == set(loaded.settings.bot_names)
    engine.dispose()
