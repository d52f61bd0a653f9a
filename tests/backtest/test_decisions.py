"""Recorded advisor answers are replayed on their bars; the rule decides everywhere else."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import numpy as np

from jiritsu.backtest.runner import CandleArrays, build_inputs, recorded_decisions
from jiritsu.config.settings import Settings
from jiritsu.db.engine import session_scope
from jiritsu.db.models import Decision
from jiritsu.market.synth import synth_candles


def test_recorded_gemini_answers_replace_the_rule(engine: Any) -> None:
    settings = Settings()
    data = CandleArrays("BTCUSDT", synth_candles(days=2, seed=4))
    rule = build_inputs(settings, "SubBot-B", data)
    bar = int(rule.tf_ts[100])
    when = datetime.fromtimestamp(bar / 1000, tz=timezone.utc)
    with session_scope(engine) as s:
        s.add(Decision(bot="SubBot-B", bar_ts=when, provider="gemini", action="SELL",
                       confidence=0.9))  # fmt: skip
        s.add(Decision(bot="SubBot-B", bar_ts=when, provider="rules", action="BUY"))
        s.add(Decision(bot="SubBot-A", bar_ts=when, provider="gemini", action="BUY"))
        s.add(Decision(bot="SubBot-B", bar_ts=when, provider="gemini", error="timeout"))
    found = recorded_decisions(engine, "SubBot-B", bar - 60_000, bar + 60_000)
    assert found == {bar: (-1, 0.9)}
    replayed = build_inputs(settings, "SubBot-B", data, found)
    assert replayed.sig[100] == -1.0
    assert replayed.conf[100] == 0.9
    others = np.arange(rule.sig.shape[0]) != 100
    assert np.array_equal(replayed.sig[others], rule.sig[others])
