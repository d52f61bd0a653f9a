"""Benchmark the market-data library on one real year of 1-minute bars.

Imports ../shared/data/bitfinex_BTCUSD_1m_<year>.csv.gz (validated, as `jiritsu data import`
does), writes it to a candle cache in a temporary directory, re-writes it (a no-op), loads the
year back, and prints rows, seconds, rows/s and the peak RSS after each step. Figures, not a test:
machines are noisy. The target for a cache load of one year is well under a second.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".." / "shared" / "data"


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux (bytes on macOS)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _report(step: str, rows: int, seconds: float) -> None:
    rate = rows / seconds if seconds > 0 else float("inf")
    print(
        f"{step:<28} {rows:>9,} rows {seconds:>8.3f} s {rate:>13,.0f} rows/s "
        f"peak RSS {_peak_rss_mib():>7.1f} MiB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2018, choices=(2017, 2018, 2019))
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each step")
    args = parser.parse_args()

    source = (DATA / f"bitfinex_BTCUSD_1m_{args.year}.csv.gz").resolve()
    if not source.exists():
        print(f"missing {source} (shared/ must sit beside the repository)", file=sys.stderr)
        return 1

    start = time.perf_counter()
    from jiritsu.market.cache import CandleCache
    from jiritsu.market.frames import resample, to_numpy
    from jiritsu.market.gaps import GapReport
    from jiritsu.market.importer import read_candle_file
    from jiritsu.market.synth import DEFAULT_SEED, synth_candles

    _report("import library (polars)", 0, time.perf_counter() - start)
    print(f"source: {source}")

    def best(step: str, fn, rows_of) -> object:
        times, result = [], None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - t0)
        _report(step, rows_of(result), min(times))
        return result

    result = best(
        "import csv.gz (validated)", lambda: read_candle_file(source), lambda r: r.frame.height
    )
    frame = result.frame
    report = best(
        "gap report", lambda: GapReport.from_ts(frame["ts"], 60_000), lambda _: frame.height
    )
    print(f"  {report.summary()}")

    y0 = int(datetime(args.year, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    y1 = int(datetime(args.year + 1, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    with tempfile.TemporaryDirectory(prefix="jiritsu-bench-") as tmp:
        cache = CandleCache(Path(tmp))
        t0 = time.perf_counter()
        written = cache.write("BTCUSD", "1", frame)
        _report("cache write (new)", written, time.perf_counter() - t0)
        best(
            "cache re-write (no-op)",
            lambda: cache.write("BTCUSD", "1", frame),
            lambda _: frame.height,
        )
        loaded = best(
            "cache load one year", lambda: cache.load("BTCUSD", "1", y0, y1), lambda f: f.height
        )
        best(
            "cache load + to_numpy",
            lambda: to_numpy(cache.load("BTCUSD", "1")),
            lambda a: a["ts"].size,
        )
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*.parquet"))
        same = loaded.equals(frame)
        print(f"  cache size on disk: {size / 2**20:.1f} MiB; round trip equal: {same}")
    best("resample to 60", lambda: resample(frame, "60"), lambda f: f.height)
    best(
        "synth 30 days 1m",
        lambda: synth_candles(days=30, seed=DEFAULT_SEED),
        lambda f: f.height,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
