"""``jiritsu backtest`` end to end: stored synthetic candles in, a saved run out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from jiritsu.backtest.results import load_run
from jiritsu.db.engine import make_engine
from jiritsu.db.models import BacktestEquity, BacktestRun
from jiritsu_cli.main import app


def _synth(runner: CliRunner) -> None:
    out = runner.invoke(app, ["data", "synth", "--days", "6", "--seed", "3"])
    assert out.exit_code == 0, out.output


def test_backtest_saves_the_run_with_its_equity(isolated_env: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    _synth(runner)
    png = tmp_path / "eq.png"
    out = runner.invoke(app, ["backtest", "--bot", "SubBot-C", "--json", "--plot", str(png)])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    assert doc["bot"] == "SubBot-C"
    # six days stored, the first two kept for warm-up: four days of minutes
    assert doc["metrics"]["bars"] == 4 * 1440
    assert doc["gaps"].endswith("no gaps")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    engine = make_engine(f"sqlite:///{isolated_env}/jiritsu.db")
    with engine.connect() as conn:
        run = conn.execute(sa.select(BacktestRun)).one()
        points = conn.execute(sa.select(sa.func.count()).select_from(BacktestEquity)).scalar()
    assert run.source == "cli"
    assert run.trade_count == doc["metrics"]["trade_count"]
    assert points == 2000  # thinned from 5,760 for the dashboard
    loaded = load_run(engine, doc["run_id"])
    assert loaded is not None
    assert loaded["equity"][-1][1] == doc["metrics"]["final_equity"]
    engine.dispose()


def test_backtest_table_set_and_grid(isolated_env: Path) -> None:
    runner = CliRunner()
    _synth(runner)
    out = runner.invoke(app, ["backtest", "--bot", "SubBot-B", "--set", "sl_ratio=1.5"])
    assert out.exit_code == 0, out.output
    assert "Sharpe" in out.stdout
    assert "equity " in out.stdout
    grid = runner.invoke(
        app,
        ["backtest", "--bot", "SubBot-B", "--grid", "sl_ratio=0.5:1.5:0.5", "--workers", "1",
         "--json"],
    )  # fmt: skip
    assert grid.exit_code == 0, grid.output
    rows = json.loads(grid.stdout)
    assert sorted(r["params"]["SubBot-B.strategy_params.sl_ratio"] for r in rows) == [0.5, 1.0, 1.5]
    bad = runner.invoke(app, ["backtest", "--bot", "SubBot-B", "--set", "colour=3"])
    assert bad.exit_code == 2
    assert "not a tunable" in bad.output


def test_a_bad_grid_is_a_usage_error_before_any_data_is_loaded(isolated_env: Path) -> None:
    runner = CliRunner()  # nothing stored: the grid is refused on its own account
    below = runner.invoke(app, ["backtest", "--bot", "SubBot-B", "--grid", "sl_ratio=-1:1:0.5"])
    assert below.exit_code == 2, below.output
    assert "--grid SubBot-B.strategy_params.sl_ratio: the value -1" in below.output
    assert "candles" not in below.output
    assert "Traceback" not in below.output
    single = runner.invoke(app, ["backtest", "--bot", "SubBot-B", "--set", "sl_ratio=-1"])
    assert single.exit_code == 2  # the same limit as --set
    twice = runner.invoke(
        app,
        ["backtest", "--bot", "SubBot-B", "--grid", "sl_ratio=0.5:1:0.5", "--grid",
         "strategy_params.sl_ratio=2:3:1"],
    )  # fmt: skip
    assert twice.exit_code == 2, twice.output
    assert "SubBot-B.strategy_params.sl_ratio is given more than once" in twice.output


def test_grid_usage_text_shows_the_syntax_not_an_emoji() -> None:
    out = CliRunner().invoke(app, ["backtest", "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0
    assert "key=FROM:TO:STEP" in out.output
    assert "\U0001f51a" not in out.output  # Rich turns ":end:" into the END arrow emoji


def test_backtest_shows_every_loss_streak_pause(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JIRITSU_RISK__MAX_CONSECUTIVE_LOSSES", "1")
    monkeypatch.setenv("JIRITSU_RISK__LOSS_STREAK_COOLDOWN_MINUTES", "60")
    runner = CliRunner()
    _synth(runner)
    out = runner.invoke(app, ["backtest", "--bot", "SubBot-C", "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    losses = [t for t in doc["trades"] if t["pnl"] < 0]
    # (the synthetic days also hold an 8 % crash: a portfolio halt, scope "global")
    trips = [t for t in doc["breaker_trips"] if t["scope"] != "global"]
    assert losses  # one loss is a streak here: it pauses the bot for an hour
    assert trips
    assert all(t["until"] == t["time"] + 3_600_000 for t in trips)
    assert all(t["scope"] == "SubBot-C" and t["breaker"] == "loss_streak" for t in trips)
    text = runner.invoke(app, ["backtest", "--bot", "SubBot-C"]).output
    assert text.count("breaker: SubBot-C: loss-streak breaker at") == len(trips)
    monkeypatch.setenv("JIRITSU_RISK__LOSS_STREAK_COOLDOWN_MINUTES", "0")
    text = runner.invoke(app, ["backtest", "--bot", "SubBot-C"]).output
    assert text.count("stopped trading for good") == 1


def test_backtest_shows_the_portfolio_halts_and_what_it_assumed(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a 0.6 % move within the hour is a "crash" here: the synthetic market has several
    monkeypatch.setenv("JIRITSU_RISK__CRASH_MOVE_PCT", "0.006")
    monkeypatch.setenv("JIRITSU_RISK__CRASH_COOLDOWN_MINUTES", "90")
    runner = CliRunner()
    _synth(runner)
    png = tmp_path / "eq.png"
    out = runner.invoke(app, ["backtest", "--bot", "SubBot-B", "--json", "--plot", str(png)])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.stdout)
    halts = [t for t in doc["breaker_trips"] if t["scope"] == "global"]
    assert halts
    assert all(t["breaker"] == "crash" and t["until"] == t["time"] + 90 * 60_000 for t in halts)
    assert all(t["time"] >= doc["from"] for t in halts)
    assert "SubBot-A, SubBot-C trading as configured beside it" in doc["portfolio"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # no entry while halted: every fill inside a halt is an exit (or a TP/SL)
    for t in halts:
        inside = [f for f in doc["trades"] if t["time"] <= f["ts"] < t["until"]]
        assert all(f["kind"] != "leg" for f in inside)
    text = runner.invoke(app, ["backtest", "--bot", "SubBot-B"]).output
    assert text.count("portfolio crash breaker at") == len(halts)
    assert "assumed: portfolio breakers (crash, drawdown, daily loss) on SubBot-B" in text
