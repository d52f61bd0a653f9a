"""Benchmark the end-to-end data paths of `jiritsu data`: backfill, import and load a year.

1. backfill: one year of 1-minute candles from the loopback fake Bybit (HTTPS, real pybit,
   1000 bars a page, stored page by page into SQLite + the Parquet cache);
2. import: one real year from ../shared/data through the validating importer into the store;
3. load: that year back from the store, as a backtest does.
Figures, not a test: machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.fakes lives in the checkout, not in the package
DATA = ROOT / ".." / "shared" / "data"
MIN = 60_000


def _timed(label: str, fn: Callable[[], T]) -> tuple[T, float]:
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    print(f"{label:<46} {seconds:8.2f} s")
    return result, seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--year", type=int, default=2018, choices=(2017, 2018, 2019))
    args = parser.parse_args()

    from tests.fakes.bybit import FakeBybit

    from jiritsu.config import load_config
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine
    from jiritsu.market.backfill import backfill
    from jiritsu.market.importer import read_candle_file
    from jiritsu.market.store import CandleStore
    from jiritsu.market.synth import synth_candles
    from jiritsu.runtime import public_client

    work = Path(tempfile.mkdtemp(prefix="jiritsu-bench-"))
    now = int(datetime.now(timezone.utc).timestamp() * 1000) // MIN * MIN
    start = datetime.fromtimestamp((now - args.days * 1440 * MIN) / 1000, timezone.utc)
    frame = synth_candles(days=args.days + 1, seed=1, start=start)
    rows = [tuple(r) for r in frame.iter_rows()]

    with FakeBybit() as fake:
        fake.set_price_path("BTCUSDT", rows)
        env = {
            **os.environ,
            "JIRITSU_GENERAL__DATA_DIR": str(work),
            "JIRITSU_EXCHANGE__BASE_URL": fake.endpoint,
            "JIRITSU_EXCHANGE__CA_FILE": str(fake.ca_path),
        }
        loaded = load_config(ROOT / "config.toml", environ=env)
        migrate.upgrade(loaded.db_url)
        engine = make_engine(loaded.db_url)
        store = CandleStore(engine, work / "candles")
        exchange = public_client(loaded)
        result, seconds = _timed(
            f"backfill {args.days} days from the fake",
            lambda: backfill(exchange, store, "BTCUSDT", "1", days=args.days),
        )
        print(
            f"  {result.inserted:,} bars in {result.pages} pages: "
            f"{result.inserted / seconds:,.0f} bars/s, {result.pages / seconds:.1f} pages/s"
        )

    path = DATA / f"bitfinex_BTCUSD_1m_{args.year}.csv.gz"
    imported, _ = _timed(f"read + validate {path.name}", lambda: read_candle_file(path))
    stats, _ = _timed(
        "store the year (SQLite + cache)",
        lambda: store.write("BTCUSD", "1", imported.frame),
    )
    print(f"  {stats.inserted:,} bars stored")
    _timed("re-import the year (a no-op)", lambda: store.write("BTCUSD", "1", imported.frame))
    loaded_frame, _ = _timed("load the year for a backtest", lambda: store.load("BTCUSD", "1"))
    print(f"  {loaded_frame.height:,} bars loaded")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
