"""The driver finds the next bar of the timeframe by galloping instead of walking every bar of a
quiet stretch: the index a scan would stop at, duplicates, both ends and a start past the end."""

from __future__ import annotations

import numpy as np
import pytest

from jiritsu.strategy import kernel as K


def scan(a: np.ndarray, lo: int, x: float) -> int:
    while lo < a.shape[0] and a[lo] <= x:
        lo += 1
    return lo


@pytest.mark.parametrize("compiled", [False, True])
def test_first_after_stops_where_the_scan_stops(compiled: bool) -> None:
    fn = K.compiled(cache=True).first_after if compiled else K.first_after
    rng = np.random.default_rng(4)
    for _ in range(2000):
        n = int(rng.integers(0, 70))
        a = np.sort(rng.integers(0, 40, n)).astype(np.float64)  # duplicates too
        lo = int(rng.integers(0, n + 2))
        x = float(rng.integers(-3, 44)) + float(rng.choice([0.0, 0.5]))
        assert fn(a, lo, x) == scan(a, lo, x), (a.tolist(), lo, x)
    big = np.arange(500_000, dtype=np.float64)
    assert fn(big, 3, 499_998.5) == 499_999
    assert fn(big, 0, 1e12) == 500_000
    assert fn(big, 10, -1.0) == 10
