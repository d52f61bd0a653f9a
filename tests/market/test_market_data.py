"""MarketData without a candle store serves what it was given, even when it has a client."""

from __future__ import annotations

from typing import Any

from jiritsu.clock import SimClock
from jiritsu.market.data import MarketData
from jiritsu.market.synth import synth_candles


class _Untouchable:
    """A client that must never be asked: there is no store to keep what it would return."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the client was asked for {name}")


def test_a_client_without_a_store_never_loops_or_fetches() -> None:
    frame = synth_candles(days=1, seed=3)
    last_ts = int(frame["ts"][-1])
    clock = SimClock(last_ts + 60_000)  # the last bar has just closed
    market = MarketData(None, clock, ["BTCUSDT"], days=1, client=_Untouchable())
    market.add("BTCUSDT", frame)

    assert market.refresh() is None  # used to recurse until RecursionError
    assert market.price("BTCUSDT") == float(frame["close"][-1])
