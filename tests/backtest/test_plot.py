"""``backtest --plot``: the date labels of the x-axis never overlap, whatever the span."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from jiritsu.backtest.metrics import Metrics
from jiritsu.backtest.plot import equity_figure, plot_equity
from jiritsu.backtest.runner import BacktestResult

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE = 60_000


def _result(minutes: int, bar_minutes: int = 1) -> BacktestResult:
    ts = T0 + np.arange(0, minutes, bar_minutes, dtype=np.int64) * MINUTE
    rng = np.random.default_rng(7)
    equity = 10_000 * np.exp(np.cumsum(rng.normal(0, 1e-3, ts.size)))
    metrics = Metrics(
        initial_equity=10_000.0, final_equity=float(equity[-1]),
        total_return=float(equity[-1] / 10_000 - 1), cagr=0.0, sharpe_ratio=0.5,
        sortino_ratio=0.6, max_drawdown=0.1, win_rate=0.5, profit_factor=1.1, trade_count=12,
        exposure=0.3, fees_paid=1.0, bars=int(ts.size),
    )  # fmt: skip
    return BacktestResult(
        bot="SubBot-B", symbol="BTCUSDT", timeframe=str(bar_minutes), strategy="rule", params={},
        start_ms=int(ts[0]), end_ms=int(ts[-1]) + bar_minutes * MINUTE, ts=ts, equity=equity,
        fills=np.zeros((0, 8)), metrics=metrics, actions=0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("minutes", "bar"),
    [(6 * 60, 1), (24 * 60, 1), (3 * 1440, 5), (30 * 1440, 15), (365 * 1440, 60),
     (3 * 365 * 1440, 240)],
)  # fmt: skip
def test_date_labels_do_not_overlap(minutes: int, bar: int) -> None:
    import matplotlib.pyplot as plt

    fig = equity_figure(_result(minutes, bar))
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        axis = fig.axes[1].xaxis
        labels = [t for t in axis.get_ticklabels() if t.get_visible() and t.get_text()]
        assert len(labels) >= 3, [t.get_text() for t in labels]
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        for left, right in pairwise(boxes):
            assert left.x1 < right.x0, (minutes, [t.get_text() for t in labels])
        assert len({t.get_text() for t in labels}) == len(labels), "a label repeats"
    finally:
        plt.close(fig)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    path = plot_equity(_result(24 * 60), tmp_path / "out" / "bt.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
