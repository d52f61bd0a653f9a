"""The position book and trade PnL, priced by hand (Decimal, fees included)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

from jiritsu.exchange.book import PositionBook, tradeable
from jiritsu.strategy.params import default_instrument

T = datetime(2024, 1, 1, tzinfo=timezone.utc)


def at(minutes: int) -> datetime:
    return T + timedelta(minutes=minutes)


def test_linear_average_partial_close_and_fee_shares() -> None:
    book = PositionBook(default_instrument("linear", "BTCUSDT"))
    book.apply("o1", "Buy", D("0.002"), D("40000"), D("0.044"), "USDT", at(0))
    book.apply("o2", "Buy", D("0.001"), D("40300"), D("0.022165"), "USDT", at(1))
    pos = book.pos
    assert (pos.side, pos.qty, pos.avg) == (1, D("0.003"), D("40100"))
    assert pos.opened == at(0)
    assert pos.entry_fees == D("0.066165")
    # close 0.001 at 40500: realised 0.4, its own fee 0.022275, a third of the entry fees
    book.apply("o3", "Sell", D("0.001"), D("40500"), D("0.022275"), "USDT", at(5))
    assert book.pos.order_pnl["o3"] == D("0.4") - D("0.022275") - D("0.022055")
    assert (book.pos.qty, book.pos.avg) == (D("0.002"), D("40100"))
    book.apply("o4", "Sell", D("0.002"), D("39900"), D("0.04389"), "USDT", at(6))
    assert book.pos.order_pnl["o4"] == D("-0.4") - D("0.04389") - D("0.04411")
    assert (book.pos.side, book.pos.qty, book.pos.opened) == (0, D(0), None)
    # the round trip's PnL is everything made minus every fee
    total = sum(book.pos.order_pnl.values(), D(0))
    assert total == (D("0.4") - D("0.4")) - (D("0.044") + D("0.022165") + D("0.022275")
                                             + D("0.04389"))  # fmt: skip


def test_a_flip_closes_then_opens_with_the_rest_of_the_fee() -> None:
    book = PositionBook(default_instrument("linear", "BTCUSDT"))
    book.apply("o1", "Buy", D("0.001"), D("40000"), D("0.02"), "USDT", at(0))
    book.apply("o2", "Sell", D("0.003"), D("39000"), D("0.06"), "USDT", at(3))
    # closing part 0.001: -1.0 realised, a third of the fee, all of the entry fee
    assert book.pos.order_pnl["o2"] == D("-1.0") - D("0.02") - D("0.02")
    assert (book.pos.side, book.pos.qty, book.pos.avg) == (-1, D("0.002"), D("39000"))
    assert book.pos.entry_fees == D("0.04")
    assert book.pos.opened == at(3)


def test_spot_fee_in_the_coin_and_dust() -> None:
    inst = default_instrument("spot", "BTCUSDT")
    book = PositionBook(inst)
    # buy 0.001 BTC at 40000, fee 0.00000055 BTC: 0.00099945 arrive; fee worth 0.022 USDT
    book.apply("b1", "Buy", D("0.001"), D("40000"), D("0.00000055"), "BTC", at(0))
    assert (book.pos.qty, book.pos.avg, book.pos.entry_fees) == (D("0.00099945"), D("40000"),
                                                                 D("0.022"))  # fmt: skip
    # sell what can be sold (step 0.000001) at 41000, fee 0.00055 of 40.959 = 0.02252745
    book.apply("s1", "Sell", D("0.000999"), D("41000"), D("0.02252745"), "USDT", at(10))
    share = (D("0.022") * D("0.000999") / D("0.00099945")).quantize(D("1e-8"))
    assert book.pos.order_pnl["s1"] == D("0.000999") * 1000 - D("0.02252745") - share
    assert book.pos.qty == D("0.00000045")  # dust
    assert tradeable(book.pos.qty, book.pos.avg, inst) == 0
    assert book.pos.opened is None
