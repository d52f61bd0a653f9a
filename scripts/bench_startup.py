"""Benchmark CLI start-up: systemd timers start `jiritsu` every minute, so it must stay fast.

Prints the median and 90th percentile wall time of `jiritsu --help` and of a placeholder command,
and the slowest imports. Target: median under 0.3 s. A figure, not a test: machines are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JIRITSU = ROOT / ".venv" / "bin" / "jiritsu"


def _time(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return times


def _slowest_imports(top: int) -> list[tuple[int, str]]:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import jiritsu_cli.main"],
        capture_output=True,
        text=True,
        check=False,
    ).stderr
    rows = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            rows.append((int(parts[1]), parts[2].rstrip()))
    return sorted(rows, reverse=True)[:top]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for label, cmd in (
        ("jiritsu --help", [str(JIRITSU), "--help"]),
        ("jiritsu config --help", [str(JIRITSU), "config", "--help"]),
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
    ):
        t = sorted(_time(cmd, args.runs))
        p90 = t[min(len(t) - 1, int(len(t) * 0.9))]
        print(
            f"{label:28s} median {statistics.median(t) * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms"
        )
    print("\nslowest cumulative imports of jiritsu_cli.main (us):")
    for micros, name in _slowest_imports(8):
        print(f"  {micros:8d} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
