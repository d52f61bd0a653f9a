"""The canonical frame: intervals, validation, resampling and numpy views."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from jiritsu.errors import UsageError
from jiritsu.market.frames import (
    CANDLE_SCHEMA,
    FrameError,
    empty_frame,
    interval_ms,
    normalize_interval,
    resample,
    to_numpy,
    validate_frame,
)

M = 60_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday


def _frame(rows: list[tuple[int, float, float, float, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=CANDLE_SCHEMA, orient="row")


@pytest.mark.parametrize(
    ("interval", "ms"),
    [
        ("1", 60_000),
        ("3", 180_000),
        ("5", 300_000),
        ("15", 900_000),
        ("30", 1_800_000),
        ("60", 3_600_000),
        ("120", 7_200_000),
        ("240", 14_400_000),
        ("360", 21_600_000),
        ("720", 43_200_000),
        ("D", 86_400_000),
        ("W", 604_800_000),
        ("d", 86_400_000),
    ],
)
def test_interval_ms(interval: str, ms: int) -> None:
    assert interval_ms(interval) == ms


def test_monthly_interval_has_no_fixed_length() -> None:
    with pytest.raises(UsageError, match="no fixed length"):
        interval_ms("M")


@pytest.mark.parametrize("interval", ["2", "1m", "1h", "", "H"])
def test_unknown_interval(interval: str) -> None:
    with pytest.raises(UsageError, match="unknown interval"):
        normalize_interval(interval)


def test_validate_accepts_canonical_and_empty() -> None:
    validate_frame(_frame([(T0, 10, 12, 9, 11, 1.5), (T0 + M, 11, 11, 11, 11, 0)]))
    validate_frame(empty_frame())


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"ts": [T0], "open": [1.0]}), "not a candle frame"),
        (_frame([(T0, 1, 1, 1, 1, 1)]).cast({"ts": pl.Float64}), "not a candle frame"),
        (
            _frame([(T0, 1, 1, 1, 1, 1)]).select(list(reversed(CANDLE_SCHEMA.names()))),
            "not a candle frame",
        ),
        (_frame([(T0 + M, 1, 1, 1, 1, 1), (T0, 1, 1, 1, 1, 1)]), "strictly increasing"),
        (_frame([(T0, 1, 1, 1, 1, 1), (T0, 1, 1, 1, 1, 1)]), "strictly increasing"),
        (_frame([(T0, 10, 10.5, 9, 11, 1)]), "inconsistent"),  # high < close
        (_frame([(T0, 10, 12, 10.5, 11, 1)]), "inconsistent"),  # low > open
        (_frame([(T0, float("nan"), 12, 9, 11, 1)]), "inconsistent"),
        (_frame([(T0, 0, 12, 0, 11, 1)]), "inconsistent"),
        (_frame([(T0, 10, 12, 9, 11, -1)]), "inconsistent"),
        (
            pl.DataFrame({"ts": [T0], "open": [None], "high": [1.0], "low": [1.0], "close": [1.0]})
            .with_columns(volume=pl.lit(1.0))
            .cast(dict(CANDLE_SCHEMA)),
            "nulls",
        ),
    ],
)
def test_validate_rejects(frame: pl.DataFrame, message: str) -> None:
    with pytest.raises(FrameError, match=message):
        validate_frame(frame)


def test_validate_rejects_non_frames() -> None:
    with pytest.raises(FrameError, match="polars DataFrame"):
        validate_frame([1, 2, 3])  # type: ignore[arg-type]


def test_resample_to_five_minutes_keeps_gaps_as_gaps() -> None:
    src = _frame(
        [
            (T0 + 0 * M, 100, 103, 99, 102, 1),
            (T0 + 1 * M, 102, 105, 101, 104, 2),
            (T0 + 2 * M, 104, 104, 97, 98, 3),
            (T0 + 4 * M, 98, 100, 98, 99, 4),  # minute 3 missing inside the bucket
            # minutes 5..9 missing: no 00:05 bar
            (T0 + 10 * M, 99, 101, 99, 100, 5),
            (T0 + 11 * M, 100, 100, 95, 96, 6),
        ]
    )
    out = resample(src, "5")
    expected = _frame(
        [
            (T0, 100, 105, 97, 99, 10),  # open of 00:00, max high, min low, close of 00:04
            (T0 + 10 * M, 99, 101, 95, 96, 11),
        ]
    )
    assert out.equals(expected)


def test_resample_aligns_to_epoch_multiples_not_to_the_first_bar() -> None:
    # first bar at 00:45 -> its hour bar opens at 00:00
    src = _frame([(T0 + 45 * M, 10, 11, 9, 10, 1), (T0 + 75 * M, 10, 12, 10, 12, 2)])
    out = resample(src, "60")
    assert out["ts"].to_list() == [T0, T0 + 60 * M]
    assert out["volume"].to_list() == [1.0, 2.0]


def test_weekly_bars_open_on_monday() -> None:
    wednesday = T0 + 2 * 1440 * M
    next_monday = T0 + 7 * 1440 * M
    src = _frame(
        [
            (wednesday, 10, 11, 9, 10, 1),
            (next_monday - M, 10, 13, 10, 13, 1),
            (next_monday, 13, 13, 12, 12, 1),
        ]
    )
    out = resample(src, "W")
    assert out["ts"].to_list() == [T0, next_monday]
    assert out.row(0) == (T0, 10.0, 13.0, 9.0, 13.0, 2.0)


def test_resample_daily_sums_volume() -> None:
    src = _frame(
        [(T0 + i * M, 1, 1, 1, 1, 0.5) for i in range(1440)] + [(T0 + 1440 * M, 1, 1, 1, 1, 7)]
    )
    out = resample(src, "D")
    assert out["volume"].to_list() == [720.0, 7.0]


def test_to_numpy_gives_typed_zero_copy_views() -> None:
    frame = _frame([(T0, 10, 12, 9, 11, 1.5), (T0 + M, 11, 11, 11, 11, 0)])
    arrays = to_numpy(frame)
    assert list(arrays) == ["ts", "open", "high", "low", "close", "volume"]
    assert arrays["ts"].dtype == np.int64
    assert all(arrays[c].dtype == np.float64 for c in ("open", "high", "low", "close", "volume"))
    assert arrays["close"].tolist() == [11.0, 11.0]
    assert np.shares_memory(arrays["close"], frame["close"].to_numpy())


def test_to_numpy_of_a_multi_chunk_frame_is_contiguous() -> None:
    a = _frame([(T0, 10, 12, 9, 11, 1.5)])
    b = _frame([(T0 + M, 11, 11, 11, 11, 0)])
    arrays = to_numpy(pl.concat([a, b], rechunk=False))
    assert arrays["ts"].tolist() == [T0, T0 + M]
    assert arrays["ts"].flags.c_contiguous
