"""Halt switches: global beats per-bot, only resume (or an elapsed cool-down) lifts a halt."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

from jiritsu import controls

T = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_halt_resume_and_precedence(engine: Engine) -> None:
    assert not controls.halted(engine, "SubBot-A", now=T).halted
    assert controls.halt(engine, "SubBot-A", "3 losses", by="breaker", now=T)
    assert not controls.halt(engine, "SubBot-A", "again", now=T)  # already halted: unchanged
    st = controls.halted(engine, "SubBot-A", now=T)
    assert (st.halted, st.reason, st.halted_by) == (True, "3 losses", "breaker")
    assert not controls.halted(engine, "SubBot-B", now=T).halted
    controls.halt(engine, controls.GLOBAL, "drawdown 16%", now=T)
    assert controls.halted(engine, "SubBot-B", now=T).reason == "drawdown 16%"
    assert controls.resume(engine, controls.GLOBAL, now=T)
    assert not controls.resume(engine, controls.GLOBAL, now=T)
    assert controls.halted(engine, "SubBot-A", now=T).reason == "3 losses"
    assert [s.scope for s in controls.all_states(engine)] == ["SubBot-A", "global"]


def test_cooldown_lifts_the_halt_only_once_elapsed(engine: Engine) -> None:
    controls.halt(engine, "SubBot-C", "exchange failing", cooldown_minutes=30, now=T)
    assert controls.halted(engine, "SubBot-C", now=T + timedelta(minutes=29)).halted
    assert not controls.halted(engine, "SubBot-C", now=T + timedelta(minutes=30)).halted
    assert not controls.halted(engine, "SubBot-C", now=T + timedelta(minutes=31)).halted
