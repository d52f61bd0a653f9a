"""A decision row's snapshot is built and turned into JSON without numpy scalars or generic
type checks per number: the very same numbers and the very same JSON as the textbook rules
(numpy scalars at every bar, every value through the whole chain of type checks)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

import numpy as np

from jiritsu.advisors.base import Decision, MarketSnapshot
from jiritsu.advisors.record import decision_row, jsonable
from jiritsu.engine.snapshot import SUMMARY_BARS, ohlcv_summary
from jiritsu.market.data import BotBars
from jiritsu.strategy.contract import Bars

NOW = datetime(2019, 3, 1, 12, 0, tzinfo=timezone.utc)


def _f(x: Any) -> float | None:
    x = float(x)
    return round(x, 10) if math.isfinite(x) else None


def _summary(bars: BotBars) -> dict[str, Any]:
    """The summary computed on numpy scalars, as the rule reads."""
    k, close = bars.k, bars.close
    lo = max(0, k - SUMMARY_BARS + 1)

    def ret(n: int) -> float | None:
        if k - n < 0 or not close[k - n] > 0:
            return None
        return _f(close[k] / close[k - n] - 1.0)

    return {
        "closes": [_f(x) for x in close[max(0, k - 5) : k + 1]],
        "return_1": ret(1),
        "return_12": ret(12),
        "return_48": ret(48),
        "high_48": _f(bars.high[lo : k + 1].max()),
        "low_48": _f(bars.low[lo : k + 1].min()),
        "volume_last": _f(bars.volume[k]),
        "volume_avg_48": _f(bars.volume[lo : k + 1].mean()),
    }


def _reference(value: Any) -> Any:
    """JSON-able through every type check in turn."""
    if isinstance(value, float):
        return value if value == value and value not in (math.inf, -math.inf) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _reference(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _reference(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_reference(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):
        return _reference(value.item())
    return str(value)


def _bars(rng: np.random.Generator, n: int) -> BotBars:
    close = 4000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    close[rng.integers(0, n, 8)] = np.nan  # holes
    close[rng.integers(0, n, 4)] = 0.0  # a zero (or negative) base has no return
    close[rng.integers(0, n, 2)] = -1.0
    close[rng.integers(0, n, 2)] = np.inf
    high, low = close * 1.003, close * 0.997
    volume = rng.lognormal(13, 1.5, n)  # large: the last bits of a sum survive the rounding
    volume[rng.integers(0, n, 8)] = np.nan
    ts = np.arange(n, dtype=np.int64) * 900_000
    cols = {"ts": ts, "open": close, "high": high, "low": low, "close": close, "volume": volume}
    return BotBars(ts, close, high, low, close, volume, Bars.from_columns(cols), 0, 900_000)


def test_the_summary_is_the_numpy_scalars_one_at_every_bar() -> None:
    rng = np.random.default_rng(7)
    for n in (1, 13, 60, 700):
        bars = _bars(rng, n)
        for k in range(n):
            at = dataclasses.replace(bars, k=k)
            got, want = ohlcv_summary(at), _summary(at)
            assert json.dumps(got) == json.dumps(want), (n, k)


class Side(str, Enum):
    BUY = "Buy"


@dataclasses.dataclass
class Inner:
    price: Decimal
    at: datetime
    flags: set[int]


def _value(rng: np.random.Generator, depth: int) -> Any:
    scalars = [
        float(rng.normal()), math.nan, math.inf, -math.inf, -0.0, 1e308, 5, True, None, "x",
        np.float64(rng.normal()), np.float64(math.nan), np.int64(3), np.bool_(False),
        Decimal("0.000000012"), date(2019, 1, 2), NOW, Side.BUY,
    ]  # fmt: skip
    pick = int(rng.integers(0, 6 if depth < 3 else 1))
    if pick == 0:
        return scalars[int(rng.integers(0, len(scalars)))]
    if pick == 1:
        return {(str(i) if i % 2 else i): _value(rng, depth + 1) for i in range(3)}
    if pick == 2:
        return [_value(rng, depth + 1) for _ in range(3)]
    if pick == 3:
        return tuple(_value(rng, depth + 1) for _ in range(2))
    if pick == 4:
        return {Side.BUY: _value(rng, depth + 1), "k": _value(rng, depth + 1)}
    return Inner(Decimal("1.5"), NOW, {1, 2})


def test_jsonable_is_the_chain_of_type_checks_over_random_values() -> None:
    rng = np.random.default_rng(11)
    for _ in range(3000):
        value = _value(rng, 0)
        assert json.dumps(jsonable(value)) == json.dumps(_reference(value))


def test_a_decision_row_is_the_same_json() -> None:
    rng = np.random.default_rng(3)
    bars = _bars(rng, 300)
    for k in range(0, 300, 7):
        snap = MarketSnapshot(
            "SubBot-B", "balanced", "BTCUSDT", "15", NOW, float(bars.close[k]),
            ohlcv_summary(dataclasses.replace(bars, k=k)), {"rsi": _f(rng.normal()), "atr": None},
            {"side": "Buy", "size": 0.01, "avg_price": 4000.0, "unrealised_pnl": -1.5},
            sentiment=None, rule_signal=("BUY", 0.5, "why"), allowed_actions=("BUY", "HOLD"),
        )  # fmt: skip
        view = {"action": "BUY", "confidence": 0.5, "plan": {"n": np.int64(2)}, "x": math.nan}
        row = decision_row("SubBot-B", snap, Decision("BUY", 0.5, "why", "rules"),
                           engine_view=view, now=NOW)  # fmt: skip
        want = _reference(snap)
        want["engine"] = _reference(view)
        assert json.dumps(row["input_summary"]) == json.dumps(want)
