"""``jiritsu simulate`` on real 2019 candles: the same code as live, no lookahead, deterministic,
and the money adds up.

The source database holds January and February 2019 (Bitfinex BTC/USD minutes from
../shared/data); every simulation copies from it into its own fresh database.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import sqlalchemy as sa

from jiritsu.config import load_config
from jiritsu.db.engine import make_engine
from jiritsu.db.migrate import open_database
from jiritsu.engine.loop import LoopOptions, parse_replay, run_loop
from jiritsu.market.importer import read_candle_file
from jiritsu.market.store import CandleStore, cache_root
from jiritsu.simulate import SimOptions, run_simulation
from jiritsu.simulate.summary import summarize
from tests.conftest import REPO

REAL = REPO.parent / "shared" / "data" / "bitfinex_BTCUSD_1m_2019.csv.gz"
# a replay and a simulation of two weeks each: 11-12 min per window on the 2-core machine at a
# load of 20-30, so an hour's timeout
TWO_WEEKS = [pytest.mark.slow, pytest.mark.timeout(3600)]
CHEAP_TUNING = {
    "JIRITSU_OPTIMIZER__BACKTEST_PERIOD_MONTHS": "1",
    "JIRITSU_OPTIMIZER__WORKERS": "1",
}


@pytest.fixture(scope="module")
def real_slice() -> pl.DataFrame:
    """January and February 2019, as the importer reads them."""
    assert REAL.exists(), f"{REAL} is missing: shared/data must sit beside the repository"
    hi = int(datetime(2019, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)
    return read_candle_file(REAL).frame.filter(pl.col("ts") < hi)


def source(
    data_dir: Path, candles: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, **env: str
) -> Any:
    """A configuration whose database holds the candles (the user's store)."""
    monkeypatch.setenv("JIRITSU_GENERAL__DATA_DIR", str(data_dir))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    loaded = load_config(REPO / "config.toml")
    with open_database(loaded) as engine:
        store = CandleStore(engine, cache_root(loaded.settings.general.data_dir))
        store.write(loaded.settings.master_bot.index_symbol, "1", candles)
    return loaded


def window(text: str) -> tuple[int, int]:
    lo, hi = parse_replay(text)
    assert lo is not None
    assert hi is not None
    return lo, hi


def fills(db: Path, before: int | None = None) -> list[tuple[Any, ...]]:
    engine = make_engine(f"sqlite:///{db}")
    query = "select account, side, qty, price, fee, exec_ms from paper_fills"
    if before is not None:
        query += f" where exec_ms < {before}"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query + " order by exec_ms, account, exec_id")).all()
    engine.dispose()
    return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    "days",
    [
        "2019-02-04..2019-02-05",
        "2019-02-18..2019-02-19",
        # the proof: two-week windows, every bot trading
        pytest.param("2019-01-14..2019-01-28", marks=TWO_WEEKS),
        pytest.param("2019-02-11..2019-02-25", marks=TWO_WEEKS),
    ],
)
def test_jobs_off_gives_exactly_the_fills_of_the_replay(
    days: str, real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = source(tmp_path / "replay", real_slice, monkeypatch)
    result = run_loop(loaded, LoopOptions(replay=parse_replay(days), install_signals=False))
    assert result.exit_code == 0
    replayed = fills(tmp_path / "replay" / "jiritsu.db")
    lo, hi = window(days)
    opts = SimOptions(lo, hi, tmp_path / "sim", tune=False, rebalance=False, save_profit=False)
    run = run_simulation(loaded, opts)
    assert run.exit_code == 0
    simulated = fills(tmp_path / "sim" / "jiritsu.db")
    two_weeks = hi - lo >= 14 * 86_400_000
    # (SubBot-A trades hourly: not every day)
    assert len({r[0] for r in replayed}) >= (3 if two_weeks else 2)
    assert simulated == replayed


def _rows(db: Path, query: str) -> list[tuple[Any, ...]]:
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(sa.text(query)).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_skipping_quiet_minutes_changes_nothing(
    real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay that skips the minutes in which a spot holding's levels cannot be reached (nor
    the crash breaker trip, nor a snapshot fall due) books what stepping every minute books:
    fills, orders, snapshots, breaker events -- with far fewer steps."""
    days = "2019-02-04..2019-02-06"
    results, dbs = [], []
    for skip in (False, True):
        # a crash breaker that trips in the window (0.5 % in an hour) and lifts after 60 min
        loaded = source(tmp_path / str(skip), real_slice, monkeypatch,
                        JIRITSU_RISK__CRASH_MOVE_PCT="0.005",
                        JIRITSU_RISK__CRASH_COOLDOWN_MINUTES="60")  # fmt: skip
        opts = LoopOptions(replay=parse_replay(days), install_signals=False, skip_quiet=skip)
        results.append(run_loop(loaded, opts))
        dbs.append(tmp_path / str(skip) / "jiritsu.db")
    every, skipping = results
    assert every.exit_code == skipping.exit_code == 0
    assert skipping.steps < every.steps * 0.9, (skipping.steps, every.steps)
    assert fills(dbs[1]) == fills(dbs[0])
    assert fills(dbs[0])
    for query in (
        "select bot, client_order_id, side, qty, price, status from orders order by id",
        "select s.timestamp, b.bot_name, b.balance from portfolio_history s join "
        "portfolio_bot_balances b on b.snapshot_id = s.id order by s.id, b.bot_name",
        "select timestamp, bot, event_type, message from system_events "
        "where event_type != 'SHUTDOWN' order by id",
        "select bot, bar_ts, action, outcome from decisions order by id",
    ):
        assert _rows(dbs[1], query) == _rows(dbs[0], query), query
    events = _rows(dbs[0], "select event_type, message from system_events")
    assert any(e == "CIRCUIT_BREAKER" and "crash" in m for e, m in events)
    assert any(e == "RESUME" for e, _m in events)


def _doc(run: Any) -> dict[str, Any]:
    doc = summarize(run)
    doc.pop("wall_seconds")
    doc.pop("data_dir")
    return doc


@pytest.fixture(scope="module")
def two_runs(
    real_slice: pl.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Any, Any, Any, int]:
    """The same window (a tuning on Feb 1, a saving on Sunday Feb 3, rebalancing) twice, and once
    more with every candle from T on changed."""
    mp = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("whole")
    try:
        loaded = source(base / "src", real_slice, mp, **CHEAP_TUNING)
        lo, hi = window("2019-01-31..2019-02-03")
        first = run_simulation(loaded, SimOptions(lo, hi, base / "one"))
        second = run_simulation(loaded, SimOptions(lo, hi, base / "two"))
        t = int(datetime(2019, 2, 2, 12, tzinfo=timezone.utc).timestamp() * 1000)
        later = pl.col("ts") >= t
        altered = real_slice.with_columns(
            [pl.when(later).then(pl.col(c) * 1.3).otherwise(pl.col(c)).alias(c)
             for c in ("open", "high", "low", "close")]
        )  # fmt: skip
        changed = source(base / "changed", altered, mp, **CHEAP_TUNING)
        third = run_simulation(changed, SimOptions(lo, hi, base / "three"))
    finally:
        mp.undo()
    return first, second, third, t


def test_two_runs_give_identical_json(two_runs: Any) -> None:
    first, second, _third, _t = two_runs
    a, b = _doc(first), _doc(second)
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)
    assert a["tunings"], "the window holds the monthly tuning of Feb 1"
    assert a["transfers"] > 0
    assert [j.t for j in first.jobs if j.job == "save-profit"] == [
        int(datetime(2019, 2, 3, tzinfo=timezone.utc).timestamp() * 1000)
    ]


def _transfers(db: Path, before: int) -> list[tuple[Any, ...]]:
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "select kind, from_account, to_account, amount, status, created_at "
                "from transfers order by id"
            )
        ).all()
    engine.dispose()
    cut = datetime.fromtimestamp(before / 1000, tz=timezone.utc).isoformat()
    return [tuple(r) for r in rows if str(r[5]).replace(" ", "T") < cut]


def test_changing_candles_after_t_changes_nothing_before_t(two_runs: Any) -> None:
    first, _second, third, t = two_runs
    a_dir, c_dir = first.options.data_dir, third.options.data_dir
    before = fills(a_dir / "jiritsu.db", before=t)
    assert before, "trades before T"
    assert fills(c_dir / "jiritsu.db", before=t) == before
    assert _transfers(c_dir / "jiritsu.db", t) == _transfers(a_dir / "jiritsu.db", t)
    assert _transfers(a_dir / "jiritsu.db", t)
    tuned = [x for x in first.tunings if x["time"] < "2019-02-02T12"]
    assert tuned
    assert [x for x in third.tunings if x["time"] < "2019-02-02T12"] == tuned
    # and the change did reach the run after T
    assert fills(c_dir / "jiritsu.db") != fills(a_dir / "jiritsu.db")


def test_the_ledger_balances_and_transfers_obey_the_live_rules(two_runs: Any) -> None:
    first = two_runs[0]
    settings = first.loaded.settings
    engine = make_engine(first.loaded.db_url)
    with engine.connect() as conn:
        balances = conn.execute(
            sa.text("select coalesce(sum(balance), 0) from paper_accounts where coin = 'USDT'")
        ).scalar_one()
        trades = conn.execute(
            sa.text(
                "select category, side, qty, price, fee, fee_coin, realised_pnl from paper_fills"
            )
        ).all()
        transfers = conn.execute(
            sa.text("select kind, from_account, amount, status, created_at from transfers")
        ).all()
        negative = conn.execute(
            sa.text("select count(*) from paper_accounts where balance < 0")
        ).scalar_one()
    engine.dispose()
    paper = settings.paper
    expected = sum(paper.starting_balances.values(), Decimal(0)) + paper.main_balance
    for category, side, qty, price, fee, fee_coin, pnl in trades:
        qty, price, fee, pnl = (Decimal(str(x)) for x in (qty, price, fee, pnl))
        usdt_fee = fee if fee_coin == "USDT" else Decimal(0)
        if category == "linear":
            expected += pnl - usdt_fee
        else:  # spot: the notional changes hands
            expected += (qty * price if side == "Sell" else -qty * price) - usdt_fee
    assert abs(Decimal(str(balances)) - expected) < Decimal("0.01")
    assert negative == 0
    assert {status for *_, status, _ in transfers} == {"success"}  # none above what was free
    weeks = Counter(
        (src, datetime.fromisoformat(str(when)).isocalendar()[:2])
        for kind, src, _amount, _status, when in transfers
        if kind == "profit_save"
    )
    assert max(weeks.values(), default=0) <= 1  # at most one saving per bot and weekly window


def test_a_gemini_bot_replays_its_recorded_decisions_and_the_stored_news(
    real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SubBot-C (hybrid) answers the bar it recorded live with that decision and every other
    bar with its rule, and the report counts both; the news items stored in the user's
    database reach the snapshots only from their publication time."""
    from jiritsu.db.models import Decision as Row
    from jiritsu.db.models import SentimentScore

    loaded = source(tmp_path / "src", real_slice, monkeypatch)
    bar = datetime(2019, 2, 4, 6, 0, tzinfo=timezone.utc)
    published = datetime(2019, 2, 4, 12, 0, tzinfo=timezone.utc)
    with open_database(loaded) as engine, engine.begin() as conn:
        conn.execute(
            sa.insert(Row),
            [{"bot": "SubBot-C", "created_at": bar, "bar_ts": bar, "symbol": "BTCUSDT",
              "provider": "hybrid", "model": "gemini-2.5-flash", "action": "BUY",
              "outcome": "ok", "confidence": 0.9, "reason": "recorded: accumulation"}],
        )  # fmt: skip
        conn.execute(
            sa.insert(SentimentScore),
            [{"timestamp": t, "fetched_at": t, "source": "test", "item_key": key,
              "keyword": "bitcoin", "score": score, "headline": key}
             for t, key, score in ((bar - timedelta(hours=2), "before", 0.5),
                                   (published, "midday", -0.5))],
        )  # fmt: skip
    lo, hi = window("2019-02-04..2019-02-05")
    opts = SimOptions(lo, hi, tmp_path / "sim", tune=False, rebalance=False, save_profit=False)
    run = run_simulation(loaded, opts)
    assert run.exit_code == 0
    note = run.advisors["SubBot-C"]
    assert note.startswith("hybrid advisor: 1 recorded decision(s) replayed, ")
    assert int(note.split(", ")[1].split()[0]) > 100  # the other 5-minute bars: the rule
    engine = make_engine(f"sqlite:///{tmp_path / 'sim' / 'jiritsu.db'}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Row.bar_ts, Row.provider, Row.action, Row.reason, Row.input_summary)
            .where(Row.bot == "SubBot-C").order_by(Row.bar_ts)
        ).all()  # fmt: skip
    engine.dispose()
    replayed = [r for r in rows if r.bar_ts == bar]
    assert [(r.provider, r.action, r.reason) for r in replayed] == [
        ("hybrid", "BUY", "recorded: accumulation")
    ]
    assert replayed[0].input_summary["engine"]["action"] == "BUY"
    assert {r.provider for r in rows if r.bar_ts != bar} == {"rules"}
    items = (bar - timedelta(hours=2), published)
    day = timedelta(hours=24)
    for r in rows:  # decided at the bar's close: the items of the 24 hours up to then
        at = r.bar_ts + timedelta(minutes=5)
        assert r.input_summary["sentiment_count"] == sum(at - day < i <= at for i in items), at
    assert {r.input_summary["sentiment_count"] for r in rows} == {0, 1, 2}


def test_the_jobs_after_a_tuning_run_on_what_it_applied(
    real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live, every timer job loads the configuration afresh (the tuned overlay included); in a
    simulation the jobs after a tuning must see what it applied, or the next tuning starts from
    the untuned parameters again."""
    import jiritsu.usecases.master as usecases

    loaded = source(tmp_path / "src", real_slice, monkeypatch, **CHEAP_TUNING)
    seen: list[dict[str, float]] = []
    rebalance = usecases.rebalance

    def spy(rt: Any, **options: Any) -> Any:
        seen.append({b.name: b.strategy_params.sl_ratio for b in rt.settings.sub_bots})
        return rebalance(rt, **options)

    monkeypatch.setattr(usecases, "rebalance", spy)
    lo = int(datetime(2019, 2, 1, tzinfo=timezone.utc).timestamp() * 1000)
    run = run_simulation(loaded, SimOptions(lo, lo + 4 * 3_600_000 + 60_000, tmp_path / "sim"))
    applied = {t["bot"]: t["changes"] for t in run.tunings if t["applied"]}
    assert applied, "the Feb 1 tuning applies something"
    assert len(seen) == 2  # 00:00 before the tuning at 01:00, 04:00 after it
    for bot, changes in applied.items():
        if "strategy_params.sl_ratio" in " ".join(changes):
            key = next(k for k in changes if k.endswith("sl_ratio"))
            assert seen[0][bot] == changes[key][0]
            assert seen[1][bot] == changes[key][1]
    assert seen[1] != seen[0]


SIX_HOURLY = {**CHEAP_TUNING, "JIRITSU_OPTIMIZER__SCHEDULE": "0 */6 * * *"}
TUNING_TABLES = (
    "select bot, started_at, finished_at, status, grid, current_params, best_params, "
    "current_out_of_sample_score, in_sample_score, out_of_sample_score, applied, reason, "
    "details from tuning_runs order by id",
    "select source, bot, period_from, period_to, params, metrics, trades_sha256, tuning_run_id "
    "from backtest_runs "
    "order by id",
    "select timestamp, bot, event_type, message from system_events "
    "where event_type != 'SHUTDOWN' order by id",
    "select bot, bar_ts, action, outcome from decisions order by id",
)


def test_tunings_computed_ahead_equal_tunings_in_process(
    real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three tunings in a row (every 6 hours), the later ones on what the earlier applied: the
    worker process's outcomes, recorded by the loop, give the run (every tuning row, backtest
    run, event, decision, overlay and the JSON) of the loop computing them itself."""
    loaded = source(tmp_path / "src", real_slice, monkeypatch, **SIX_HOURLY)
    lo, hi = window("2019-02-01T00:00..2019-02-01T13:00")
    ahead = run_simulation(loaded, SimOptions(lo, hi, tmp_path / "ahead"))
    inline = run_simulation(loaded, SimOptions(lo, hi, tmp_path / "inline", tune_ahead=False))
    assert inline.ahead is None
    assert ahead.ahead is not None
    assert (ahead.ahead.taken, ahead.ahead.stopped) == (3, "")
    assert [x["time"][11:16] for x in ahead.tunings] == ["00:00"] * 3 + ["06:00"] * 3 + [
        "12:00"
    ] * 3
    assert any(x["applied"] for x in ahead.tunings[:3]), "the first tuning applies something"
    assert _doc(ahead) == _doc(inline)
    for query in TUNING_TABLES:
        assert _rows(tmp_path / "ahead" / "jiritsu.db", query) == _rows(
            tmp_path / "inline" / "jiritsu.db", query
        ), query
    assert (tmp_path / "ahead" / "tuned.toml").read_text() == (
        tmp_path / "inline" / "tuned.toml"
    ).read_text()


def test_a_killed_tuning_worker_leaves_the_loop_tuning_in_process(
    real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker SIGKILLed as soon as it has its times: the loop notices at the first tuning,
    says why, and tunes in-process; the run equals one without a worker."""
    import signal

    from jiritsu.simulate.ahead import TuningsAhead

    start = TuningsAhead.start

    def start_then_kill(self: TuningsAhead, times: list[int]) -> None:
        start(self, times)
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGKILL)

    loaded = source(tmp_path / "src", real_slice, monkeypatch, **SIX_HOURLY)
    lo, hi = window("2019-02-01T00:00..2019-02-01T07:00")
    inline = run_simulation(loaded, SimOptions(lo, hi, tmp_path / "inline", tune_ahead=False))
    monkeypatch.setattr(TuningsAhead, "start", start_then_kill)
    killed = run_simulation(loaded, SimOptions(lo, hi, tmp_path / "killed"))
    assert killed.ahead is not None
    assert killed.ahead.taken == 0
    assert killed.ahead.stopped.startswith("the worker ended (")
    assert len(killed.tunings) == 6
    assert _doc(killed) == _doc(inline)
    for query in TUNING_TABLES:
        assert _rows(tmp_path / "killed" / "jiritsu.db", query) == _rows(
            tmp_path / "inline" / "jiritsu.db", query
        ), query


def test_the_loop_takes_a_worker_tuning_only_for_its_time_and_settings(
    real_slice: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tuning at another time, or with other settings, than the worker's is not taken: the
    worker is stopped (its chain is no longer the loop's) and the caller tunes in-process."""
    from jiritsu.simulate.ahead import TuningsAhead

    loaded = source(tmp_path / "src", real_slice, monkeypatch, **CHEAP_TUNING)
    t = int(datetime(2019, 2, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
    settings = loaded.settings
    other = settings.with_params({"SubBot-B.strategy_params.sl_ratio": 0.031})
    for at, given, why in (
        (t + 60_000, settings, f"the loop did not tune at {t}"),
        (t - 60_000, settings, f"the loop tuned at {t - 60_000}, not scheduled"),
        (t, other, f"the settings at {t} differ"),
    ):
        ahead = TuningsAhead(REPO / "config.toml", dict(os.environ))
        try:
            ahead.start([t])
            assert ahead.take(at, given) is None
            assert ahead.stopped.startswith(why), ahead.stopped
        finally:
            ahead.close()
    ahead = TuningsAhead(REPO / "config.toml", dict(os.environ))
    try:
        ahead.start([t])
        found = ahead.take(t, settings)
    finally:
        ahead.close()
    assert found is not None
    assert ahead.taken == 1
    assert [o.bot for o in found[0]] == ["SubBot-A", "SubBot-B", "SubBot-C"]
