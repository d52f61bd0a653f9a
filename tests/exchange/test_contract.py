"""The Exchange contract, one suite run against BOTH implementations: the paper exchange (SQLite
ledger over stored candles on a simulated clock) and BybitExchange (real pybit over loopback TLS
to the fake Bybit). What the engine relies on must hold on both, so the sandbox cannot drift
from the real client:

- an order and a transfer happen once per client id, however often they are sent;
- quantities round down to the instrument's step and prices to its tick, as Decimals; what is
  still below the minimum is refused;
- TP/SL ride on the position (rounded to the tick); ``set_trading_stop`` is linear only;
- a taker fill pays ``price x qty x taker fee`` in the quote coin; a spot buy pays its fee in the
  BASE coin;
- a bot's balance is its UNIFIED quote wallet, moved by transfers exactly;
- executions carry unique ids and the client id of their order.

Only relations are asserted, never one venue's prices (the paper exchange fills at the next bar's
open plus slippage, the fake at its ask).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

import polars as pl
import pytest

from jiritsu.clock import SimClock, from_ms
from jiritsu.exchange import MAIN, Exchange, OrderRejected
from jiritsu.exchange.ids import new_transfer_id
from jiritsu.exchange.types import OrderRequest, TransferRequest
from jiritsu.market.frames import CANDLE_SCHEMA
from tests.exchange.bybit_env import MIN, btc_rows, bybit_env

LINEAR, SPOT = "SubBot-C", "SubBot-A"  # the shipped configuration: C trades linear, A spot


@dataclass
class Venue:
    name: str
    ex: Exchange
    advance: Callable[[int], None]  # move the market on by N minutes (fills what can fill)
    since: datetime  # the start of the test's execution window

    def fills(self, account: str, category: str) -> list:
        return self.ex.executions(account, category, since=self.since)  # type: ignore[arg-type]


def _paper(data_dir: Path) -> Iterator[Venue]:
    from jiritsu.config import load_config
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine
    from jiritsu.exchange.paper import PaperExchange
    from jiritsu.market.data import MarketData
    from jiritsu.runtime import paper_config
    from tests.conftest import REPO

    loaded = load_config(REPO / "config.toml", environ={"JIRITSU_GENERAL__DATA_DIR": str(data_dir)})
    migrate.upgrade(loaded.db_url)
    engine = make_engine(loaded.db_url)
    t0 = 1_767_225_600_000  # 2026-01-01
    rows = btc_rows(t0 - 10 * MIN)
    candles = pl.DataFrame(
        [r[:6] for r in rows], schema=list(CANDLE_SCHEMA), orient="row"
    ).cast(CANDLE_SCHEMA)  # fmt: skip
    clock = SimClock(t0)
    market = MarketData(None, clock, ["BTCUSDT"], days=None)
    market.add("BTCUSDT", candles)
    ex = PaperExchange(engine, paper_config(loaded.settings), market, clock)

    def advance(minutes: int) -> None:
        clock.advance(minutes)
        ex.step()

    yield Venue("paper", ex, advance, from_ms(t0 - MIN))
    engine.dispose()


def _bybit() -> Iterator[Venue]:
    with bybit_env() as env:
        ex = env.exchange()

        def advance(minutes: int) -> None:
            env.fake.clock += minutes * MIN

        yield Venue("bybit", ex, advance, from_ms(env.t0 - MIN))
        ex.close()


@pytest.fixture(params=["paper", "bybit"])
def venue(request: pytest.FixtureRequest, isolated_env: Path) -> Iterator[Venue]:
    if request.param == "paper":
        yield from _paper(isolated_env)
    else:
        yield from _bybit()


def buy(cid: str, qty: str, **kw: object) -> OrderRequest:
    return OrderRequest(cid, "BTCUSDT", "Buy", Decimal(qty), **kw)  # type: ignore[arg-type]


def test_an_order_happens_once_per_client_id(venue: Venue) -> None:
    first = venue.ex.place_order(LINEAR, "linear", buy("contract-once-1", "0.01"))
    again = venue.ex.place_order(LINEAR, "linear", buy("contract-once-1", "0.01"))
    assert again.exchange_order_id == first.exchange_order_id
    venue.advance(2)
    state = venue.ex.get_order(LINEAR, "linear", "BTCUSDT", "contract-once-1")
    assert state is not None
    assert (state.status, state.filled_qty) == ("filled", Decimal("0.01"))
    fills = [f for f in venue.fills(LINEAR, "linear") if f.client_order_id == "contract-once-1"]
    assert sum(f.qty for f in fills) == Decimal("0.01")
    assert len({f.exec_id for f in fills}) == len(fills)  # executions by unique id
    [position] = venue.ex.positions(LINEAR, "linear", "BTCUSDT")
    assert (position.side, position.size) == ("Buy", Decimal("0.01"))
    assert venue.ex.get_order(LINEAR, "linear", "BTCUSDT", "contract-unknown") is None


def test_quantities_and_prices_round_to_the_instrument(venue: Venue) -> None:
    inst = venue.ex.instrument("BTCUSDT", "linear")
    assert isinstance(inst.qty_step, Decimal)
    assert isinstance(inst.tick_size, Decimal)
    last = venue.ex.ticker("BTCUSDT", "linear").last
    wanted = (last * Decimal("0.9")).quantize(inst.tick_size) + inst.tick_size / 3
    state = venue.ex.place_order(
        LINEAR, "linear", buy("contract-round-1", "0.0129", order_type="Limit", price=wanted)
    )
    assert state.qty == Decimal("0.0129").quantize(inst.qty_step, rounding=ROUND_DOWN)
    assert state.price is not None
    assert state.price % inst.tick_size == 0
    assert abs(state.price - wanted) < inst.tick_size
    assert state.is_open
    venue.ex.cancel_order(LINEAR, "linear", "BTCUSDT", client_order_id="contract-round-1")
    assert venue.ex.open_orders(LINEAR, "linear", "BTCUSDT") == []
    with pytest.raises(OrderRejected):
        venue.ex.place_order(LINEAR, "linear", buy("contract-round-2", str(inst.min_qty / 2)))


def test_tp_sl_ride_on_the_position_rounded_to_the_tick(venue: Venue) -> None:
    inst = venue.ex.instrument("BTCUSDT", "linear")
    last = venue.ex.ticker("BTCUSDT", "linear").last
    tp, sl = (last * Decimal("1.2")).quantize(inst.tick_size), (last * Decimal("0.8")).quantize(
        inst.tick_size
    )
    venue.ex.place_order(
        LINEAR, "linear", buy("contract-tpsl-1", "0.01", take_profit=tp, stop_loss=sl)
    )
    venue.advance(2)
    [position] = venue.ex.positions(LINEAR, "linear", "BTCUSDT")
    assert (position.take_profit, position.stop_loss) == (tp, sl)
    venue.ex.set_trading_stop(
        LINEAR, "linear", "BTCUSDT", take_profit=tp + inst.tick_size / 4, stop_loss=sl
    )
    [position] = venue.ex.positions(LINEAR, "linear", "BTCUSDT")
    assert position.take_profit is not None
    assert position.take_profit % inst.tick_size == 0
    with pytest.raises(OrderRejected):
        venue.ex.set_trading_stop(SPOT, "spot", "BTCUSDT", take_profit=None, stop_loss=None)


def test_fees_in_the_quote_coin_and_spot_buys_in_the_base_coin(venue: Venue) -> None:
    venue.ex.place_order(LINEAR, "linear", buy("contract-fee-1", "0.01"))
    venue.ex.place_order(SPOT, "spot", buy("contract-fee-2", "0.01"))
    venue.advance(2)
    [linear] = venue.fills(LINEAR, "linear")
    assert not linear.is_maker
    assert linear.fee_currency == "USDT"
    assert linear.fee_rate is not None
    assert linear.fee == pytest.approx(linear.price * linear.qty * linear.fee_rate, abs=1e-8)
    [spot] = venue.fills(SPOT, "spot")
    assert spot.fee_currency == "BTC"  # as on Bybit: the fee comes out of the coins bought
    assert spot.fee_rate is not None
    assert spot.fee == pytest.approx(spot.qty * spot.fee_rate, abs=1e-8)


def test_a_transfer_happens_once_per_id_and_moves_the_wallet_exactly(venue: Venue) -> None:
    before = venue.ex.balance(LINEAR, "USDT")
    main_before = venue.ex.balance(MAIN, "USDT")
    assert before.equity == before.wallet_balance + before.unrealised_pnl
    assert before.available <= before.wallet_balance
    request = TransferRequest(
        new_transfer_id(), "USDT", Decimal("12.5"), LINEAR, MAIN, "UNIFIED", "FUND"
    )
    assert venue.ex.transfer(request).status == "success"
    assert venue.ex.transfer(request).status == "success"  # sent again: already done
    found = venue.ex.get_transfer(request.transfer_id)
    assert found is not None
    assert found.status == "success"
    assert venue.ex.balance(LINEAR, "USDT").wallet_balance == before.wallet_balance - Decimal(
        "12.5"
    )
    assert venue.ex.balance(MAIN, "USDT").wallet_balance == main_before.wallet_balance + Decimal(
        "12.5"
    )
    with pytest.raises(OrderRejected):
        venue.ex.transfer(
            TransferRequest(
                request.transfer_id, "USDT", Decimal(20), LINEAR, MAIN, "UNIFIED", "FUND"
            )
        )


def test_the_paper_exchange_is_simulated_and_bybit_is_not(venue: Venue) -> None:
    from jiritsu.exchange.base import Simulated

    assert isinstance(venue.ex, Simulated) == (venue.name == "paper")
