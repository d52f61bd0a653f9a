"""The backtester: a bot's real strategy kernel over stored candles, compiled (see runner)."""

from __future__ import annotations

from jiritsu.backtest.metrics import Metrics, compute_metrics
from jiritsu.backtest.runner import BacktestResult, CandleArrays, run_bot

__all__ = ["BacktestResult", "CandleArrays", "Metrics", "compute_metrics", "run_bot"]
