"""Benchmark the backtester on one real year of 1-minute bars (../shared/data), printing figures.

Steps (figures, not a test: machines are noisy, and shared ones more so -- run it when the
machine is quiet and repeat):

1. compile (or load from the numba disk cache) the strategy kernel;
2. one year (~520,000 bars), SubBot-B (linear, 15-minute bars, dynamic sizing, 3 split legs,
   TP/SL): best of N runs once compiled, and the peak RSS -- target < 0.15 s, < 500 MB;
3. the plain EMA cross, long only, on the 1-minute bars (sizing, split entries and TP/SL off,
   fee 0.055 %, no slippage): one warm run, best of N -- target <= 0.04 s;
4. that cross's 100-combination grid (fast_period 10..100 step 10 x slow_period 120..300
   step 20) over the year on all local cores -- target <= 2 s, peak memory < 1 GB;
5. the default tuning grid (``optimizer.param_ranges``, every bot it names) over six months on
   all local cores -- target <= 5 s;
6. a cold ``jiritsu backtest`` process over the year (candles stored in a temporary SQLite
   database first; compile cache warm) -- target < 3 s in total.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".." / "shared" / "data"


def _rss_mib(children: bool = False) -> float:
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds of this process and its finished workers (wall time lies on a busy box)."""
    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def plain_cross(settings: Any) -> Any:
    """SubBot-B as the plain EMA cross of the comparison: 1-minute bars, long only, every
    signal taken (min_confidence 0, no loss-streak pause), fixed lot, no split, no TP/SL,
    fee 0.055 % both ways, no slippage."""
    from jiritsu.config.settings import Settings

    data = settings.model_dump(mode="python")
    bot = next(b for b in data["sub_bots"] if b["name"] == "SubBot-B")
    bot.update(timeframe="1", allow_short=False)
    bot["dynamic_sizing"]["enabled"] = False
    bot["split_entry"]["enabled"] = False
    bot["strategy_params"].update(rule="ema_cross", tp_sl_enabled=False, min_confidence=0)
    data["risk"]["max_consecutive_losses"] = 10**9
    data["exchange"].update(taker_fee="0.00055", maker_fee="0.00055", slippage_bps="0")
    return Settings.model_validate(data)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2018, choices=(2017, 2018, 2019))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-cli", action="store_true", help="skip step 4")
    args = parser.parse_args()

    from jiritsu.backtest.runner import CandleArrays, kernels, run_bot
    from jiritsu.config.settings import Settings
    from jiritsu.market.importer import read_candle_file
    from jiritsu.tune.grid import GridJob, expand, parse_grid, run_grid

    path = DATA / f"bitfinex_BTCUSD_1m_{args.year}.csv.gz"
    frame = read_candle_file(path).frame
    print(f"data: {path.name}: {frame.height:,} bars")
    settings = Settings()
    data = CandleArrays("BTCUSDT", frame)

    t0 = time.perf_counter()
    kernels()
    print(f"kernel compile / cache load       {time.perf_counter() - t0:8.3f} s")

    t0 = time.perf_counter()
    first = run_bot(settings, "SubBot-B", data)
    print(f"first run (resample + indicators) {time.perf_counter() - t0:8.3f} s")
    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        result = run_bot(settings, "SubBot-B", data)
        best = min(best, time.perf_counter() - t0)
    m = result.metrics
    print(
        f"one year, SubBot-B, best of {args.repeat}     {best:8.3f} s  ({m.bars:,} bars, "
        f"{m.trade_count} trades, {len(result.fills)} fills, return {m.total_return:+.2%})"
    )
    assert result.trades_sha256() == first.trades_sha256()
    print(f"peak RSS so far                   {_rss_mib():8.1f} MiB")

    plain = plain_cross(settings)
    run_bot(plain, "SubBot-B", data)  # signals and indicators memoised, as in a grid
    best = cpu = float("inf")
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), _cpu_s()
        result = run_bot(plain, "SubBot-B", data)
        best, cpu = min(best, time.perf_counter() - t0), min(cpu, _cpu_s() - c0)
    m = result.metrics
    print(
        f"plain EMA cross 1m, best of {args.repeat}      {best:8.3f} s  (CPU {cpu:.3f} s; "
        f"{m.trade_count} trades, return {m.total_return:+.2%})"
    )

    names = [b.name for b in settings.sub_bots]
    cross = parse_grid(
        ["fast_period=10:100:10", "slow_period=120:300:20"], "SubBot-B", names, plain
    )
    cands = expand(cross)
    job = GridJob(plain, "SubBot-B", CandleArrays("BTCUSDT", frame), int(data.ts[0]),
                  data.span()[1])  # fmt: skip
    t0, c0 = time.perf_counter(), _cpu_s()
    found = run_grid(job, cands, workers=0)
    grid_s = time.perf_counter() - t0
    print(
        f"cross grid {len(cands)} runs, 1 year, {os.cpu_count()} cores {grid_s:8.3f} s  "
        f"(CPU {_cpu_s() - c0:.2f} s in all)"
    )
    assert all(c.metrics is not None for c in found)
    print(f"peak RSS (this process / a worker)  {_rss_mib():8.1f} / {_rss_mib(True):.1f} MiB")

    from jiritsu.tune import bots_to_tune

    half = frame.filter(frame["ts"] < frame["ts"][0] + 182 * 86_400_000)
    six = CandleArrays("BTCUSDT", half)
    runs = 0
    t0, c0 = time.perf_counter(), _cpu_s()
    for bot, grid in bots_to_tune(settings).items():
        cands = expand(grid)
        job = GridJob(settings, bot, six, int(six.ts[0]), six.span()[1])
        found = run_grid(job, cands, workers=0)
        runs += len(cands)
        assert all(c.metrics is not None for c in found)
    print(
        f"default tuning grid, {runs} runs, six months {time.perf_counter() - t0:8.3f} s  "
        f"(CPU {_cpu_s() - c0:.2f} s; {len(bots_to_tune(settings))} bot(s), "
        f"{six.ts.shape[0]:,} bars each)"
    )
    print(f"peak RSS (this process / a worker)  {_rss_mib():8.1f} / {_rss_mib(True):.1f} MiB")

    if not args.skip_cli:
        _cold_cli(frame)
    return 0


def _cold_cli(frame: object) -> None:
    from jiritsu.db.engine import make_engine
    from jiritsu.db.migrate import upgrade
    from jiritsu.market.store import CandleStore, cache_root

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        data_dir.mkdir()
        url = f"sqlite:///{data_dir}/jiritsu.db"
        upgrade(url)
        engine = make_engine(url)
        t0 = time.perf_counter()
        CandleStore(engine, cache_root(data_dir)).write("BTCUSDT", "1", frame)
        print(f"(storing the year for the CLI     {time.perf_counter() - t0:8.3f} s)")
        engine.dispose()
        # an installed package has its bytecode compiled; let this run write it too
        env = {k: v for k, v in os.environ.items() if not k.startswith("JIRITSU_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["JIRITSU_GENERAL__DATA_DIR"] = str(data_dir)
        env["JIRITSU_CONFIG"] = str(ROOT / "config.toml")
        cmd = [str(ROOT / ".venv" / "bin" / "jiritsu"), "backtest", "--bot", "SubBot-B", "--json"]
        for label in ("cold CLI (first: cache warm-up)", "cold `jiritsu backtest`, 1 year"):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
            print(f"{label:<34}{wall:8.3f} s  (exit {done.returncode})")


if __name__ == "__main__":
    sys.exit(main())
