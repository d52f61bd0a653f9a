"""The rules advisor, the snapshot an advisor sees and the decisions row."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from jiritsu.advisors.base import Decision
from jiritsu.advisors.record import DecisionBatch, decision_row, record_decision
from jiritsu.advisors.rules import RulesAdvisor
from jiritsu.engine.snapshot import build_snapshot, ohlcv_summary, profile_of
from jiritsu.strategy import kernel as K
from tests.engine.conftest import MIN, frame, only_bot
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT, paper_b


def test_profiles_of_the_shipped_bots(paper_factory: Any) -> None:
    paper = paper_factory(frame(FALL + QUIET), DECIDE)
    settings = paper.loaded.settings
    assert [profile_of(settings.bot(n)) for n in ("SubBot-A", "SubBot-B", "SubBot-C")] == [
        "stable", "balanced", "aggressive"]  # fmt: skip


def test_the_rules_advisor_passes_the_strategy_signal_on_and_never_guesses(
    paper_factory: Any,
) -> None:
    paper = paper_b(paper_factory)
    bot = paper.loaded.settings.bot("SubBot-B")
    bars = paper.ctx.feed.bot_bars(bot, paper.runner("SubBot-B").params, DECIDE)
    snap = build_snapshot(bot, bars, position={"side": ""}, allowed=("BUY", "HOLD"),
                          rule_signal=("BUY", 0.8, "why"))  # fmt: skip
    assert RulesAdvisor(bot).decide(snap) == Decision("BUY", 0.8, "why", "rules")
    # without the engine's signal there is nothing to pass on: skipped, no action
    bare = build_snapshot(bot, bars, position={}, allowed=("BUY", "HOLD"), rule_signal=None)
    decision = RulesAdvisor(bot).decide(bare)
    assert (decision.action, decision.outcome) == (None, "skipped")
    assert bare.indicators["rsi"] == 0.0
    assert bare.indicators["atr"] == 41.0
    assert bars.k == 29
    assert bare.price == 39970.0
    summary = ohlcv_summary(bars)
    assert summary["closes"] == [39975.0, 39974.0, 39973.0, 39972.0, 39971.0, 39970.0]
    assert summary["return_1"] == round(39970 / 39971 - 1, 10)
    assert summary["high_48"] == 40020.0


def test_every_answer_is_a_row_with_what_the_advisor_saw(paper_factory: Any) -> None:
    paper = paper_b(paper_factory)
    bot = paper.loaded.settings.bot("SubBot-B")
    bars = paper.ctx.feed.bot_bars(bot, paper.runner("SubBot-B").params, DECIDE)
    snap = build_snapshot(bot, bars, position={"side": ""}, allowed=("BUY", "HOLD"),
                          rule_signal=("BUY", 1.0, "oversold"), sentiment=(0.25, 7))  # fmt: skip
    failed = Decision(None, 0.0, "timeout", "gemini", outcome="error", model="gemini-x",
                      latency_ms=20_000, prompt_tokens=400, output_tokens=0, error="deadline",
                      extra={"prompt_hash": "abc123"})  # fmt: skip
    when = datetime(2024, 1, 1, 0, 30, tzinfo=timezone.utc)
    decision_id = record_decision(paper.engine, "SubBot-B", snap, failed,
                                  engine_view={"acted": False}, now=when)  # fmt: skip
    (row,) = paper.rows("select * from decisions where id = :i", i=decision_id)
    row = row._mapping
    assert (row["provider"], row["model"], row["prompt_hash"], row["outcome"]) == (
        "gemini", "gemini-x", "abc123", "error")  # fmt: skip
    assert (row["latency_ms"], row["prompt_tokens"], row["total_tokens"], row["error"]) == (
        20000, 400, 400, "deadline")  # fmt: skip
    assert row["action"] is None
    summary = json.loads(row["input_summary"])
    assert summary["allowed_actions"] == ["BUY", "HOLD"]
    assert summary["rule_signal"] == ["BUY", 1.0, "oversold"]
    assert (summary["sentiment"], summary["sentiment_count"]) == (0.25, 7)
    assert summary["engine"] == {"acted": False}
    assert summary["indicators"]["rsi"] == 0.0


def test_the_snapshot_offers_only_what_the_risk_gate_allows(paper_factory: Any) -> None:
    paper = paper_b(paper_factory, **RSI_BOT)
    runner = paper.runner("SubBot-B")
    runner.step(DECIDE, halted=False, decide=True)
    (summary,) = paper.rows("select input_summary from decisions")
    assert json.loads(summary[0])["allowed_actions"] == ["BUY", "HOLD"]  # long only, flat
    state = K.new_state()
    state[K.S_SIDE], state[K.S_QTY], state[K.S_AVG] = 1.0, 0.003, 40000.0
    assert K.allowed_mask(state, runner.params, False) == K.ALLOW_SELL


def test_a_batch_writes_held_rows_first_with_the_ids_one_at_a_time_gives(
    paper_factory: Any,
) -> None:
    """A replay holds back the rows no order refers to; a row that needs its id (an entry or
    an exit) is written after them, so every row has the id it would have had alone."""
    paper = paper_b(paper_factory)
    bot = paper.loaded.settings.bot("SubBot-B")
    bars = paper.ctx.feed.bot_bars(bot, paper.runner("SubBot-B").params, DECIDE)
    snap = build_snapshot(bot, bars, position={}, allowed=("BUY", "HOLD"), rule_signal=None)
    hold = Decision(None, 0.0, "nothing", "rules", outcome="skipped")
    batch = DecisionBatch(paper.engine, size=3)
    when = [datetime(2024, 1, 1, 0, m, tzinfo=timezone.utc) for m in range(6)]
    for i in (0, 1):
        batch.add(decision_row("SubBot-B", snap, hold, now=when[i]))
    assert paper.rows("select count(*) from decisions")[0][0] == 0  # held back
    buy = Decision("BUY", 1.0, "entry", "rules")
    commits: list[int] = []
    sa.event.listen(paper.engine, "commit", lambda _conn: commits.append(1))
    assert record_decision(paper.engine, "SubBot-B", snap, buy, now=when[2], batch=batch) == 3
    assert len(commits) == 1  # the held rows and the entry's in one transaction
    for i in (3, 4, 5):  # the third row fills the batch: written
        batch.add(decision_row("SubBot-B", snap, hold, now=when[i]))
    assert batch.rows == []
    rows = paper.rows("select id, created_at, action from decisions order by id")
    assert [(r[0], r[2]) for r in rows] == [(1, None), (2, None), (3, "BUY"), (4, None),
                                            (5, None), (6, None)]  # fmt: skip
    assert [str(r[1])[:16] for r in rows] == [f"2024-01-01 00:0{m}" for m in range(6)]


def test_a_replay_loop_records_the_decisions_a_live_loop_would(
    paper_factory: Any, tmp_path: Path
) -> None:
    """Decision rows of a replay (batched) and of the same steps each written at once."""
    tables = []
    for batched in (False, True):
        env = only_bot("SubBot-B", **RSI_BOT)
        env["JIRITSU_DATABASE__DB_URL"] = f"sqlite:///{tmp_path / f'{batched}.db'}"
        paper = paper_factory(frame(FALL + QUIET), DECIDE, env)
        if batched:
            paper.ctx.decisions = DecisionBatch(paper.engine, size=2)
        runner = paper.runner("SubBot-B")
        for k in range(12):  # the entry, its legs, holds
            paper.at(DECIDE + k * MIN)
            runner.step(DECIDE + k * MIN, halted=False, decide=True)
        if paper.ctx.decisions is not None:
            paper.ctx.decisions.flush()
        tables.append(paper.rows("select id, bar_ts, action, input_summary from decisions"))
    assert tables[0] == tables[1]
    assert len(tables[0]) == 12
    assert sum('"acted": true' in row[3] for row in tables[0]) == 1  # the entry
