"""Benchmark ``jiritsu simulate`` on real 1-minute bars (../shared/data), printing figures.

The year's candles (and the year before, for the bots' warm-up and the tuner) are imported into
a candle store, then the whole system (three bots, breakers, snapshots, rebalancing, profit
saving, monthly tuning) is simulated month by month in one run; printed: wall and CPU time per
simulated month (CPU includes the tuner's worker processes), a per-job profile (runs, wall, CPU,
milliseconds per run) and the machine's load before and after (the figures are only comparable
at similar loads). Target: a year in at most 5 minutes on the 2-core machine (figures, not a
test: machines are noisy).

    python scripts/bench_simulate.py --year 2019 [--months 12] [--no-tune] [--store DIR]

``--store DIR`` keeps the imported candles in DIR for the next run (default: a temporary
directory, removed at the end).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".." / "shared" / "data"


def load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2019, choices=(2018, 2019))
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--no-tune", action="store_true")
    parser.add_argument("--store", type=Path, default=None, help="keep the candles here")
    args = parser.parse_args()

    from jiritsu.config import load_config
    from jiritsu.db.migrate import open_database
    from jiritsu.market.importer import read_candle_file
    from jiritsu.market.store import CandleStore, cache_root
    from jiritsu.simulate import SimOptions, cpu_seconds, run_simulation
    from jiritsu.simulate.summary import job_profile, summarize

    tmp = args.store or Path(tempfile.mkdtemp(prefix="jiritsu-bench-sim-"))
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["JIRITSU_GENERAL__DATA_DIR"] = str(tmp.resolve())
    os.environ["JIRITSU_NEWS_SENTIMENT__ENABLED"] = "false"
    loaded = load_config(ROOT / "config.toml")
    symbol = loaded.settings.master_bot.index_symbol
    started = time.monotonic()
    with open_database(loaded) as engine:
        store = CandleStore(engine, cache_root(tmp))
        for year in sorted({args.year - 1, args.year}):
            end = int(datetime(year + 1, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
            newest = store.newest_ts(symbol, ("1",), end)
            if newest is not None and newest >= end - 86_400_000:
                continue  # imported by an earlier run into --store
            path = DATA / f"bitfinex_BTCUSD_1m_{year}.csv.gz"
            store.write(symbol, "1", read_candle_file(path).frame)
    print(f"import: {time.monotonic() - started:.1f} s; {load()}")

    start = datetime(args.year, 1, 1, tzinfo=timezone.utc)
    stops = [datetime(args.year + (m // 12), m % 12 + 1, 1, tzinfo=timezone.utc)
             for m in range(1, args.months + 1)]  # fmt: skip
    marks: list[tuple[int, float, float]] = []
    t0, c0 = time.monotonic(), cpu_seconds()
    bounds = iter(int(s.timestamp() * 1000) for s in stops)
    nxt = [next(bounds)]

    def progress(t: int) -> None:
        while nxt[0] is not None and t >= nxt[0]:
            marks.append((nxt[0], time.monotonic() - t0, cpu_seconds() - c0))
            nxt[0] = next(bounds, None)

    opts = SimOptions(
        int(start.timestamp() * 1000), int(stops[-1].timestamp() * 1000), tmp / "sim",
        tune=not args.no_tune, progress=progress,
    )  # fmt: skip
    try:
        run = run_simulation(loaded, opts)
        doc = summarize(run)
    finally:
        if args.store is None:
            shutil.rmtree(tmp, ignore_errors=True)
    prev_wall = prev_cpu = 0.0
    print("month     wall s   CPU s")
    for t, wall, cpu in marks:
        month = datetime.fromtimestamp(t / 1000 - 1, tz=timezone.utc)
        print(f"{month:%Y-%m}: {wall - prev_wall:7.1f} {cpu - prev_cpu:7.1f}")
        prev_wall, prev_cpu = wall, cpu
    print(f"whole run: {run.wall_seconds:.1f} s wall, {cpu_seconds() - c0:.1f} s CPU "
          f"(set-up {run.setup_seconds:.1f} s); {load()}")  # fmt: skip
    print(f"  {'job':45s} {'runs':>5s} {'wall s':>8s} {'CPU s':>8s} {'ms/run':>8s}")
    for job, p in sorted(job_profile(run).items(), key=lambda kv: -kv[1]["seconds"]):
        runs = int(p["runs"])
        print(f"  {job:45s} {runs:5d} {p['seconds']:8.1f} {p['cpu']:8.1f} "
              f"{1000 * p['seconds'] / max(runs, 1):8.1f}")  # fmt: skip
    if run.ahead is not None:
        stopped = f"; in-process after: {run.ahead.stopped}" if run.ahead.stopped else ""
        print(f"  tunings computed ahead by the worker process: {run.ahead.taken} "
              f"({run.ahead.cpu:.1f} s CPU on the other core{stopped})")  # fmt: skip
    print(f"return {doc['total_return']:+.2%}, buy and hold {doc['buy_and_hold_return']:+.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
