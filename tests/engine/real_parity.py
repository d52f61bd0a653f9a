"""Replay against the backtest kernel on the real 2018 candles: the shared harness of
``tests/engine/test_real_parity.py`` and ``scripts/bench_parity.py``.

A window is replayed with ``trade-loop --replay`` (the live code on the paper exchange, SQLite in
a fresh data directory) and run through the kernel (:func:`jiritsu.strategy.inputs.run`, what the
backtester runs) over the same stored candles; each bot's fills are compared as
(time, side, quantity, price, fee). The bots are the shipped ones as configured (risk sizing,
not the fixed lots the other engine tests pin). The global breakers are off (they are the
portfolio's); the per-bot loss-streak breaker is on in both, with a two-hour cool-down instead
of the shipped day so that a window holds many pauses and lifts.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
DAY = 86_400_000
WINDOW_DAYS = 14
WARMUP_DAYS = 7  # candles stored before the window: the indicators' warm-up (same in both)
YEAR_2018 = int(datetime(2018, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)

ENV = {  # over load()'s quiet global breakers and fixed lots
    "JIRITSU_RISK__LOSS_STREAK_COOLDOWN_MINUTES": "120",
    **{f"JIRITSU_SUB_BOTS__{i}__SIZING": "risk" for i in range(3)},
}

Fill = tuple[int, int, str, str, str]  # exec ms, side (+1/-1), qty, price, fee (quote, 8 dp)


@functools.cache
def candles_2018() -> Any:
    """The real Bitfinex BTC/USD 1-minute candles of 2018 (with their real gaps)."""
    from jiritsu.market.importer import read_candle_file

    path = DATA / "bitfinex_BTCUSD_1m_2018.csv.gz"
    assert path.exists(), f"{path} is missing: shared/data must sit beside the repository"
    return read_candle_file(path).frame


def window_start(i: int) -> int:
    """Start of the i-th two-week window of 2018 (0..24: Jan 1 .. Dec 17)."""
    return YEAR_2018 + i * WINDOW_DAYS * DAY


def _q8(x: float | Decimal) -> str:
    return str(Decimal(repr(float(x))).quantize(Decimal("0.00000001")))


@dataclass
class WindowResult:
    start: int
    replay: dict[str, list[Fill]]
    kernel: dict[str, list[Fill]]

    def differs(self, bot: str) -> Fill | bool | None:
        """False when the bot's fills agree, else the first replay fill that differs (None when
        one side simply has fewer fills)."""
        live, sim = self.replay[bot], self.kernel[bot]
        for a, b in zip(live, sim, strict=False):
            if a != b:
                return a
        return None if len(live) != len(sim) else False


def _replay_fills(engine: Any, bot: str) -> list[Fill]:
    import sqlalchemy as sa

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select exec_ms, side, qty, price, fee, fee_coin from paper_fills "
                "where account = :a order by exec_ms, id"
            ),
            {"a": bot},
        ).all()
    out: list[Fill] = []
    for ms, side, qty, price, fee, coin in rows:
        fee_quote = Decimal(fee) * Decimal(price) if coin != "USDT" else Decimal(fee)
        sign = 1 if side == "Buy" else -1
        out.append((int(ms), sign, _q8(qty), _q8(price), _q8(fee_quote)))
    return out


def _kernel_fills(result: Any) -> list[Fill]:
    from jiritsu.strategy import kernel as K

    return [
        (int(f[K.F_TS]), int(f[K.F_SIDE]), _q8(f[K.F_QTY]), _q8(f[K.F_PRICE]), _q8(f[K.F_FEE]))
        for f in result.fills
    ]


def run_window(
    data_dir: Path, start: int, env: dict[str, str] | None = None, days: int = WINDOW_DAYS
) -> WindowResult:
    """Replay ``[start, start + days]`` and run the kernel over the same candles (``env``
    over :data:`ENV`)."""
    import polars as pl

    from jiritsu.db.engine import make_engine
    from jiritsu.engine.loop import LoopOptions, run_loop
    from jiritsu.strategy.inputs import prepare, run
    from tests.engine.conftest import load, store_candles

    end = start + days * DAY
    year = candles_2018()
    candles = year.filter(
        (pl.col("ts") >= start - WARMUP_DAYS * DAY) & (pl.col("ts") <= end + 60_000)
    )
    loaded = load(data_dir, {**ENV, **(env or {})})
    store_candles(loaded, candles)
    result = run_loop(loaded, LoopOptions(replay=(start, end), install_signals=False))
    assert result.exit_code == 0
    engine = make_engine(loaded.db_url)
    replay: dict[str, list[Fill]] = {}
    kernel: dict[str, list[Fill]] = {}
    try:
        settings = loaded.settings
        for bot in settings.enabled_bots:
            replay[bot.name] = _replay_fills(engine, bot.name)
            inputs = prepare(bot, settings, candles)
            sim = run(inputs, float(settings.paper.starting_balances[bot.name]), start, end + 1)
            kernel[bot.name] = _kernel_fills(sim)
    finally:
        engine.dispose()
    return WindowResult(start, replay, kernel)
