"""The backtester halts the portfolio where ``trade-loop --replay`` does, on real candles.

2018-02-01 .. 02-15 (the real Bitfinex minutes, ../shared/data): BTC moved more than 8 % within
an hour five times; with the equity limits tightened (drawdown 0.2 %, daily loss 0.1 %: the
bots' real moves are small) and a two-hour cool-down, the crash, drawdown and daily-loss
breakers all trip, in turn, at 13 minutes. The replay (the live code on the paper exchange) and
the backtest of each bot with the rest of the portfolio (:mod:`jiritsu.backtest.portfolio`) must
name the same trips at the same minutes and fill identically to the end of the window. The
first trip, 02-02 13:49, is at no bot's bar close: before the replay woke for the crash rule it
only looked at the loop's steps and found the first crash at 02-05 20:50, while the live loop
(awake every minute) trips at 13:49.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from tests.engine.real_parity import (
    DAY,
    WARMUP_DAYS,
    _kernel_fills,
    _replay_fills,
    candles_2018,
)

START = int(datetime(2018, 2, 1, tzinfo=timezone.utc).timestamp() * 1000)
END = START + 14 * DAY
ENV = {
    "JIRITSU_RISK__CRASH_MOVE_PCT": "0.08",
    "JIRITSU_RISK__MAX_DRAWDOWN_PCT": "0.002",
    "JIRITSU_RISK__DAILY_LOSS_PCT": "0.001",
    "JIRITSU_RISK__COOLDOWN_MINUTES": "120",
    "JIRITSU_RISK__CRASH_COOLDOWN_MINUTES": "120",
    **{f"JIRITSU_SUB_BOTS__{i}__SIZING": "risk" for i in range(3)},
}


@pytest.mark.slow
def test_replay_and_backtest_halt_at_the_same_minutes_and_fill_alike(isolated_env: Path) -> None:
    from jiritsu.backtest.portfolio import Portfolio
    from jiritsu.backtest.runner import CandleArrays, run_bot
    from jiritsu.clock import from_ms
    from jiritsu.db.engine import make_engine
    from jiritsu.engine.loop import LoopOptions, run_loop
    from tests.engine.conftest import load, store_candles

    candles = candles_2018().filter(
        (pl.col("ts") >= START - WARMUP_DAYS * DAY) & (pl.col("ts") <= END + 60_000)
    )
    loaded = load(isolated_env, ENV)
    store_candles(loaded, candles)
    replay = run_loop(loaded, LoopOptions(replay=(START, END), install_signals=False))
    assert replay.exit_code == 0
    halted = [t for t in replay.trips if t.split()[-1] in ("crash", "drawdown", "daily_loss")]

    settings = loaded.settings
    data = CandleArrays("BTCUSDT", candles)
    portfolio = Portfolio(settings, {b.name: data for b in settings.enabled_bots}, data)
    engine = make_engine(loaded.db_url)
    try:
        for bot in settings.enabled_bots:
            result = portfolio.run(settings, bot.name, data, START, END + 1)
            found = [f"{from_ms(h.time):%Y-%m-%d %H:%M} {h.breaker}" for h in result.halts]
            assert found == halted, bot.name
            live = _replay_fills(engine, bot.name)
            assert len(live) >= 4
            assert _kernel_fills(result) == live, bot.name
            if bot.name == "SubBot-B":  # without the breakers the backtest trades otherwise
                alone = run_bot(settings, bot.name, data, START, END + 1)
                assert _kernel_fills(alone) != live
    finally:
        engine.dispose()
    assert len(halted) == 13
    assert halted[1] == "2018-02-02 13:49 crash"
    assert {t.split()[-1] for t in halted} == {"crash", "drawdown", "daily_loss"}
