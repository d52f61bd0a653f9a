"""jiritsu health: each check's verdict, alerts on changes only (on a loopback Discord), both
database backends, the database being down, and the real console script."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu import heartbeat
from jiritsu.config import LoadedConfig, Settings
from jiritsu.config.ops import HealthSettings
from jiritsu.db import migrate
from jiritsu.db.models import Candle, HealthCheck, SystemEvent
from jiritsu.errors import TemporaryError
from jiritsu.events import record_event
from jiritsu.heartbeat import Beat
from jiritsu.notify import build_notifier
from jiritsu.ops.health import (
    CHECK_NAMES,
    Check,
    candle_check,
    error_rate_check,
    exchange_check,
    plan_alerts,
    run_health,
    sustained_cpu,
    system_checks,
    tick_check,
    trade_loop_check,
)
from jiritsu.redact import register_secret
from tests.fakes.discord import FakeDiscord
from tests.ops.conftest import FakeProbe
from tests.processes import jiritsu_env, run_jiritsu

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
BAR_MS = {"1": 60_000, "5": 300_000, "15": 900_000, "60": 3_600_000}


class FakeExchange:
    """Answers server_time like an exchange whose clock is ``offset`` seconds off ours."""

    def __init__(self, offset: float = 0.0, error: Exception | None = None) -> None:
        self.offset, self.error, self.closed = offset, error, False
        self.loaded: LoadedConfig | None = None

    def server_time(self) -> datetime:
        if self.error is not None:
            raise self.error
        return datetime.now(timezone.utc) + timedelta(seconds=self.offset)

    def close(self) -> None:
        self.closed = True


def builder_for(exchange: FakeExchange) -> Callable[..., FakeExchange]:
    def build(loaded: LoadedConfig, **_: Any) -> FakeExchange:
        exchange.loaded = loaded
        return exchange

    return build


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def notify(
        self, level: str, title: str, message: str, fields: Mapping[str, object] | None = None
    ) -> bool:
        self.sent.append((level, message))
        return True

    def send_report(self, title: str, sections: Any) -> bool:
        return True


def add_fresh_candles(engine: Engine, settings: Settings, closing_at: datetime) -> None:
    """The newest 1-minute bar of every traded symbol (and the index) closes at ``closing_at``."""
    close_ms = int(closing_at.timestamp() * 1000)
    symbols = {b.symbol for b in settings.enabled_bots} | {settings.master_bot.index_symbol}
    with engine.begin() as conn:
        for symbol in symbols:
            conn.execute(
                sa.insert(Candle).values(
                    symbol=symbol,
                    interval="1",
                    ts=close_ms - 60_000,
                    open=1.0,
                    high=1.0,
                    low=1.0,
                    close=1.0,
                    volume=1.0,
                )
            )


# --------------------------------------------------------------------------- single checks


@pytest.mark.parametrize(
    ("numbers", "name", "status"),
    [
        ({"cpu": 89.9}, "cpu", "ok"),
        ({"cpu": 90.0}, "cpu", "warn"),
        ({"memory": 89.0}, "memory", "ok"),
        ({"memory": 90.0}, "memory", "bad"),
        ({"swap_pct": 95.0, "swap_total": 2**30}, "swap", "warn"),
        ({"swap_pct": 10.0, "swap_total": 2**30}, "swap", "ok"),
        ({"swap_pct": 0.0, "swap_total": 0}, "swap", "ok"),
        ({"load": (4.0, 0.95, 0.2)}, "load", "warn"),
        ({"load": (4.0, 0.5, 0.2)}, "load", "ok"),
        ({"disk_pct": 89.0}, "disk", "ok"),
        ({"disk_pct": 95.0}, "disk", "bad"),
        ({"fail": "disk"}, "disk", "warn"),
        ({"fail": "memory"}, "memory", "warn"),
    ],
)
def test_system_checks_compare_with_the_configured_thresholds(
    tmp_path: Path, numbers: dict[str, Any], name: str, status: str
) -> None:
    checks = {c.name: c for c in system_checks(HealthSettings(), tmp_path, FakeProbe(**numbers))}
    assert list(checks) == ["cpu", "memory", "swap", "load", "disk"]
    assert checks[name].status == status, checks[name]
    others = [c.status for n, c in checks.items() if n != name]
    assert others == ["ok"] * 4, "one number moves one check"


def test_disk_is_measured_where_the_data_dir_will_be(tmp_path: Path) -> None:
    seen: list[Path] = []

    class Probe(FakeProbe):
        def disk(self, path: Path) -> tuple[float, int]:
            seen.append(path)
            return 12.0, 2**30

    disk = system_checks(HealthSettings(), tmp_path / "not" / "yet", Probe())[-1]
    assert seen == [tmp_path / "not" / "yet"]
    assert str(tmp_path) in disk.message, "reported on the nearest directory that exists"


def test_a_cpu_spike_warns_only_when_the_previous_check_saw_it_too() -> None:
    high = Check("cpu", "warn", "CPU 95% (limit 90%)", 95.0, 90.0, "%")
    assert sustained_cpu(high, None).status == "ok"
    assert "spike" in sustained_cpu(high, 40.0).message
    assert sustained_cpu(high, 92.0).status == "warn"
    calm = Check("cpu", "ok", "CPU 5%", 5.0, 90.0, "%")
    assert sustained_cpu(calm, 99.0) == calm


def _beat(seconds_ago: float, up_for: float = 3600, pid: int = 42) -> Beat:
    last = T0 - timedelta(seconds=seconds_ago)
    return Beat("x", last, last - timedelta(seconds=up_for), pid, "host1", None)


def test_trade_loop_liveness_from_its_heartbeat() -> None:
    never = trade_loop_check(None, 180, T0)
    assert (never.status, never.message) == ("warn", "not running (no heartbeat yet)")
    assert trade_loop_check(_beat(60), 180, T0).status == "ok"
    stale = trade_loop_check(_beat(181), 180, T0)
    assert stale.status == "bad"
    assert "pid 42 on host1" in stale.message
    assert stale.value == 181


def test_tick_staleness_counts_in_full_once_the_loop_has_run() -> None:
    assert tick_check(None, None, 30, T0).status == "warn"
    assert tick_check(None, _beat(5, up_for=60), 30, T0).status == "ok", "loop just started"
    assert tick_check(None, _beat(5, up_for=3600), 30, T0).status == "bad"
    assert tick_check(_beat(600), _beat(5), 30, T0).status == "ok"
    assert tick_check(_beat(1900), _beat(5), 30, T0).status == "bad"
    assert tick_check(_beat(1900), None, 30, T0).status == "warn", "no loop: nothing expected"


@pytest.mark.parametrize(
    ("previous", "status", "expected"),
    [
        (None, "ok", None),
        ("ok", "ok", None),
        ("bad", "bad", None),
        ("warn", "warn", None),
        (None, "warn", ("WARNING", "WARNING")),
        (None, "bad", ("ERROR", "ERROR")),
        ("ok", "warn", ("WARNING", "WARNING")),
        ("ok", "bad", ("ERROR", "ERROR")),
        ("warn", "bad", ("ERROR", "ERROR")),
        ("bad", "ok", ("INFO", "ERROR")),
        ("warn", "ok", ("INFO", "WARNING")),
        ("bad", "warn", ("INFO", "ERROR")),
        ("ok", "skipped", None),
        ("bad", "skipped", None),
        ("skipped", "ok", None),
        ("skipped", "bad", ("ERROR", "ERROR")),
    ],
)
def test_alerts_only_on_a_change_of_status(
    previous: str | None, status: str, expected: tuple[str, str] | None
) -> None:
    check = Check("disk", status, "...")
    planned = plan_alerts([check], {"disk": previous} if previous else {})
    assert [(level, gate) for _, _, level, gate in planned] == ([expected] if expected else [])


def test_candles_are_late_when_the_next_bar_is_overdue(
    engine: Engine, db_url: str, make_loaded: Callable[..., LoadedConfig]
) -> None:
    settings = make_loaded(db_url).settings
    none = candle_check(engine, settings, T0, loop_has_run=True)
    assert none.status == "warn"
    assert none.message.startswith("no candles yet for BTCUSDT")

    # Candles are stored as 1-minute bars (resampled to each bot's timeframe when read): the
    # newest closed 26 minutes ago, so the next one is overdue (1 minute + 10 of grace).
    add_fresh_candles(engine, settings, T0 - timedelta(minutes=26))
    fresh = candle_check(engine, settings, T0 - timedelta(minutes=20), loop_has_run=True)
    assert fresh.status == "ok"  # closed 6 minutes before this "now": within 1 + 10
    late = candle_check(engine, settings, T0, loop_has_run=True)
    assert late.status == "bad"
    assert late.message.startswith("stale: BTCUSDT 1 closed 26m ago")
    assert (late.value, late.threshold) == (26, 1 + 10)
    assert candle_check(engine, settings, T0, loop_has_run=False).status == "warn"


def test_error_events_of_the_last_hour_count_except_healths_own(
    engine: Engine, db_url: str
) -> None:
    for minutes in range(1, 10):
        record_event(
            engine, "ERROR", "ORDER_ERROR", "rejected", now=T0 - timedelta(minutes=minutes)
        )
    record_event(engine, "CRITICAL", "CIRCUIT_BREAKER", "tripped", now=T0 - timedelta(minutes=59))
    record_event(engine, "ERROR", "HEALTH", "disk is bad", now=T0 - timedelta(minutes=5))
    record_event(engine, "WARNING", "ORDER_ERROR", "slow", now=T0 - timedelta(minutes=5))
    record_event(engine, "ERROR", "ORDER_ERROR", "old", now=T0 - timedelta(minutes=61))
    at_limit = error_rate_check(engine, 10, T0)
    assert (at_limit.status, at_limit.value) == ("bad", 10)
    assert error_rate_check(engine, 11, T0).status == "ok"


def test_exchange_check_reports_latency_skew_and_failures(
    make_loaded: Callable[..., LoadedConfig], sqlite_url: str
) -> None:
    loaded = make_loaded(sqlite_url, JIRITSU_GENERAL__ENVIRONMENT="paper")
    good = FakeExchange()
    ok = exchange_check(loaded, builder=builder_for(good))
    assert ok.status == "ok"
    assert good.closed
    assert good.loaded is not None
    quick = good.loaded.settings.exchange
    assert (quick.request_timeout_seconds, quick.max_retries) == (5, 0), "a probe, not a trade"

    skewed = exchange_check(loaded, builder=builder_for(FakeExchange(offset=10)))
    assert skewed.status == "warn"
    assert "fix NTP" in skewed.message

    register_secret("sk-SECRETinErr01")
    down = exchange_check(
        loaded, builder=builder_for(FakeExchange(error=TemporaryError("timeout sk-SECRETinErr01")))
    )
    assert down.status == "bad"
    assert "unreachable: TemporaryError" in down.message
    assert "sk-SECRETinErr01" not in down.message

    def broken(loaded: LoadedConfig, **_: Any) -> FakeExchange:
        raise ValueError("bad base_url")

    assert exchange_check(loaded, builder=broken).status == "bad"


def test_paper_mode_asks_the_paper_exchange(
    make_loaded: Callable[..., LoadedConfig], sqlite_url: str
) -> None:
    migrate.upgrade(sqlite_url)
    check = exchange_check(make_loaded(sqlite_url))
    assert check.status == "ok", check.message
    assert check.message.startswith("paper exchange (local)")


# --------------------------------------------------------------------------- whole runs


def test_a_fresh_install_is_healthy_with_warnings_and_recorded(
    engine: Engine, db_url: str, make_loaded: Callable[..., LoadedConfig], probe: FakeProbe
) -> None:
    report = run_health(
        make_loaded(db_url), probe=probe, exchange_builder=builder_for(FakeExchange())
    )
    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {
        "cpu": "ok",
        "memory": "ok",
        "swap": "ok",
        "load": "ok",
        "disk": "ok",
        "database": "ok",
        "trade_loop": "warn",
        "tick": "warn",
        "candles": "warn",
        "errors": "ok",
        "exchange": "ok",
    }
    assert report.check("trade_loop").message == "not running (no heartbeat yet)"
    assert (report.status, int(report.exit_code), report.recorded) == ("warn", 0, True)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(HealthCheck.check_name, HealthCheck.status)).all()
    assert dict(rows) == statuses
    assert heartbeat.last_beat(engine, heartbeat.HEALTH) is not None


def test_bad_bad_ok_sends_exactly_two_alerts(
    engine: Engine, db_url: str, make_loaded: Callable[..., LoadedConfig], probe: FakeProbe
) -> None:
    loaded = make_loaded(db_url)
    add_fresh_candles(engine, loaded.settings, T0 + timedelta(minutes=20))
    heartbeat.beat(engine, heartbeat.TRADE_TICK, now=T0)
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, now=T0)
    with FakeDiscord() as fake:
        notifier = build_notifier(fake.url_for("7", "tok-health"), min_level="INFO")

        def run(at: datetime) -> Any:
            return run_health(
                loaded,
                notifier=notifier,
                probe=probe,
                exchange_builder=builder_for(FakeExchange()),
                now=at,
            )

        first = run(T0 + timedelta(minutes=10))  # heartbeat 10 minutes old: bad
        second = run(T0 + timedelta(minutes=15))  # still bad: no alert
        heartbeat.beat(engine, heartbeat.TRADE_LOOP, now=T0 + timedelta(minutes=19))
        third = run(T0 + timedelta(minutes=20))  # fresh again: recovered
        messages = list(fake.messages)

    assert [r.check("trade_loop").status for r in (first, second, third)] == ["bad", "bad", "ok"]
    assert [int(r.exit_code) for r in (first, second, third)] == [1, 1, 0]
    for report in (first, second, third):
        others = {c.status for c in report.checks if c.name != "trade_loop"}
        assert others == {"ok"}, "only the trade loop changes"
    assert [len(r.alerts) for r in (first, second, third)] == [1, 0, 1]
    assert len(messages) == 2
    assert "trade_loop is bad: no heartbeat for 10m" in json.dumps(messages[0])
    assert "trade_loop recovered (was bad)" in json.dumps(messages[1])
    with engine.connect() as conn:
        levels = conn.execute(
            sa.select(SystemEvent.level)
            .where(SystemEvent.event_type == "HEALTH")
            .order_by(SystemEvent.id)
        ).scalars()
        assert list(levels) == ["ERROR", "INFO"]
        assert conn.execute(
            sa.select(sa.func.count()).select_from(HealthCheck)
        ).scalar_one() == 3 * len(CHECK_NAMES)


def test_min_level_decides_what_is_sent_and_every_change_is_recorded(
    engine: Engine, db_url: str, make_loaded: Callable[..., LoadedConfig], probe: FakeProbe
) -> None:
    loaded = make_loaded(db_url)
    notifier = RecordingNotifier()

    def run(at: datetime) -> Any:
        return run_health(
            loaded,
            notifier=notifier,
            min_level="ERROR",
            probe=probe,
            exchange_builder=builder_for(FakeExchange()),
            now=at,
        )

    first = run(T0)  # trade loop, tick, candles: warn, below ERROR
    assert {a.check: a.notified for a in first.alerts} == {
        "trade_loop": False,
        "tick": False,
        "candles": False,
    }
    assert notifier.sent == []
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, now=T0)
    run(T0 + timedelta(minutes=5))  # bad: sent
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, now=T0 + timedelta(minutes=10))
    run(T0 + timedelta(minutes=10))  # recovered from bad: sent although INFO
    loop_alerts = [(lvl, msg.split(":")[0]) for lvl, msg in notifier.sent if "trade_loop" in msg]
    assert loop_alerts == [
        ("ERROR", "trade_loop is bad"),
        ("INFO", "trade_loop recovered (was bad)"),
    ]


def test_unreachable_database_exits_3_alerts_once_and_its_recovery_once(
    make_loaded: Callable[..., LoadedConfig], sqlite_url: str, probe: FakeProbe
) -> None:
    down = make_loaded("postgresql+psycopg://jiritsu:pw-SECRETdb12@127.0.0.1:1/jiritsu")
    with FakeDiscord() as fake:
        notifier = build_notifier(fake.url_for("8", "tok-down"), min_level="INFO")
        first = run_health(down, notifier=notifier, probe=probe)
        second = run_health(down, notifier=notifier, probe=probe)
        migrate.upgrade(sqlite_url)
        up = make_loaded(sqlite_url)
        third = run_health(
            up, notifier=notifier, probe=probe, exchange_builder=builder_for(FakeExchange())
        )
        bodies = [json.dumps(m) for m in fake.messages]
        sent = b"".join(r.body for r in fake.requests)

    assert (int(first.exit_code), int(second.exit_code), int(third.exit_code)) == (3, 3, 0)
    assert first.check("database").status == "bad"
    assert first.check("trade_loop").status == "skipped"
    assert (first.recorded, third.recorded) == (False, True)
    assert [a.check for a in first.alerts] == ["database"]
    assert second.alerts == [], "the outage was already alerted"
    assert sum("database is bad" in b for b in bodies) == 1
    assert sum("database recovered (was bad)" in b for b in bodies) == 1
    assert b"pw-SECRETdb12" not in sent
    assert "pw-SECRETdb12" not in first.check("database").message
    assert not (Path(str(up.settings.general.data_dir)) / "health-offline.json").exists()


def test_a_database_without_its_schema_is_bad_and_says_what_to_do(
    make_loaded: Callable[..., LoadedConfig], sqlite_url: str, probe: FakeProbe
) -> None:
    Path(sqlite_url.removeprefix("sqlite:///")).touch()  # an empty SQLite database
    report = run_health(make_loaded(sqlite_url), probe=probe)
    database = report.check("database")
    assert database.status == "bad"
    assert "jiritsu db upgrade" in database.message
    assert int(report.exit_code) == 1
    assert report.recorded is False
    assert {report.check(n).status for n in ("trade_loop", "errors", "exchange")} == {"skipped"}


def test_a_missing_database_file_is_exit_3_and_is_not_created(
    make_loaded: Callable[..., LoadedConfig], sqlite_url: str, probe: FakeProbe
) -> None:
    path = Path(sqlite_url.removeprefix("sqlite:///"))
    report = run_health(make_loaded(sqlite_url), probe=probe)
    assert int(report.exit_code) == 3
    assert f"no database at {path}" in report.check("database").message
    assert "jiritsu db upgrade" in report.check("database").message
    assert not path.exists()


# --------------------------------------------------------------------------- the console script


@pytest.fixture
def cli_env(isolated_env: Path) -> dict[str, str]:
    # Only what the test arranges may be bad, not the machine running the tests.
    return jiritsu_env(
        isolated_env, JIRITSU_HEALTH__MEMORY_PCT="100", JIRITSU_HEALTH__DISK_PCT="100"
    )


def test_cli_health_on_a_fresh_install_is_not_red_and_alerts_once(
    cli_env: dict[str, str],
) -> None:
    assert run_jiritsu(["db", "upgrade"], cli_env).returncode == 0
    with FakeDiscord() as fake:
        env = {**cli_env, "DISCORD_WEBHOOK_URL": fake.url_for("9", "tok-cli")}
        first = run_jiritsu(["health", "--json"], env)
        second = run_jiritsu(["health"], env)
        bodies = [json.dumps(m) for m in fake.messages]
    assert first.returncode == 0, first.stdout + first.stderr
    report = json.loads(first.stdout)
    assert [c["name"] for c in report["checks"]] == list(CHECK_NAMES)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["trade_loop"]["status"] == "warn"
    assert checks["trade_loop"]["message"] == "not running (no heartbeat yet)"
    assert checks["exchange"]["status"] == "ok", checks["exchange"]
    assert report["healthy"] is True
    assert second.returncode == 0, second.stdout + second.stderr
    assert "trade_loop" in second.stdout
    assert sum("trade_loop is warn" in b for b in bodies) == 1, "the second run changed nothing"


def test_cli_health_exits_1_when_a_check_is_bad(cli_env: dict[str, str]) -> None:
    assert run_jiritsu(["db", "upgrade"], cli_env).returncode == 0
    from jiritsu.db.engine import make_engine

    engine = make_engine(f"sqlite:///{cli_env['JIRITSU_GENERAL__DATA_DIR']}/jiritsu.db")
    heartbeat.beat(
        engine, heartbeat.TRADE_LOOP, now=datetime.now(timezone.utc) - timedelta(hours=1)
    )
    engine.dispose()
    result = run_jiritsu(["health"], cli_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "UNHEALTHY" in result.stdout


def test_cli_health_exits_3_when_the_database_is_unreachable(cli_env: dict[str, str]) -> None:
    env = {
        **cli_env,
        "JIRITSU_DATABASE__DB_TYPE": "postgresql",
        "JIRITSU_DATABASE__DB_URL": "postgresql://jiritsu:pw-SECRETdb13@127.0.0.1:1/jiritsu",
        "JIRITSU_DATABASE__RECONNECT_ATTEMPTS": "1",
    }
    result = run_jiritsu(["health", "--json"], env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert json.loads(result.stdout)["database_reachable"] is False
    assert "[CRITICAL]" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "pw-SECRETdb13" not in result.stdout + result.stderr


# --------------------------------------------------------------------------- simulated time


def test_a_replay_database_is_judged_on_its_own_clock(
    engine: Engine, db_url: str, make_loaded: Callable[..., LoadedConfig], probe: FakeProbe
) -> None:
    """Right after a replay of January 2024 the data is years old by the wall clock; against
    the replay's clock it is fresh, and a loop that is not running is a warning only."""
    loaded = make_loaded(db_url)
    until = datetime(2024, 2, 2, tzinfo=timezone.utc)
    add_fresh_candles(engine, loaded.settings, until)
    step = {"mode": "replay", "step_time": until.isoformat()}
    wall = datetime.now(timezone.utc)
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, step, now=wall - timedelta(hours=2))
    heartbeat.beat(engine, heartbeat.TRADE_TICK, step, now=wall - timedelta(hours=2))
    exchange = builder_for(FakeExchange())

    before = run_health(loaded, probe=probe, exchange_builder=exchange)
    assert before.check("candles").status == "bad"  # no marker: judged on the wall clock
    assert before.data_time is None

    heartbeat.mark_simulated(engine, until, "replay")
    report = run_health(loaded, probe=probe, exchange_builder=exchange)
    statuses = {c.name: c.status for c in report.checks}
    assert (statuses["candles"], statuses["tick"], statuses["trade_loop"]) == ("ok", "ok", "warn")
    assert (
        "simulated time up to 2024-02-02 00:00 UTC (replay)" in report.check("trade_loop").message
    )
    assert report.data_time == until
    assert report.data_clock == "replay"
    assert int(report.exit_code) == 0

    # The replay's goodbye beat: not running, even though it is seconds old.
    heartbeat.beat(engine, heartbeat.TRADE_LOOP, {**step, "stopped": True})
    done = run_health(loaded, probe=probe, exchange_builder=exchange)
    assert done.check("trade_loop").status == "warn"
    assert done.check("trade_loop").message.startswith("not running: stopped at step 2024-02-02")

    # A live run clears the marker: the wall clock counts again.
    heartbeat.clear_simulated(engine)
    assert heartbeat.simulated_time(engine) is None
    after = run_health(loaded, probe=probe, exchange_builder=exchange)
    assert after.check("candles").status == "bad"


def test_an_alert_says_sent_only_when_a_channel_took_it(
    engine: Engine, db_url: str, make_loaded: Callable[..., LoadedConfig], probe: FakeProbe
) -> None:
    loaded = make_loaded(db_url)
    exchange = builder_for(FakeExchange())
    logged = run_health(
        loaded, notifier=build_notifier(None, min_level="INFO"), probe=probe,
        exchange_builder=exchange,
    )  # fmt: skip
    assert logged.alerts
    assert {a.delivery for a in logged.alerts} == {"logged only"}
    with FakeDiscord() as fake:
        failing = build_notifier(fake.url_for("5", "tok-fail"), min_level="INFO")
        fake.delete_webhook("5")  # Discord answers 404: nothing is delivered
        probe.memory = 95.0  # a new bad check to alert on
        failed = run_health(loaded, notifier=failing, probe=probe, exchange_builder=exchange)
    assert [a.delivery for a in failed.alerts] == ["send failed"]
    with FakeDiscord() as fake:
        notifier = build_notifier(fake.url_for("6", "tok-ok"), min_level="INFO")
        probe.memory = 20.0
        sent = run_health(loaded, notifier=notifier, probe=probe, exchange_builder=exchange)
        assert len(fake.messages) == 1
    assert [(a.check, a.delivery) for a in sent.alerts] == [("memory", "sent")]
