"""The synthetic market: deterministic, consistent bars, and regimes that behave as labelled."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl
import pytest

from jiritsu.errors import UsageError
from jiritsu.market.frames import CANDLE_SCHEMA, validate_frame
from jiritsu.market.synth import (
    DEFAULT_SEED,
    REGIMES,
    synth_candles,
    synth_candles_with_regimes,
)

T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, the default start


@pytest.fixture(scope="module")
def month() -> tuple[pl.DataFrame, np.ndarray]:
    """The offline demo's market: 30 days of 1-minute bars with the default seed."""
    return synth_candles_with_regimes(days=30, seed=DEFAULT_SEED)


def _segments(labels: np.ndarray) -> list[tuple[str, int, int]]:
    cuts = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = [0, *cuts.tolist(), labels.size]
    return [(str(labels[a]), a, b) for a, b in itertools.pairwise(bounds)]


def test_same_seed_same_bars_other_seed_other_bars() -> None:
    a, ra = synth_candles_with_regimes(days=3, seed=5)
    b, rb = synth_candles_with_regimes(days=3, seed=5)
    c = synth_candles(days=3, seed=6)
    assert a.equals(b)
    assert np.array_equal(ra, rb)
    assert not a.equals(c)
    assert a["ts"].equals(c["ts"])  # only the prices differ


def test_synth_candles_is_the_frame_of_the_labelled_version(month) -> None:
    frame, _ = month
    assert synth_candles(days=30, seed=DEFAULT_SEED).equals(frame)


def test_canonical_frame_on_the_minute_grid(month) -> None:
    frame, labels = month
    validate_frame(frame)
    assert frame.schema == CANDLE_SCHEMA
    assert frame.height == 30 * 1440 == labels.size
    assert frame["ts"][0] == T0
    assert set(np.diff(frame["ts"].to_numpy()).tolist()) == {60_000}


def test_ohlc_consistent_and_positive(month) -> None:
    frame, _ = month
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert np.all(h >= np.maximum(o, c))
    assert np.all(lo <= np.minimum(o, c))
    assert np.all(lo > 0)
    assert np.all(v > 0)
    assert np.array_equal(o[1:], c[:-1])  # continuous market: each bar opens at the last close
    assert frame["open"][0] == 30000.0


def test_every_regime_occurs_in_a_month(month) -> None:
    _, labels = month
    assert set(labels.tolist()) == set(REGIMES)


def test_a_crash_drops_more_than_8_percent_within_an_hour(month) -> None:
    frame, labels = month
    close = frame["close"].to_numpy()
    windows = np.lib.stride_tricks.sliding_window_view(close[1:], 60).min(axis=1)
    drops = 1.0 - windows / close[: windows.size]
    worst = int(np.argmax(drops))
    assert drops[worst] > 0.08
    assert "crash" in labels[worst + 1 : worst + 61]  # the fall is the crash, not noise


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 0, 1, 2])
def test_every_crash_really_falls(seed: int) -> None:
    frame, labels = synth_candles_with_regimes(days=30, seed=seed)
    opens, lows = frame["open"].to_numpy(), frame["low"].to_numpy()
    crashes = [(a, b) for regime, a, b in _segments(labels) if regime == "crash"]
    for a, b in crashes:
        assert lows[a:b].min() < 0.92 * opens[a]


def test_trends_go_their_way_and_ranges_stay_put(month) -> None:
    frame, labels = month
    opens, closes = frame["open"].to_numpy(), frame["close"].to_numpy()
    log_ret = np.log(closes / opens)
    assert log_ret[labels == "up"].mean() > 0
    assert log_ret[labels == "down"].mean() < 0
    moves = {"trend": [], "range": []}
    for regime, a, b in _segments(labels):
        net = abs(np.log(closes[b - 1] / opens[a]))
        if regime in ("up", "down") and b - a >= 1440:
            moves["trend"].append(net)
        elif regime == "range":
            moves["range"].append(net)
    assert moves["trend"]
    assert moves["range"]
    # a day of trend moves the price several times as far as a whole range segment
    assert np.mean(moves["trend"]) > 5 * np.mean(moves["range"])


def test_volatility_clusters_and_volume_follows_it(month) -> None:
    frame, labels = month
    abs_ret = np.abs(np.log(frame["close"].to_numpy() / frame["open"].to_numpy()))
    same = (labels[:-1] == "up") & (labels[1:] == "up")  # one regime: no regime effect
    lag1 = np.corrcoef(abs_ret[:-1][same], abs_ret[1:][same])[0, 1]
    assert lag1 > 0.1  # independent shocks would give about 0
    assert np.corrcoef(frame["volume"].to_numpy(), abs_ret)[0, 1] > 0.5


def test_other_interval_and_start() -> None:
    start = datetime(2025, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=9)))  # 00:00Z
    frame = synth_candles(days=2, seed=1, start=start, interval_minutes=60, start_price=2.5)
    validate_frame(frame)
    assert frame.height == 48
    assert frame["ts"][0] == int(datetime(2025, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)
    assert frame["ts"][1] - frame["ts"][0] == 3_600_000
    assert frame["open"][0] == 2.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"days": 0}, "days"),
        ({"seed": -1}, "seed"),
        ({"start": datetime(2024, 1, 1)}, "timezone-aware"),
        ({"start": datetime(2024, 1, 1, 0, 0, 30, tzinfo=timezone.utc)}, "boundary"),
        ({"interval_minutes": 7}, "interval_minutes"),
        ({"start_price": 0.0}, "start_price"),
        ({"start_price": float("nan")}, "start_price"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = {"days": 1, "seed": 1, **kwargs}
    with pytest.raises(UsageError, match=message):
        synth_candles(**args)
