"""``jiritsu trade-loop --replay`` from the command line, then ``jiritsu status``: equity,
positions, open orders, heartbeats, last decisions and the per-bot performance."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from jiritsu.db.engine import make_engine
from jiritsu.heartbeat import simulated_time
from jiritsu.market.synth import synth_candles
from jiritsu_cli.main import app
from tests.engine.conftest import QUIET_BREAKERS, load, store_candles

runner = CliRunner()


def test_replay_then_status_and_performance(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in QUIET_BREAKERS.items():
        monkeypatch.setenv(key, value)
    loaded = load(isolated_env)
    store_candles(loaded, synth_candles(days=3, seed=42))
    replay = runner.invoke(app, ["trade-loop", "--replay", ".."])
    assert replay.exit_code == 0, replay.output
    assert "2024-01-03  decisions" in replay.output  # one progress line per simulated day
    assert "trade loop finished (2024-01-03 00:00 .. 2024-01-04 00:00 UTC)" in replay.output

    result = runner.invoke(app, ["status", "--performance", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    bots = {b["name"]: b for b in report["bots"]}
    assert set(bots) == {"SubBot-A", "SubBot-B", "SubBot-C"}
    assert all(b["equity"] is not None and b["last_decisions"] for b in bots.values())
    assert Decimal(report["total_equity"]) == sum(Decimal(b["equity"]) for b in bots.values())
    assert [h["component"] for h in report["heartbeats"]] == ["trade-loop", "trade-tick"]
    # The finished replay's last heartbeat is fresh, but no loop runs any more.
    assert report["loop"]["alive"] is False
    assert "not running: stopped at step 2024-01-04T00:00:00+00:00" in report["loop"]["message"]
    assert report["heartbeats"][0]["details"]["step_time"] == "2024-01-04T00:00:00+00:00"
    engine = make_engine(loaded.db_url)
    with engine.connect() as conn:
        closed = conn.execute(sa.text(
            "select sub_bot_name, count(*), sum(cast(pnl as real)) from trades "
            "where position_effect = 'close' group by 1"
        )).all()  # fmt: skip
    engine.dispose()
    perf = {p["bot"]: p for p in report["performance"]}
    assert closed, "the replay should have closed some trades"
    for bot, count, pnl in closed:
        assert perf[bot]["closed_trades"] == count
        assert float(perf[bot]["pnl"]) == pytest.approx(pnl)
        assert perf[bot]["wins"] + perf[bot]["losses"] <= count

    text = runner.invoke(app, ["status", "--performance"])
    assert text.exit_code == 0
    assert "Performance (closed trades, PnL after fees)" in text.output
    assert "Last decisions" in text.output

    # The replay left its clock behind, so health judges the data on it (not "stale for
    # years"), and with no webhook an alert is "logged only", never "sent".
    engine = make_engine(loaded.db_url)
    mark = simulated_time(engine)
    engine.dispose()
    assert mark is not None
    assert mark.source == "replay"
    assert mark.until == datetime(2024, 1, 4, tzinfo=timezone.utc)
    monkeypatch.setenv("JIRITSU_HEALTH__MEMORY_PCT", "100")  # only what the test arranges
    monkeypatch.setenv("JIRITSU_HEALTH__DISK_PCT", "100")
    health = runner.invoke(app, ["health"])
    assert health.exit_code == 0, health.output
    assert "data judged on simulated time: 2024-01-04 00:00 UTC (replay" in health.output
    alerts = [line for line in health.output.splitlines() if line.startswith("alert (")]
    assert all(line.startswith("alert (logged only,") for line in alerts), alerts
