"""Persist backtests to ``backtest_runs`` / ``backtest_equity`` (the dashboard reads them).

The equity curve of a long 1-minute run has ~500,000 points; the dashboard draws a few
thousand, so :func:`save_run` stores at most ``max_points`` evenly spaced ones (the very first
and last included), always with their real timestamps.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.backtest.runner import BacktestResult

MAX_POINTS = 2000


def _dt(ms: int | float) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)


def thin(ts: np.ndarray, equity: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` evenly spaced points of a curve, the first and last included."""
    n = ts.shape[0]
    if n <= max_points:
        return ts, equity
    idx = np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
    return ts[idx], equity[idx]


def save_run(
    engine: Engine,
    result: BacktestResult,
    *,
    source: str = "cli",
    sample: str | None = None,
    tuning_run_id: int | None = None,
    max_points: int = MAX_POINTS,
) -> int:
    """Store one run and its (thinned) equity curve; returns the run id."""
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import BacktestEquity, BacktestRun

    m = result.metrics
    metrics = m.as_dict()
    metrics["trades_sha256"] = result.trades_sha256()
    run = BacktestRun(
        bot=result.bot,
        strategy=result.strategy,
        symbol=result.symbol,
        interval=result.timeframe,
        params=_jsonable(result.params),
        period_from=_dt(result.start_ms),
        period_to=_dt(result.end_ms),
        initial_equity=m.initial_equity,
        metrics=metrics,
        total_return=m.total_return,
        sharpe=m.sharpe_ratio,
        sortino=m.sortino_ratio,
        max_drawdown=m.max_drawdown,
        win_rate=m.win_rate,
        profit_factor=metrics["profit_factor"],
        trade_count=m.trade_count,
        trades_sha256=metrics["trades_sha256"],
        source=source,
        sample=sample,
        tuning_run_id=tuning_run_id,
    )
    # equity at each bar's CLOSE, stamped with the close time
    ts, eq = thin(result.ts + 60_000, result.equity, max_points)
    with session_scope(engine) as session:
        session.add(run)
        session.flush()
        run_id = int(run.id)
        # one executemany of plain rows: 2,000 ORM objects cost ~0.2 s to flush
        session.execute(
            sa.insert(BacktestEquity),
            [
                {"run_id": run_id, "ts": _dt(t), "equity": float(e)}
                for t, e in zip(ts.tolist(), eq.tolist(), strict=True)
            ],
        )
    return run_id


def load_run(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """A stored run as a dict with its equity points (``[(datetime, equity), ...]``)."""
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import BacktestEquity, BacktestRun

    with session_scope(engine) as session:
        run = session.get(BacktestRun, run_id)
        if run is None:
            return None
        points = session.execute(
            sa.select(BacktestEquity.ts, BacktestEquity.equity)
            .where(BacktestEquity.run_id == run_id)
            .order_by(BacktestEquity.ts)
        ).all()
        return {
            "id": run.id,
            "bot": run.bot,
            "params": run.params,
            "period_from": run.period_from,
            "period_to": run.period_to,
            "metrics": run.metrics,
            "source": run.source,
            "sample": run.sample,
            "tuning_run_id": run.tuning_run_id,
            "trade_count": run.trade_count,
            "equity": [(p[0], float(p[1])) for p in points],
        }


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    from decimal import Decimal

    return {k: (float(v) if isinstance(v, Decimal) else v) for k, v in params.items()}
