"""The trade loop: SIGTERM finishes the step and exits 0, a database that goes away stops it
safely with exit 3, a cool-down lifts a breaker's halt (SIGHUP: tests/engine/test_live.py)."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from jiritsu.db.engine import make_engine
from jiritsu.engine.loop import LoopOptions, TradeLoop, parse_replay, run_loop
from jiritsu.errors import UsageError
from jiritsu.market.synth import synth_candles
from tests.engine.conftest import LOT_SIZING, QUIET_BREAKERS, load, store_candles
from tests.processes import jiritsu_env, start_jiritsu

DAY = 86_400_000


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    return jiritsu_env(data_dir, QUIET_BREAKERS, LOT_SIZING, extra)


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def events(db: Path, kind: str) -> list[tuple[str, Any]]:
    if not db.exists():
        return []
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(
                "select message, details from system_events where event_type = :k order by id"
            ), {"k": kind}).all())  # fmt: skip
    except sa.exc.OperationalError:
        return []
    finally:
        engine.dispose()


def test_parse_replay() -> None:
    assert parse_replay("2024-01-03..2024-01-05") == (1704240000000, 1704499200000)
    assert parse_replay("2024-01-03T12:00..") == (1704283200000, None)
    assert parse_replay("..") == (None, None)
    for bad in ("2024-01-03", "x..y", "2024-01-05..2024-01-03"):
        with pytest.raises(UsageError):
            parse_replay(bad)


def test_sigterm_finishes_the_step_and_exits_0(isolated_env: Path) -> None:
    loaded = load(isolated_env)
    store_candles(loaded, synth_candles(days=4, seed=3))
    proc = start_jiritsu(
        ["trade-loop", "--replay", "..", "--speed", "3000"], env_for(isolated_env),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: events(isolated_env / "jiritsu.db", "STARTUP"), timeout=120)
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    (shutdown,) = events(isolated_env / "jiritsu.db", "SHUTDOWN")
    steps = int(shutdown[0].split("after ")[1].split(" ")[0])
    assert 0 < steps < 2 * 24 * 12  # stopped long before the 2 replayed days were over
    # The last line says where it stopped, not "finished" with the whole range.
    assert "trade loop finished" not in out
    found = re.search(
        r"trade loop stopped at (\S+ \S+) of (\S+ \S+) \.\. (\S+ \S+) UTC \(stop signal\)", out
    )
    assert found, out
    at, start, end = (datetime.strptime(g, "%Y-%m-%d %H:%M") for g in found.groups())
    assert start <= at < end
    engine = make_engine(f"sqlite:///{isolated_env / 'jiritsu.db'}")
    with engine.connect() as conn:
        stamp = conn.execute(sa.text(
            "select timestamp from system_events where event_type = 'SHUTDOWN'"
        )).scalar_one()  # fmt: skip
    engine.dispose()
    assert str(stamp).startswith(at.strftime("%Y-%m-%d %H:%M"))  # the last step's time


def test_losing_the_database_stops_safely_with_exit_3(
    isolated_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"JIRITSU_DATABASE__RECONNECT_ATTEMPTS": "2",
           "JIRITSU_DATABASE__RECONNECT_BASE_DELAY_SECONDS": "0.01"}  # fmt: skip
    loaded = load(isolated_env, env)
    candles = synth_candles(days=3, seed=5)
    store_candles(loaded, candles)
    first = int(candles["ts"][0])
    moved = isolated_env.parent / "moved"

    def pull_the_plug(t: int, loop: TradeLoop) -> None:
        if loop.result.steps == 20:
            assert loop.engine is not None
            loop.engine.dispose()
            shutil.move(str(isolated_env), str(moved))  # new connections cannot open the file

    with caplog.at_level(logging.CRITICAL, logger="jiritsu.loop"):
        result = run_loop(
            loaded,
            LoopOptions(replay=(first + 2 * DAY, first + 3 * DAY), install_signals=False),
            on_step=pull_the_plug,
        )
    assert result.exit_code == 3
    assert result.steps == 20
    assert any("database unreachable, trading stopped" in r.message for r in caplog.records)


def test_a_cool_down_lifts_a_breaker_halt_during_the_loop(isolated_env: Path) -> None:
    from jiritsu import controls
    from jiritsu.clock import from_ms

    loaded = load(isolated_env)
    candles = synth_candles(days=3, seed=5)
    store_candles(loaded, candles)
    start = int(candles["ts"][0]) + 2 * DAY
    engine = make_engine(loaded.db_url)
    controls.halt(engine, controls.GLOBAL, "circuit breaker crash: test", by="breaker",
                  cooldown_minutes=30, now=from_ms(start))  # fmt: skip
    result = run_loop(loaded, LoopOptions(replay=(start, start + 2 * 60 * 60_000),
                                          install_signals=False))  # fmt: skip
    assert result.exit_code == 0
    with engine.connect() as conn:
        resumed = conn.execute(sa.text(
            "select timestamp, message from system_events where event_type = 'RESUME'"
        )).all()  # fmt: skip
        skipped = conn.execute(sa.text(
            "select count(*) from decisions where outcome = 'skipped' and reason like 'halted%'"
        )).scalar()  # fmt: skip
        snapshots = conn.execute(sa.text(
            "select timestamp from portfolio_history order by timestamp"
        )).scalars().all()  # fmt: skip
    engine.dispose()
    (lift,) = resumed
    assert lift[1] == "halt of global lifted: cool-down elapsed"
    assert str(lift[0]).startswith(str(from_ms(start + 30 * 60_000))[:16])
    assert skipped > 0  # while halted the advisor was not asked
    assert len(snapshots) >= 3  # at start, at the lift (the breakers' new baseline), hourly


def test_a_new_tuned_overlay_is_picked_up_by_the_running_loop(isolated_env: Path) -> None:
    """`jiritsu tune` writes tuned.toml and signals nothing: the loop reloads at its next step."""
    from jiritsu.strategy.params import describe
    from jiritsu.tune.apply import write_tuned

    loaded = load(isolated_env)
    candles = synth_candles(days=3, seed=5)
    store_candles(loaded, candles)
    start = int(candles["ts"][0]) + 2 * DAY
    seen: dict[int, float] = {}

    def tune_meanwhile(t: int, loop: TradeLoop) -> None:
        seen[loop.result.steps] = describe(loop.runners["SubBot-C"].params)["sl_ratio"]
        if loop.result.steps == 3:
            write_tuned(loop.loaded.overlay_path, {"SubBot-C.strategy_params.sl_ratio": 1.5},
                        {"tuning_runs": [1]})  # fmt: skip
        if loop.result.steps == 6:  # the same content again, a newer mtime: nothing to reload
            path = loop.loaded.overlay_path
            path.write_bytes(path.read_bytes())
            os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))

    loop = TradeLoop(lambda: load(isolated_env),
                     LoopOptions(replay=(start, start + 60 * 60_000), install_signals=False),
                     on_step=tune_meanwhile)  # fmt: skip
    assert loop.run().exit_code == 0
    assert (seen[3], seen[4]) == (0.75, 1.5)  # the step after the write ran on the new value
    assert loop.settings.bot("SubBot-C").strategy_params.sl_ratio == 1.5
    (config,) = events(isolated_env / "jiritsu.db", "CONFIG")
    assert config[0] == "configuration reloaded (tuned overlay changed): 1 change(s)"
    assert '"SubBot-C.sl_ratio": "0.75 -> 1.5"' in config[1]
