"""Count the two-week windows of 2018 in which replay and the backtest kernel fill identically.

For each of the 25 two-week windows of the real 2018 candles (../shared/data) and each default
bot: `trade-loop --replay` (the live code on the paper exchange) against the kernel the
backtester runs, over the same candles, with the settings of tests/engine/real_parity.py (the
shipped bots, global breakers off, the loss-streak breaker on with a two-hour cool-down). A
window counts as identical for a bot when every fill agrees in time, side, quantity, price and
fee (to 1e-8). Prints one line per window and the totals per bot.
Figures, not a test: a full run takes about half an hour on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.engine.real_parity lives in the checkout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", default="0-24", help="window numbers, e.g. 0-24 or 5,13,22")
    args = parser.parse_args()
    wanted: list[int] = []
    for part in args.windows.split(","):
        lo, _, hi = part.partition("-")
        wanted.extend(range(int(lo), int(hi or lo) + 1))

    for key in list(os.environ):
        if key.startswith("JIRITSU_"):
            del os.environ[key]
    from tests.engine.real_parity import run_window, window_start

    from jiritsu.clock import from_ms

    same: dict[str, int] = {}
    started = time.perf_counter()
    for i in wanted:
        data = Path(tempfile.mkdtemp(prefix="jiritsu-parity-")) / "data"
        os.environ["JIRITSU_GENERAL__DATA_DIR"] = str(data)
        result = run_window(data, window_start(i))
        cells = []
        for bot in result.replay:
            first = result.differs(bot)
            ok = first is False
            same[bot] = same.get(bot, 0) + int(ok)
            n = len(result.replay[bot])
            where = "" if ok else f" first {from_ms(first[0]):%m-%d %H:%M}" if first else " count"
            cells.append(f"{bot} {'same' if ok else 'DIFF'} ({n} fills{where})")
        print(f"{i:2d} {from_ms(result.start):%Y-%m-%d}  " + "; ".join(cells), flush=True)
    print(f"identical windows of {len(wanted)}: " + ", ".join(f"{b} {n}" for b, n in same.items()))
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
