"""Gap detection on hand-made timestamps (figures counted by hand in the comments)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from jiritsu.market.gaps import Gap, GapReport, find_gaps

M = 60_000
T0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z


def _ts(*minutes: int) -> list[int]:
    return [T0 + m * M for m in minutes]


def test_no_gaps_in_a_contiguous_series() -> None:
    assert find_gaps(_ts(0, 1, 2, 3), M) == []
    report = GapReport.from_ts(_ts(0, 1, 2, 3), M)
    assert (report.count, report.missing_bars, report.longest, report.coverage) == (0, 0, None, 1.0)


def test_gaps_name_first_and_last_missing_bar() -> None:
    # present 0,1 | 2 missing | 3 | 4,5,6 missing | 7 | 8..10 present except 9 missing | 10
    ts = _ts(0, 1, 3, 7, 8, 10)
    assert find_gaps(ts, M) == [
        Gap(T0 + 2 * M, T0 + 2 * M, 1),
        Gap(T0 + 4 * M, T0 + 6 * M, 3),
        Gap(T0 + 9 * M, T0 + 9 * M, 1),
    ]


def test_report_figures() -> None:
    ts = _ts(0, 1, 3, 7, 8, 10)  # span 0..10 = 11 expected bars, 6 present, 5 missing
    report = GapReport.from_ts(np.asarray(ts, dtype=np.int64), M)
    assert report.count == 3
    assert report.missing_bars == 5
    assert report.expected == 11
    assert report.coverage == pytest.approx(6 / 11)
    assert report.longest == Gap(T0 + 4 * M, T0 + 6 * M, 3)
    text = report.summary()
    assert "6 bars" in text
    assert "3 gaps, 5 missing bars (coverage 54.55%)" in text
    assert "longest 3 bars from 2024-01-01 00:04" in text


def test_longest_tie_is_the_earliest() -> None:
    report = GapReport.from_ts(_ts(0, 3, 6), M)
    assert report.longest == Gap(T0 + M, T0 + 2 * M, 2)


def test_accepts_polars_series_and_other_intervals() -> None:
    hour = 60 * M
    ts = pl.Series([T0, T0 + hour, T0 + 4 * hour])
    assert find_gaps(ts, hour) == [Gap(T0 + 2 * hour, T0 + 3 * hour, 2)]


def test_empty_and_single_bar() -> None:
    empty = GapReport.from_ts([], M)
    assert (empty.count, empty.missing_bars, empty.coverage, empty.summary()) == (
        0,
        0,
        0.0,
        "no bars",
    )
    single = GapReport.from_ts(_ts(5), M)
    assert (single.count, single.expected, single.coverage) == (0, 1, 1.0)


@pytest.mark.parametrize(
    ("ts", "message"),
    [
        (_ts(0, 2, 1), "strictly increasing"),
        (_ts(0, 1, 1), "strictly increasing"),
        ([T0, T0 + M, T0 + M + 30_000], "grid"),
        ([1.5, 2.5], "integer"),
    ],
)
def test_unsorted_or_misaligned_input_is_refused(ts: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        find_gaps(ts, M)
