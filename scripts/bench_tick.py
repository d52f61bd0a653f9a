"""Tick latency of the three shipped bots, excluding the network, and the kernel's backtest speed.

    .venv/bin/python scripts/bench_tick.py [--days 3] [--cycles 300] [--no-kernel]

A *tick* is what ``jiritsu trade-tick`` does for one bot: a full sync with the exchange (fills,
open orders, position), the kernel's ``manage``, and at a bar close the rule, the snapshot, the
advisor, the decision row and ``decide``, plus any orders. Here the exchange is the paper
exchange (SQLite ledger) and the candles are pre-loaded in memory, so the figure is Jiritsu's
own cost; on Bybit add the round trips (about five requests per tick). The market-data service
resamples and computes each bot's indicators once per loaded window (its indicator cache), as
live between two top-ups.

Then: the compiled kernel (``jiritsu.strategy.inputs.run``) over one year of synthetic 1-minute
bars per bot -- the backtester's inner loop.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def bench_ticks(days: int, cycles: int) -> None:
    from jiritsu.clock import SimClock
    from jiritsu.config import load_config
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine
    from jiritsu.engine.bot import BotRunner, EngineContext
    from jiritsu.engine.snapshot import SentimentCache
    from jiritsu.exchange.journal import OrderJournal
    from jiritsu.exchange.paper import PaperExchange
    from jiritsu.market.data import MarketData
    from jiritsu.market.synth import synth_candles
    from jiritsu.runtime import paper_config

    tmp = Path(tempfile.mkdtemp(prefix="jiritsu-bench-"))
    loaded = load_config(
        REPO / "config.toml",
        environ={
            "JIRITSU_GENERAL__DATA_DIR": str(tmp),
            "JIRITSU_RISK__CRASH_MOVE_PCT": "1",
            "JIRITSU_NEWS_SENTIMENT__ENABLED": "false",
        },
    )
    migrate.upgrade(loaded.db_url)
    engine = make_engine(loaded.db_url)
    candles = synth_candles(days=days + 2, seed=42)
    start = int(candles["ts"][0]) + 2 * 86_400_000
    clock = SimClock(start)
    market = MarketData(None, clock, ["BTCUSDT"], days=None)
    market.add("BTCUSDT", candles)
    exchange = PaperExchange(engine, paper_config(loaded.settings), market, clock)
    ctx = EngineContext(
        engine=engine,
        exchange=exchange,
        journal=OrderJournal(engine, exchange, environment="paper", clock=clock),
        feed=market,
        loaded=loaded,
        notifier=None,
        environment="paper",
        sentiment=SentimentCache(engine, 24, enabled=False),
    )
    runners = [BotRunner(ctx, bot) for bot in loaded.settings.enabled_bots]
    per_bot: dict[str, list[float]] = {r.name: [] for r in runners}
    per_cycle: list[float] = []
    orders = 0
    t = start
    for _ in range(cycles):
        t += 5 * 60_000  # every 5 minutes: SubBot-C decides each time, B and A when due
        clock.advance_to(t)
        began = time.perf_counter()
        for runner in runners:
            one = time.perf_counter()
            decide = t % runner.tf_ms == 0
            report = runner.step(t, halted=False, decide=decide, fresh=True)
            per_bot[runner.name].append(time.perf_counter() - one)
            orders += len(report.orders)
        per_cycle.append(time.perf_counter() - began)
    ms = 1000.0
    print(f"tick latency, paper exchange, candles in memory ({cycles} cycles, {orders} orders)")
    for name, values in per_bot.items():
        print(
            f"  {name}: median {statistics.median(values) * ms:6.2f} ms   "
            f"p90 {_pct(values, 0.9) * ms:6.2f} ms"
        )
    print(
        f"  three bots per cycle: median {statistics.median(per_cycle) * ms:6.2f} ms   "
        f"p90 {_pct(per_cycle, 0.9) * ms:6.2f} ms"
    )
    engine.dispose()


def bench_kernel() -> None:
    from jiritsu.config import load_config
    from jiritsu.market.synth import synth_candles
    from jiritsu.strategy.inputs import prepare, run

    settings = load_config(REPO / "config.toml", environ={}).settings
    candles = synth_candles(days=365, seed=7)
    print(f"compiled kernel, one year of 1-minute bars ({candles.height} bars) per bot")
    first = True
    for bot in settings.enabled_bots:
        inputs = prepare(bot, settings, candles)
        start, end = float(inputs.ts[0]), float(inputs.ts[-1]) + 1
        began = time.perf_counter()
        run(inputs, 3000.0, start, end, compiled=True)  # the first call compiles
        if first:
            print(f"  (numba compilation on first use: {time.perf_counter() - began:.1f} s)")
            first = False
        best = min(
            _timed(lambda i=inputs, s=start, e=end: run(i, 3000.0, s, e, compiled=True))
            for _ in range(5)
        )
        result = run(inputs, 3000.0, start, end, compiled=True)
        print(f"  {bot.name}: {best * 1000:6.1f} ms   ({len(result.fills)} fills)")


def _timed(fn: object) -> float:
    began = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=300)
    parser.add_argument("--no-kernel", action="store_true")
    args = parser.parse_args()
    bench_ticks(args.days, args.cycles)
    if not args.no_kernel:
        bench_kernel()


if __name__ == "__main__":
    main()
