"""The example user strategy (examples/strategies/macd_trend.py) behaves the same in a backtest,
a tuning grid, ``trade-loop --replay`` and a live ``trade-tick`` on the loopback Bybit fake."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from jiritsu.backtest.runner import CandleArrays, build_inputs, run_bot
from jiritsu.db.engine import make_engine
from jiritsu.engine.loop import LoopOptions, run_loop
from jiritsu.market.frames import resample, to_numpy
from jiritsu.market.synth import synth_candles
from jiritsu.strategy.contract import ACTION_NAMES, Bars, checked_signals
from jiritsu.strategy.registry import resolve
from jiritsu.tune.grid import GridJob, run_grid
from tests.conftest import REPO
from tests.engine.conftest import load, store_candles
from tests.exchange.bybit_env import BOTS, KEYS, UIDS
from tests.fakes.bybit import FakeBybit
from tests.processes import fake_bybit_env, jiritsu_env, run_jiritsu

DAY = 86_400_000
MIN = 60_000
EXAMPLE = REPO / "examples" / "strategies" / "macd_trend.py"


def strategies_dir(root: Path) -> Path:
    path = root / "user-strategies"
    path.mkdir(parents=True)
    shutil.copy(EXAMPLE, path)
    return path


def bot_env(bot: str, where: Path, **params: object) -> dict[str, str]:
    stem = f"JIRITSU_SUB_BOTS__{bot.upper().replace('-', '_')}__STRATEGY_PARAMS__"
    env = {"JIRITSU_STRATEGIES__PATHS": f'["{where}"]', stem + "RULE": "macd_trend"}
    env.update({stem + k.upper(): str(v) for k, v in params.items()})
    return env


def reference(settings, bot_name: str, candles) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    """The strategy's decisions over the bot's bars, computed directly from the contract."""
    bot = settings.bot(bot_name)
    strategy, params = resolve(settings, bot)
    bars = Bars.from_columns(to_numpy(resample(candles, bot.timeframe)))
    action, _ = checked_signals(strategy, bars, params)
    return bars.ts.astype(np.int64), action


def test_backtest_grid_and_replay_decide_alike(isolated_env: Path) -> None:
    where = strategies_dir(isolated_env.parent)
    env = bot_env("SubBot-B", where, fast=8, slow=21, signal=5, trend=50)
    env["JIRITSU_SUB_BOTS__SUBBOT_B__DYNAMIC_SIZING__ATR_PERIOD"] = "10"
    loaded = load(isolated_env, env)
    settings = loaded.settings
    candles = synth_candles(days=7, seed=42)
    store_candles(loaded, candles)
    first = int(candles["ts"][0])
    start, end = first + 2 * DAY, first + 7 * DAY
    ts, action = reference(settings, "SubBot-B", candles)
    period = (ts + 15 * MIN >= start) & (ts + 15 * MIN < end)
    assert (action[period] == 1).sum() >= 3  # the strategy does fire in the period

    # backtest: the kernel reads exactly these decisions
    data = CandleArrays("BTCUSDT", candles)
    inputs = build_inputs(settings, "SubBot-B", data)
    assert np.array_equal(inputs.sig, action.astype(np.float64))
    bt = run_bot(settings, "SubBot-B", data, start, end + 1)
    assert bt.strategy == "macd_trend"
    assert bt.metrics.trade_count >= 1

    # a tuning grid (forked workers) runs the same strategy: the current value scores the same
    key = "SubBot-B.strategy_params.fast"
    job = GridJob(settings, "SubBot-B", data, start, end + 1)
    found = run_grid(job, [{key: 8}, {key: 5}], workers=2)
    assert found[0].metrics == bt.metrics
    assert found[1].metrics != bt.metrics

    # trade-loop --replay records a decision per bar, each the strategy's own
    result = run_loop(loaded, LoopOptions(replay=(start, end), install_signals=False))
    assert result.exit_code == 0
    engine = make_engine(loaded.db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "select bar_ts, action, reason from decisions where bot = 'SubBot-B' "
                "order by id"
            )).all()  # fmt: skip
            fills = conn.execute(sa.text(
                "select exec_ms, side, qty from paper_fills where account = 'SubBot-B' "
                "order by exec_ms, id"
            )).all()  # fmt: skip
    finally:
        engine.dispose()
    by_bar = dict(zip(ts.tolist(), action.tolist(), strict=True))
    decided = [(_ms(r[0]), r[1]) for r in rows if r[1] in ("BUY", "SELL", "HOLD")]
    assert len(decided) > 100
    assert [a for _, a in decided] == [ACTION_NAMES[by_bar[t]] for t, _ in decided]
    assert any(r[2].startswith("macd_trend BUY") for r in rows)
    sign = {"Buy": 1, "Sell": -1}
    replayed = [(int(f[0]), sign[f[1]], round(float(f[2]), 6)) for f in fills]
    backtested = [(int(f[0]), int(f[1]), round(float(f[2]), 6)) for f in bt.fills]
    assert replayed == backtested


def _ms(value) -> int:  # type: ignore[no-untyped-def]
    if isinstance(value, str):
        from datetime import datetime

        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() * 1000)


def zigzag(now_ms: int) -> list[tuple[int, float, float, float, float, int]]:
    """1-minute rows from 3 h ago to 1 h ahead: a drift up with alternating bars, so MACD(2, 3)
    crosses its signal on every bar (BUY on the up bars above the trend, SELL on the down)."""
    start = (now_ms // MIN) * MIN - 180 * MIN
    rows = []
    for i in range(240):
        c = 40000.0 + 3 * i + (12 if i % 2 else -12)
        o = 40000.0 + 3 * (i - 1) + (12 if (i - 1) % 2 else -12)
        rows.append((start + i * MIN, o, max(o, c) + 2, min(o, c) - 2, c, 2))
    return rows


@pytest.fixture
def fake() -> Iterator[tuple[FakeBybit, list[tuple]]]:
    rows = zigzag(int(time.time() * 1000))
    with FakeBybit() as server:  # the market clock follows real time
        server.add_account("main", UIDS["main"], *KEYS["main"], usdt=10000, master=True)
        for bot in BOTS:
            server.add_account(bot, UIDS[bot], *KEYS[bot], usdt=Decimal(1000))
        server.set_price_path("BTCUSDT", rows)
        yield server, rows
        assert server.internal_errors == []


def test_a_live_tick_on_the_bybit_fake_decides_what_the_strategy_says(
    fake: tuple[FakeBybit, list[tuple]], isolated_env: Path
) -> None:
    fake, path = fake
    where = strategies_dir(isolated_env.parent)
    env = jiritsu_env(isolated_env, fake_bybit_env(fake), {
        "JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS": "5",
        "JIRITSU_NEWS_SENTIMENT__ENABLED": "false",
        "JIRITSU_RISK__CRASH_MOVE_PCT": "1",
        "JIRITSU_SUB_BOTS__SUBBOT_C__TIMEFRAME": "1",
        "JIRITSU_SUB_BOTS__SUBBOT_C__ADVISOR": "rules",
        **bot_env("SubBot-C", where, fast=2, slow=3, signal=2, trend=10),
    })  # fmt: skip
    run = run_jiritsu(["db", "upgrade"], env)
    assert run.returncode == 0, run.stderr
    tick = run_jiritsu(["trade-tick", "--bot", "SubBot-C"], env)
    assert tick.returncode == 0, tick.stdout + tick.stderr
    engine = make_engine(f"sqlite:///{isolated_env / 'jiritsu.db'}")
    try:
        with engine.connect() as conn:
            (bar_ts, action, reason), *_ = conn.execute(sa.text(
                "select bar_ts, action, reason from decisions where bot = 'SubBot-C'"
            )).all()  # fmt: skip
    finally:
        engine.dispose()
    # what the strategy says about that bar from the bars up to it (the fake's rows)
    rows = [r for r in path if r[0] <= _ms(bar_ts)]
    cols = {k: np.array([r[i] for r in rows], dtype=np.float64)
            for i, k in enumerate(("ts", "open", "high", "low", "close", "volume"))}  # fmt: skip
    settings = load(isolated_env, {k: v for k, v in env.items() if k.startswith("JIRITSU_S")})
    strategy, params = resolve(settings.settings, settings.settings.bot("SubBot-C"))
    bars = Bars.from_columns(cols)
    expected, _ = checked_signals(strategy, bars, params)
    assert expected[-1] != 0  # the path makes every bar a decision
    assert action == ACTION_NAMES[int(expected[-1])]
    assert reason == strategy.explain(bars, params, len(bars) - 1)
