"""No availability lookahead on the real 2018 candles: whether the bars after ``t`` exist, or what
they hold, never changes what the backtest decided up to ``t``.

For every entry the backtest decides in a gappy month, the run is repeated with the three
1-minute bars after the decision deleted, and with every bar after it deleted, and with every
bar after it altered: the actions logged up to and at the decision, and the fills before it,
must stay exactly the same. (The kernel used to step only at bars that exist, so deleting the
next bars moved the decision to a later minute or dropped it.)
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from jiritsu.backtest.runner import CandleArrays
from jiritsu.config.settings import Settings
from jiritsu.strategy import kernel as K
from tests.engine.real_parity import DAY, YEAR_2018, candles_2018

START = YEAR_2018 + 63 * DAY  # 2018-03-05: four weeks around the March gaps
END = START + 28 * DAY
WARMUP = 7 * DAY
MIN = 60_000


@pytest.fixture(scope="module")
def month() -> pl.DataFrame:
    year = candles_2018()
    return year.filter((pl.col("ts") >= START - WARMUP) & (pl.col("ts") < END))


def _run(settings: Settings, bot: str, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(actions, fills) of the compiled kernel over ``frame`` with steps in the month."""
    from jiritsu.backtest.runner import build_inputs

    inp = build_inputs(settings, bot, CandleArrays("BTCUSDT", frame))
    n_rows = 4096
    acts = np.zeros((n_rows, K.NACT))
    fills = np.zeros((n_rows, K.NFILL))
    fn = K.compiled().simulate
    na, nf, _s, _a = fn(
        inp.ts, inp.open, inp.high, inp.low, inp.close, inp.vol, inp.tf_close_ms, inp.tf_close,
        inp.tf_atr, inp.sig, inp.conf, inp.params, 1000.0, float(START), float(END), acts,
        fills, np.zeros(0), K.no_halts(),
    )  # fmt: skip
    assert max(na, nf) <= n_rows
    return acts[:na], fills[:nf]


def _upto(acts: np.ndarray, fills: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
    return acts[acts[:, 0] <= t], fills[fills[:, K.F_TS] < t]


@pytest.mark.slow
@pytest.mark.parametrize("bot", ["SubBot-A", "SubBot-B", "SubBot-C"])
def test_deleting_or_altering_bars_after_a_decision_changes_nothing_before_it(
    month: pl.DataFrame, bot: str
) -> None:
    settings = Settings()
    acts, fills = _run(settings, bot, month)
    entries = acts[acts[:, 1] == K.ACT_ENTER][:, 0]
    assert entries.size >= 3, f"{bot} decided too few entries for the check to mean anything"
    rng = np.random.default_rng(3)
    ts = month["ts"]
    checked = 0
    for t in entries[:: max(1, entries.size // 6)]:
        base = _upto(acts, fills, t)
        cut_next = month.filter((ts < t) | (ts >= t + 3 * MIN))
        cut_all = month.filter(ts < t)
        factor = pl.Series(np.where(ts.to_numpy() >= t, rng.uniform(0.7, 1.3, month.height), 1.0))
        altered = month.with_columns(
            *(pl.col(c) * factor for c in ("open", "high", "low", "close"))
        )
        for name, frame in (("3 bars deleted", cut_next), ("future deleted", cut_all),
                            ("future altered", altered)):  # fmt: skip
            other = _upto(*_run(settings, bot, frame), t)
            assert np.array_equal(base[0], other[0]), f"{bot} {name} at {int(t)}: decisions"
            assert np.array_equal(base[1], other[1]), f"{bot} {name} at {int(t)}: fills"
        checked += 1
    assert checked >= 3
