"""The backtester is the live code: its inputs are ``strategy.inputs.prepare``'s, and a
``trade-loop --replay`` on the paper exchange makes the same trades as ``run_bot``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from jiritsu.backtest.runner import CandleArrays, build_inputs, run_bot
from jiritsu.config.settings import Settings
from jiritsu.db.engine import make_engine
from jiritsu.engine.loop import LoopOptions, run_loop
from jiritsu.market.synth import synth_candles
from jiritsu.strategy.inputs import prepare
from tests.engine.conftest import load, store_candles

DAY = 86_400_000


@pytest.mark.parametrize("bot", ["SubBot-A", "SubBot-B", "SubBot-C"])
def test_inputs_are_those_of_prepare(bot: str) -> None:
    settings = Settings()
    candles = synth_candles(days=4, seed=5)
    mine = build_inputs(settings, bot, CandleArrays("BTCUSDT", candles))
    ref = prepare(settings.bot(bot), settings, candles)
    for name in ("ts", "open", "high", "low", "close", "vol", "tf_ts", "tf_close_ms",
                 "tf_close", "tf_atr", "sig", "conf", "params"):  # fmt: skip
        assert np.array_equal(getattr(mine, name), getattr(ref, name), equal_nan=True), name


def test_replay_and_backtest_make_the_same_trades(isolated_env: Path) -> None:
    env = {
        "JIRITSU_SUB_BOTS__SUBBOT_A__TIMEFRAME": "15",
        "JIRITSU_RISK__COOLDOWN_MINUTES": "120",
        "JIRITSU_RISK__CRASH_COOLDOWN_MINUTES": "120",
    }
    loaded = load(isolated_env, env)
    candles = synth_candles(days=6, seed=42)
    store_candles(loaded, candles)
    first = int(candles["ts"][0])
    start, end = first + 2 * DAY, first + 6 * DAY
    result = run_loop(loaded, LoopOptions(replay=(start, end), install_signals=False))
    assert result.exit_code == 0
    engine = make_engine(loaded.db_url)
    data = CandleArrays("BTCUSDT", candles)
    sign = {"Buy": 1, "Sell": -1}
    traded = 0
    try:
        for bot in loaded.settings.enabled_bots:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "select exec_ms, side, qty, price from paper_fills where account = :a "
                        "order by exec_ms, id"
                    ),
                    {"a": bot.name},
                ).all()
            replay = [(int(r[0]), sign[r[1]], float(r[2]), float(r[3])) for r in rows]
            bt = run_bot(loaded.settings, bot.name, data, start, end + 1)
            mine = [(int(f[0]), int(f[1]), float(f[2]), float(f[3])) for f in bt.fills]
            assert [r[:2] for r in replay] == [m[:2] for m in mine], bot.name
            # the paper exchange keeps Decimals quantized to 1e-8
            assert [r[2] for r in replay] == pytest.approx([m[2] for m in mine], abs=1e-8)
            assert [r[3] for r in replay] == pytest.approx([m[3] for m in mine], abs=1e-6)
            traded += len(mine)
        assert traded > 0
    finally:
        engine.dispose()
