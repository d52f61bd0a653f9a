"""No lookahead: changing candles after t never changes what was decided or filled up to t."""

from __future__ import annotations

import numpy as np

from jiritsu.backtest.runner import CandleArrays, run_bot
from jiritsu.config.settings import Settings
from jiritsu.market.synth import synth_candles


def test_changing_the_future_never_changes_the_past() -> None:
    import polars as pl

    settings = Settings()
    frame = synth_candles(days=12, seed=7)
    cut = int(frame["ts"][frame.height * 2 // 3])
    rng = np.random.default_rng(1)
    factor = np.where(frame["ts"].to_numpy() > cut, rng.uniform(0.8, 1.25, frame.height), 1.0)
    changed = frame.with_columns(
        *(pl.col(c) * pl.Series(factor) for c in ("open", "high", "low", "close"))
    )
    for bot in ("SubBot-A", "SubBot-B", "SubBot-C"):
        a = run_bot(settings, bot, CandleArrays("BTCUSDT", frame))
        b = run_bot(settings, bot, CandleArrays("BTCUSDT", changed))
        # fills up to t = cut (bar opens < cut+1min used only bars <= cut) are identical
        fa = a.fills[a.fills[:, 0] <= cut]
        fb = b.fills[b.fills[:, 0] <= cut]
        assert np.array_equal(fa, fb), bot
        upto = a.ts <= cut
        assert np.array_equal(a.equity[upto], b.equity[upto]), bot
        # ... while the future did change what happened after it
        assert a.actions != b.actions or not np.array_equal(a.fills, b.fills), bot
