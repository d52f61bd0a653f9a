"""What the portfolio breakers cost a backtest, on one real year of 1-minute bars (../shared/data).

For each bot of the shipped configuration: one run without the portfolio breakers (best of N),
then the run with them (:meth:`jiritsu.backtest.portfolio.Portfolio.run`: the other two bots
beside it, rounds until the halts settle), cold (nothing cached) and warm (the other bots' runs
cached, as for a grid's later candidates), with the trips found. Once with the shipped
``risk.cooldown_minutes`` (0: the first trip halts for the rest of the year) and once with a
two-hour cool-down (many trips). Figures, not a test: wall time and CPU seconds.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / ".." / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2018, choices=(2017, 2018, 2019))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from jiritsu.backtest.portfolio import Portfolio
    from jiritsu.backtest.runner import CandleArrays, kernels, run_bot
    from jiritsu.clock import from_ms
    from jiritsu.config.settings import Settings
    from jiritsu.market.importer import read_candle_file

    frame = read_candle_file(DATA / f"bitfinex_BTCUSD_1m_{args.year}.csv.gz").frame
    data = CandleArrays("BTCUSDT", frame)
    start, end = int(data.ts[0]) + 2 * 86_400_000, data.span()[1]
    kernels()
    print(f"{args.year}: {frame.height:,} bars")
    for cooldown in (0, 120):
        base = Settings()
        settings = base.model_copy(
            update={"risk": base.risk.model_copy(update={"cooldown_minutes": cooldown})}
        )
        for bot in [b.name for b in settings.enabled_bots]:
            run_bot(settings, bot, data, start, end)  # indicators and signals memoised
        print(f"risk.cooldown_minutes = {cooldown}")
        for bot in [b.name for b in settings.enabled_bots]:
            alone = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                run_bot(settings, bot, data, start, end)
                alone = min(alone, time.perf_counter() - t0)
            portfolio = Portfolio(settings, {b.name: data for b in settings.enabled_bots}, data)
            timings = []
            for _ in range(2):  # cold, then with the other bots' runs cached
                t0, c0 = time.perf_counter(), time.process_time()
                result = portfolio.run(settings, bot, data, start, end)
                timings.append((time.perf_counter() - t0, time.process_time() - c0))
            rounds = portfolio.halts(
                bot,
                lambda h, b=bot, s=settings: run_bot(s, b, data, start, end, halts=h),
                start,
                end,
            )[2]
            first = (
                f", first {result.halts[0].breaker} {from_ms(result.halts[0].time):%m-%d %H:%M}"
                if result.halts
                else ""
            )
            print(
                f"  {bot}: alone {alone:6.3f} s; with the portfolio cold {timings[0][0]:6.3f} s "
                f"(CPU {timings[0][1]:.3f}), warm {timings[1][0]:6.3f} s (CPU "
                f"{timings[1][1]:.3f}); {rounds} rounds, {len(result.halts)} trips{first}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
