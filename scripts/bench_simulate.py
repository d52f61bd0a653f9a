"""Benchmark ``jiritsu simulate`` on real 1-minute bars (../shared/data), printing figures.

The year's candles are imported into a temporary store, then the whole system (three bots,
breakers, snapshots, rebalancing, profit saving, monthly tuning) is simulated month by month
in one run; printed: wall time per simulated month and a per-job profile. Target: a year in
at most 5 minutes on the 2-core machine (figures, not a test: machines are noisy).

    python scripts/bench_simulate.py --year 2019 [--months 12] [--no-tune]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".." / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2019, choices=(2018, 2019))
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--no-tune", action="store_true")
    args = parser.parse_args()

    from jiritsu.config import load_config
    from jiritsu.db.migrate import open_database
    from jiritsu.market.importer import read_candle_file
    from jiritsu.market.store import CandleStore, cache_root
    from jiritsu.simulate import SimOptions, run_simulation
    from jiritsu.simulate.summary import job_profile, summarize

    tmp = Path(tempfile.mkdtemp(prefix="jiritsu-bench-sim-"))
    os.environ["JIRITSU_GENERAL__DATA_DIR"] = str(tmp)
    os.environ["JIRITSU_NEWS_SENTIMENT__ENABLED"] = "false"
    loaded = load_config(ROOT / "config.toml")
    started = time.monotonic()
    with open_database(loaded) as engine:
        store = CandleStore(engine, cache_root(tmp))
        for year in sorted({args.year - 1, args.year}):
            path = DATA / f"bitfinex_BTCUSD_1m_{year}.csv.gz"
            store.write(loaded.settings.master_bot.index_symbol, "1", read_candle_file(path).frame)
    print(f"import: {time.monotonic() - started:.1f} s")

    start = datetime(args.year, 1, 1, tzinfo=timezone.utc)
    stops = [datetime(args.year + (m // 12), m % 12 + 1, 1, tzinfo=timezone.utc)
             for m in range(1, args.months + 1)]  # fmt: skip
    marks: list[tuple[int, float]] = []
    t0 = time.monotonic()
    bounds = iter(int(s.timestamp() * 1000) for s in stops)
    nxt = [next(bounds)]

    def progress(t: int) -> None:
        while nxt[0] is not None and t >= nxt[0]:
            marks.append((nxt[0], time.monotonic() - t0))
            nxt[0] = next(bounds, None)

    opts = SimOptions(
        int(start.timestamp() * 1000), int(stops[-1].timestamp() * 1000), tmp / "sim",
        tune=not args.no_tune, progress=progress,
    )  # fmt: skip
    run = run_simulation(loaded, opts)
    doc = summarize(run)
    prev = 0.0
    for t, wall in marks:
        month = datetime.fromtimestamp(t / 1000 - 1, tz=timezone.utc)
        print(f"{month:%Y-%m}: {wall - prev:6.1f} s")
        prev = wall
    print(f"whole run: {run.wall_seconds:.1f} s (set-up {run.setup_seconds:.1f} s)")
    for job, p in sorted(job_profile(run).items(), key=lambda kv: -kv[1]["seconds"]):
        print(f"  {job:45s} {int(p['runs']):5d} runs {p['seconds']:8.1f} s")
    print(f"return {doc['total_return']:+.2%}, buy and hold {doc['buy_and_hold_return']:+.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
