"""The equity chart: a PNG through matplotlib (Agg, imported only here) and a terminal
sparkline, so a backtest shows its shape without leaving the shell."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from jiritsu.backtest.runner import BacktestResult

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray, width: int = 60) -> str:
    """``width`` block characters, each the last value of its slice, scaled min..max."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return ""
    idx = np.linspace(0, v.size - 1, min(width, v.size)).round().astype(np.int64)
    pts = v[idx]
    lo, hi = float(pts.min()), float(pts.max())
    if hi - lo <= 0.0:
        return BLOCKS[0] * pts.size
    scaled = ((pts - lo) / (hi - lo) * (len(BLOCKS) - 1)).round().astype(np.int64)
    return "".join(BLOCKS[i] for i in scaled)


def equity_figure(result: BacktestResult) -> Any:
    """The matplotlib figure of the equity curve and its drawdown (the caller closes it).

    Dates go through matplotlib's auto locator and concise formatter: a handful of ticks
    whatever the span (hours to years), labels that only say what changed (the year once,
    then months; the day once, then hours), so they never run into each other.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    times = (result.ts + 60_000).astype("datetime64[ms]")
    eq = result.equity
    peak = np.maximum.accumulate(eq) if eq.size else eq
    dd = np.where(peak > 0, eq / np.where(peak > 0, peak, 1.0) - 1.0, 0.0)
    fig, (ax1, ax2) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax1.plot(times, eq, linewidth=0.8)
    m = result.metrics
    ax1.set_title(
        f"{result.bot} {result.symbol} {result.timeframe}m: return {m.total_return:+.2%}, "
        f"Sharpe {m.sharpe_ratio:.2f}, max DD {m.max_drawdown:.2%}, {m.trade_count} trades"
    )
    ax1.set_ylabel("equity")
    _mark_trips(ax1, result)
    ax2.fill_between(times, dd * 100.0, 0.0, color="tab:red", linewidth=0)
    ax2.set_ylabel("drawdown %")
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax2.xaxis.set_major_locator(locator)
    ax2.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax2.set_xlabel("UTC")
    fig.tight_layout()
    return fig


def _mark_trips(ax: Any, result: BacktestResult) -> None:
    """Every breaker trip on the chart: a global halt as a shaded span until its lift (the end
    of the run when for good), a loss-streak pause as a dashed line."""
    end = float(result.end_ms)
    labelled: set[str] = set()

    def label(text: str) -> str | None:  # each kind once in the legend
        if text in labelled:
            return None
        labelled.add(text)
        return text

    for trip in result.breaker_trips():
        start = np.datetime64(int(trip["time"]), "ms")
        stop = np.datetime64(int(min(trip["until"] or end, end)), "ms")
        if trip["scope"] == "global":
            ax.axvspan(start, stop, color="tab:orange", alpha=0.25, linewidth=0,
                       label=label(f"portfolio halt ({trip['breaker']})"))  # fmt: skip
        else:
            ax.axvline(start, color="tab:red", linestyle="--", linewidth=0.8,
                       label=label("loss-streak pause"))  # fmt: skip
    if labelled:
        ax.legend(loc="best", fontsize="small")


def plot_equity(result: BacktestResult, path: str | Path) -> Path:
    """Write the equity curve (and drawdown) of ``result`` to ``path`` as a PNG."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig = equity_figure(result)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
