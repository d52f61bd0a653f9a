"""Performance metrics of a backtest, from its equity curve and its closing fills.

Annualisation: crypto trades around the clock, so a year holds ``525_600 / b`` bars of ``b``
minutes. Sharpe = mean / std (sample, ddof=1) of the per-bar simple returns x sqrt(periods per
year); Sortino uses the downside deviation sqrt(mean(min(r, 0)^2)) over ALL returns. No
risk-free rate (USDT earns nothing on the exchange account).

Gaps: bars are never invented. The equity curve holds one point per stored bar with its
timestamp, and the return across a gap counts as one period (it is the change between two
consecutive stored bars). CAGR uses the real elapsed time between the first and last point,
so gaps do not distort it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MINUTES_PER_YEAR = 525_600.0
MS_PER_YEAR = MINUTES_PER_YEAR * 60_000.0


@dataclass(frozen=True)
class Metrics:
    """Every figure the CLI, the tuner and the dashboard show (fractions, not percent)."""

    initial_equity: float
    final_equity: float
    total_return: float
    cagr: float
    sharpe_ratio: float
    sortino_ratio: float
    max_drawdown: float  # positive fraction: 0.25 = the equity fell 25 % from a peak
    win_rate: float
    profit_factor: float
    trade_count: int
    exposure: float  # fraction of the period's time with a position open
    fees_paid: float
    bars: int

    def as_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in asdict(self).items()}


def _clean(value: Any) -> Any:
    """JSON has no inf/NaN: None stands for 'undefined'."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def periods_per_year(bar_minutes: float) -> float:
    """Bars of ``bar_minutes`` in a 365-day year (24/7 market)."""
    return MINUTES_PER_YEAR / bar_minutes


def bar_returns(equity: np.ndarray) -> np.ndarray:
    """Simple per-bar returns; a zero or negative equity ends the series (ruin)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.shape[0] < 2:
        return np.zeros(0)
    prev = eq[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.divide(eq[1:], prev)
        r -= 1.0  # in place: a year of minutes is 4 MB per temporary
        if not prev.min() > 0.0:  # also NaN
            r[~(prev > 0.0)] = 0.0
    return r


def sharpe(returns: np.ndarray, periods: float) -> float:
    """Annualised Sharpe ratio (0 when the returns do not vary)."""
    return _ratios(returns, periods)[0]


def sortino(returns: np.ndarray, periods: float) -> float:
    """Annualised Sortino ratio (0 without any losing bar)."""
    return _ratios(returns, periods)[1]


def _ratios(
    returns: np.ndarray, periods: float, scratch: np.ndarray | None = None
) -> tuple[float, float]:
    """(Sharpe, Sortino) in one go: the mean is summed once and one scratch array serves both.
    Each figure is the very float ``np.std(ddof=1)`` / ``np.mean`` give (same sums, same order)."""
    n = returns.shape[0]
    if n < 1:
        return 0.0, 0.0
    mean = float(np.mean(returns))
    dev = np.subtract(returns, mean, out=scratch)
    sq_dev = float(np.multiply(dev, dev, out=dev).sum())
    down = np.minimum(returns, 0.0, out=dev)
    sq_down = float(np.multiply(down, down, out=down).sum())
    return _annualised(mean, sq_dev, sq_down, n, periods)


def _annualised(
    mean: float, sq_dev: float, sq_down: float, n: int, periods: float
) -> tuple[float, float]:
    """(Sharpe, Sortino) from the mean return and the sums of squared deviations from it and of
    squared losses over ``n`` returns."""
    scale = math.sqrt(periods)
    shp = 0.0
    if n >= 2:
        sd = math.sqrt(sq_dev / (n - 1))
        if sd > 1e-15:
            shp = mean / sd * scale
    dd = math.sqrt(sq_down / n)
    srt = mean / dd * scale if dd > 1e-15 else 0.0
    return shp, srt


def max_drawdown(equity: np.ndarray) -> float:
    """Largest peak-to-trough fall as a positive fraction of the peak."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.shape[0] == 0:
        return 0.0
    peak = np.maximum.accumulate(eq)
    with np.errstate(divide="ignore", invalid="ignore"):
        if peak[0] > 0.0 and math.isfinite(peak[-1]):  # every peak > 0, no NaN anywhere
            # 1 - x falls as x grows (rounding too), so the largest 1 - eq/peak is 1 - the least
            return float(1.0 - np.divide(eq, peak, out=peak).min())
        dd = np.where(peak > 0.0, 1.0 - eq / peak, 0.0)
    return float(dd.max())


def _returns_after(start: float, eq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``bar_returns`` of ``[start, *eq]`` without building that curve, and a scratch array of
    the same length (a year of minutes is 4 MB: each array less is a few ms less of page
    faults in a grid)."""
    n = eq.shape[0]
    if n == 0 or not (start > 0.0 and eq[:-1].min(initial=math.inf) > 0.0):
        return bar_returns(np.concatenate(([start], eq))), np.empty(n)
    r = np.empty(n)
    r[0] = eq[0] / start
    np.divide(eq[1:], eq[:-1], out=r[1:])
    r -= 1.0
    return r, np.empty(n)


# Long curves (a year of minutes) go through three compiled passes instead of a dozen numpy ones
# (numpy's running maximum alone took 3 ms a year): the same divisions, subtractions and products
# element by element, and numpy's own sums of the same arrays, so the very same floats.
COMPILED_FROM = 5_000


def returns_after(start: float, eq: np.ndarray, r: np.ndarray) -> bool:
    """Fill ``r`` with the bar returns of ``[start, *eq]`` and say True, when ``start`` and every
    point but the last are > 0 (False, ``r`` half written, otherwise: :func:`bar_returns`)."""
    prev = start
    for i in range(eq.shape[0]):
        if not prev > 0.0:
            return False
        x = eq[i]
        r[i] = x / prev - 1.0
        prev = x
    return True


def squares(r: np.ndarray, mean: float, dev: np.ndarray) -> None:
    """``dev[i] = (r[i] - mean) ** 2`` and, in place, ``r[i] = min(r[i], 0) ** 2``: what the
    variance and the downside deviation sum."""
    for i in range(r.shape[0]):
        x = r[i]
        d = x - mean
        dev[i] = d * d
        if x > 0.0:  # np.minimum(x, 0.0), NaN kept
            x = 0.0
        r[i] = x * x


def least_to_peak(start: float, eq: np.ndarray) -> float:
    """The least ``eq[i] / max(start, eq[0..i])`` of a curve after ``start`` > 0 (NaN if the
    curve holds a NaN)."""
    peak = start
    least = math.inf
    for i in range(eq.shape[0]):
        x = eq[i]
        if x > peak:
            peak = x
        ratio = x / peak
        if ratio != ratio:
            return ratio
        if ratio < least:
            least = ratio
    return least


@functools.cache
def _compiled() -> Any:
    """:func:`returns_after`, :func:`squares` and :func:`least_to_peak` compiled by numba
    (disk-cached; numba is imported for long curves only)."""
    from types import SimpleNamespace

    import numba

    fns = (returns_after, squares, least_to_peak)
    return SimpleNamespace(**{fn.__name__: numba.njit(cache=True)(fn) for fn in fns})


def _compiled_after(
    start: float, eq: np.ndarray, periods: float
) -> tuple[float, float, float] | None:
    """(Sharpe, Sortino, drawdown) of ``[start, *eq]`` from the compiled passes, or None for a
    curve that needs the general path (a point <= 0, NaN or infinite)."""
    fast = _compiled()
    n = eq.shape[0]
    r = np.empty(n)
    if not fast.returns_after(start, eq, r):
        return None
    least = fast.least_to_peak(start, eq)
    if not math.isfinite(least):
        return None
    mean = float(np.mean(r))
    dev = np.empty(n)
    fast.squares(r, mean, dev)
    shp, srt = _annualised(mean, float(dev.sum()), float(r.sum()), n, periods)
    return shp, srt, max(0.0, 1.0 - least)


def _drawdown_after(start: float, eq: np.ndarray, scratch: np.ndarray) -> float:
    """``max_drawdown`` of ``[start, *eq]`` (the same float), using ``scratch`` for the peaks."""
    if eq.shape[0] == 0 or not start > 0.0:
        return max_drawdown(np.concatenate(([start], eq)))
    peak = np.maximum.accumulate(eq, out=scratch)
    np.maximum(peak, start, out=peak)
    if not math.isfinite(peak[-1]):
        return max_drawdown(np.concatenate(([start], eq)))
    # the curve's first point is its own peak: a fall of 0
    return max(0.0, float(1.0 - np.divide(eq, peak, out=peak).min()))


def cagr(first: float, last: float, elapsed_ms: float) -> float:
    """Compound annual growth from the first to the last equity over the real elapsed time."""
    if not (first > 0.0 and elapsed_ms > 0.0):
        return 0.0
    if last <= 0.0:
        return -1.0
    try:
        return (last / first) ** (MS_PER_YEAR / elapsed_ms) - 1.0
    except OverflowError:  # +2 % in three minutes, annualised
        return math.inf


def compute_metrics(
    ts: np.ndarray,
    equity: np.ndarray,
    trade_pnls: np.ndarray,
    fees_paid: float,
    exposure: float,
    bar_minutes: float = 1.0,
    initial_equity: float | None = None,
) -> Metrics:
    """All metrics of one run. ``ts`` are the bars' OPEN times (ms) and ``equity`` the equity at
    each bar's close; ``initial_equity`` (default the first point) is the equity before the
    first bar, so the first bar's return counts too."""
    ts = np.asarray(ts, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    pnls = np.asarray(trade_pnls, dtype=np.float64)
    start = float(initial_equity) if initial_equity is not None else float(eq[0] if eq.size else 0)
    final = float(eq[-1]) if eq.size else start
    if initial_equity is None:
        r = bar_returns(eq)
        shp, srt = _ratios(r, periods_per_year(bar_minutes))
        mdd = max_drawdown(eq)
    else:
        fast = None
        if eq.shape[0] >= COMPILED_FROM and start > 0.0:
            fast = _compiled_after(start, eq, periods_per_year(bar_minutes))
        if fast is not None:
            shp, srt, mdd = fast
        else:
            r, scratch = _returns_after(start, eq)
            shp, srt = _ratios(r, periods_per_year(bar_minutes), scratch)
            mdd = _drawdown_after(start, eq, scratch)
    elapsed = 0.0
    if ts.size:
        # from the first bar's open to the last bar's close
        elapsed = float(ts[-1] - ts[0]) + bar_minutes * 60_000.0
        if initial_equity is None:
            elapsed -= bar_minutes * 60_000.0
    wins = pnls[pnls > 0.0]
    losses = pnls[pnls < 0.0]
    gross_loss = float(-losses.sum())
    if gross_loss > 0.0:
        pf = float(wins.sum()) / gross_loss
    else:
        pf = math.inf if wins.size else 0.0
    return Metrics(
        initial_equity=start,
        final_equity=final,
        total_return=final / start - 1.0 if start > 0.0 else 0.0,
        cagr=cagr(start, final, elapsed),
        sharpe_ratio=shp,
        sortino_ratio=srt,
        max_drawdown=mdd,
        win_rate=float(wins.size) / pnls.size if pnls.size else 0.0,
        profit_factor=pf,
        trade_count=int(pnls.size),
        exposure=float(exposure),
        fees_paid=float(fees_paid),
        bars=int(eq.size),
    )
