"""systemd units: rendered from the configuration, verified by systemd-analyze, every calendar
event checked against the configuration, installed and removed by the scripts."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import typer

from jiritsu.config import Settings, load_config
from jiritsu.config.master import WEEKDAYS
from jiritsu.ops import systemd
from jiritsu.ops.systemd import (
    MARKER,
    POSTGRESQL_ONLY,
    cron_to_oncalendar,
    daily,
    every_hours,
    every_minutes,
    weekly,
)
from jiritsu_cli.main import app
from tests.conftest import REPO
from tests.processes import JIRITSU

CONFIG = REPO / "config.toml"
INSTALL = REPO / "scripts" / "install-systemd.sh"
UNINSTALL = REPO / "scripts" / "uninstall-systemd.sh"
BASE = datetime(2026, 2, 27, 23, 59, 30, tzinfo=timezone.utc)  # a Friday, before a month end
COMMANDS = {
    "jiritsu-trade.service": "trade-loop",
    "jiritsu-dashboard.service": "dashboard serve",
    "jiritsu-fetch-news.service": "fetch-news",
    "jiritsu-rebalance.service": "rebalance",
    "jiritsu-save-profit.service": "save-profit",
    "jiritsu-tune.service": "tune",
    "jiritsu-health.service": "health",
    "jiritsu-snapshot.service": "snapshot",
    "jiritsu-backup.service": "db backup",
}
CUSTOM = {
    "JIRITSU_NEWS_SENTIMENT__FETCH_INTERVAL_MINUTES": "10",
    "JIRITSU_MASTER_BOT__REBALANCE_INTERVAL_HOURS": "6",
    "JIRITSU_MASTER_BOT__PROFIT_SAVE_DAY": "wednesday",
    "JIRITSU_MASTER_BOT__PROFIT_SAVE_HOUR": "13",
    "JIRITSU_OPTIMIZER__SCHEDULE": "30 2 1,15 * 1",  # day 1 or 15, or any Monday
    "JIRITSU_HEALTH__CHECK_INTERVAL_MINUTES": "2",
}
CUSTOM_2 = {
    "JIRITSU_NEWS_SENTIMENT__FETCH_INTERVAL_MINUTES": "60",
    "JIRITSU_MASTER_BOT__REBALANCE_INTERVAL_HOURS": "12",
    "JIRITSU_MASTER_BOT__PROFIT_SAVE_DAY": "saturday",
    "JIRITSU_MASTER_BOT__PROFIT_SAVE_HOUR": "23",
    "JIRITSU_OPTIMIZER__SCHEDULE": "*/20 9-17 * * 1-5",
    "JIRITSU_HEALTH__CHECK_INTERVAL_MINUTES": "1",
}
POSTGRESQL = {
    "JIRITSU_DATABASE__DB_TYPE": "postgresql",
    "JIRITSU_DATABASE__DB_URL": "postgresql://jiritsu@127.0.0.1:5432/jiritsu",
}
MONOTONIC = {
    "JIRITSU_NEWS_SENTIMENT__FETCH_INTERVAL_MINUTES": "7",
    "JIRITSU_MASTER_BOT__REBALANCE_INTERVAL_HOURS": "5",
}


# --------------------------------------------------------------------------- helpers


def _env_file(directory: Path, data_dir: Path, overrides: dict[str, str]) -> Path:
    path = directory / "jiritsu.env"
    lines = [f"JIRITSU_GENERAL__DATA_DIR={data_dir}"]
    lines += [f'{key}="{value}"' for key, value in overrides.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def render(tmp_path: Path, isolated_env: Path) -> Callable[..., tuple[dict[str, str], Settings]]:
    """Render the units (as root, from this checkout) for the shipped config plus overrides
    given through the env file, as on a server; returns (file name -> text, the settings)."""
    counter = iter(range(1000))

    def run(**overrides: str) -> tuple[dict[str, str], Settings]:
        work = tmp_path / f"render-{next(counter)}"
        work.mkdir()
        env_file = _env_file(work, isolated_env, overrides)
        code = systemd.main(
            [
                "render",
                "--user",
                "root",
                "--workdir",
                str(REPO),
                "--out",
                str(work / "units"),
                "--config",
                str(CONFIG),
                "--env-file",
                str(env_file),
            ]
        )
        assert code == 0
        units = {p.name: p.read_text() for p in sorted((work / "units").iterdir())}
        settings = load_config(
            CONFIG,
            environ={
                "JIRITSU_GENERAL__DATA_DIR": str(isolated_env),
                **overrides,
            },
        ).settings
        return units, settings

    return run


def _sqlite_units() -> list[str]:
    return [n for n in systemd.template_names() if n not in POSTGRESQL_ONLY]


def _values(text: str, key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]


def _value(text: str, key: str) -> str:
    [value] = _values(text, key)
    return value


def _verify(systemd_analyze: str, directory: Path) -> subprocess.CompletedProcess[str]:
    files = sorted(str(p) for p in directory.iterdir())
    return subprocess.run(
        [systemd_analyze, "verify", *files], capture_output=True, text=True, timeout=120
    )


def _elapses(systemd_analyze: str, event: str, count: int) -> list[datetime]:
    """The next ``count`` times ``systemd-analyze calendar`` gives for ``event`` after BASE."""
    done = subprocess.run(
        [
            systemd_analyze,
            "calendar",
            f"--iterations={count}",
            f"--base-time={BASE:%Y-%m-%d %H:%M:%S} UTC",
            event,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TZ": "UTC"},
    )
    assert done.returncode == 0, f"systemd cannot parse {event!r}: {done.stderr}"
    found = re.findall(
        r"(?:Next elapse|Iter\. #\d+): \w{3} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", done.stdout
    )
    assert len(found) == count, done.stdout
    return [datetime.strptime(f, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc) for f in found]


def _timer_elapses(systemd_analyze: str, timer: str, count: int) -> list[datetime]:
    """A timer fires at the union of its OnCalendar events."""
    times: set[datetime] = set()
    for event in _values(timer, "OnCalendar"):
        assert event.endswith(" UTC"), f"not in UTC: {event}"
        times.update(_elapses(systemd_analyze, event, count))
    return sorted(times)[:count]


def _minutes_after(start: datetime) -> Iterator[datetime]:
    t = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while True:
        yield t
        t += timedelta(minutes=1)


def _expected(match: Callable[[datetime], bool], count: int) -> list[datetime]:
    out = []
    for t in _minutes_after(BASE):
        if match(t):
            out.append(t)
            if len(out) == count:
                return out
    raise AssertionError("unreachable")  # pragma: no cover


def _cli_commands() -> set[str]:
    found = set()

    def walk(group: object, prefix: str) -> None:
        for name, cmd in group.commands.items():  # type: ignore[attr-defined]
            full = f"{prefix}{name}"
            found.add(full)
            if hasattr(cmd, "commands"):
                walk(cmd, f"{full} ")

    walk(typer.main.get_command(app), "")
    return found


# --------------------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    ("cron", "events"),
    [
        ("0 1 1 * *", ["*-*-01 01:00:00 UTC"]),
        ("*/5 * * * *", ["*-*-* *:00/5:00 UTC"]),
        ("30 2 * * 1-5", ["Mon..Fri *-*-* 02:30:00 UTC"]),
        ("0 0 1,15 * 0", ["*-*-01,15 00:00:00 UTC", "Sun *-*-* 00:00:00 UTC"]),
        ("0 9-17 * * *", ["*-*-* 09..17:00:00 UTC"]),
        ("15,45 */6 * 1-3 *", ["*-01..03-* 00/6:15,45:00 UTC"]),
        ("@weekly", ["Sun *-*-* 00:00:00 UTC"]),
        ("0 0 * * 6,7", ["Sat,Sun *-*-* 00:00:00 UTC"]),
        ("5 4 * jan,jul sun", ["Sun *-01,07-* 04:05:00 UTC"]),
        # A day-of-month field starting with "*" still restricts the days, ANDed with weekdays.
        ("0 0 */2 * *", ["*-*-01/2 00:00:00 UTC"]),
        ("0 0 */2 * 1", ["Mon *-*-01/2 00:00:00 UTC"]),
    ],
)
def test_cron_to_oncalendar(cron: str, events: list[str]) -> None:
    assert cron_to_oncalendar(cron) == events


@pytest.mark.parametrize(
    "cron", ["0 0 */2 * *", "0 0 */2 * 1", "0 0 1,15 * 0", "30 2 * * 1-5", "0 1 1 * *"]
)
def test_systemd_fires_exactly_when_cron_does(systemd_analyze: str, cron: str) -> None:
    from jiritsu.config.cron import parse_cron

    schedule = parse_cron(cron)
    expected, at = [], BASE
    for _ in range(6):
        at = schedule.next_after(at)
        expected.append(at)
    fired: set[datetime] = set()
    for event in cron_to_oncalendar(cron):
        fired.update(_elapses(systemd_analyze, event, 6))
    assert sorted(fired)[:6] == expected


def test_intervals_are_calendar_events_when_they_divide_the_hour_or_day() -> None:
    assert every_minutes(5).lines == ("OnCalendar=*-*-* *:00/5:00 UTC",)
    assert every_minutes(1).lines == ("OnCalendar=*-*-* *:*:00 UTC",)
    assert every_minutes(120).lines == ("OnCalendar=*-*-* 00/2:00:00 UTC",)
    assert every_hours(4).lines == ("OnCalendar=*-*-* 00/4:00:00 UTC",)
    assert every_hours(24).lines == ("OnCalendar=*-*-* 00:00:00 UTC",)
    assert weekly("Sunday", 0).lines == ("OnCalendar=Sun *-*-* 00:00:00 UTC",)
    assert daily(2, 30).lines == ("OnCalendar=*-*-* 02:30:00 UTC",)
    # An interval no calendar repeats evenly is a monotonic timer, not an uneven calendar.
    assert every_minutes(7).lines == ("OnBootSec=7min", "OnUnitActiveSec=7min")
    assert every_minutes(90).lines == ("OnBootSec=90min", "OnUnitActiveSec=90min")
    assert every_hours(5).lines == ("OnBootSec=5h", "OnUnitActiveSec=5h")
    assert every_hours(48).oncalendar == []
    with pytest.raises(ValueError, match="at least"):
        every_minutes(0)


# --------------------------------------------------------------------------- rendering


def test_rendered_units_are_complete_and_run_real_commands(
    render: Callable[..., tuple[dict[str, str], Settings]], isolated_env: Path
) -> None:
    units, _ = render()
    services = {n: t for n, t in units.items() if n.endswith(".service")}
    timers = {n: t for n, t in units.items() if n.endswith(".timer")}
    assert set(services) == set(COMMANDS)
    assert {n.removesuffix(".timer") for n in timers} == {
        n.removesuffix(".service") for n, t in services.items() if "Type=oneshot" in t
    }, "every oneshot job has a timer and every timer a job"
    cli = _cli_commands()
    for name, text in units.items():
        assert text.startswith(MARKER)
        assert not re.search(r"@[A-Z_]+@", text), f"{name}: placeholder left"
    hardening = set()
    for name, text in services.items():
        assert _value(text, "ExecStart") == f"{JIRITSU} {COMMANDS[name]}"
        assert COMMANDS[name] in cli, f"{name} runs a command the CLI does not have"
        assert _value(text, "User") == "root"
        assert _value(text, "Environment") == f"JIRITSU_CONFIG={CONFIG}"
        assert _value(text, "EnvironmentFile").startswith("-/")
        assert _value(text, "WorkingDirectory") == str(isolated_env)
        assert _value(text, "ReadWritePaths") == str(isolated_env)
        for key, want in [
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("PrivateTmp", "yes"),
            ("ProtectHome", "read-only"),
        ]:
            assert _value(text, key) == want, (name, key)
        block = text[text.index("NoNewPrivileges=") : text.index("UMask=")]
        hardening.add(block)
    assert len(hardening) == 1, "the hardening differs between services"

    trade = services["jiritsu-trade.service"]
    for key, want in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("Restart", "always"),
        ("RestartSec", "15s"),
        ("StartLimitIntervalSec", "15min"),
        ("StartLimitBurst", "5"),
        ("KillSignal", "SIGTERM"),
        ("TimeoutStopSec", "90s"),
        ("WatchdogSec", "180s"),
        ("RestartPreventExitStatus", "2"),
    ]:
        assert _value(trade, key) == want, key
    for name, text in timers.items():
        assert _value(text, "Persistent") == "true"
        assert _value(text, "AccuracySec") == "1s"
        assert _value(text, "WantedBy") == "timers.target"
        jitter = _value(text, "RandomizedDelaySec")
        if name in ("jiritsu-fetch-news.timer", "jiritsu-health.timer"):
            assert jitter == "30s"
        elif name != "jiritsu-backup.timer":
            assert jitter == "0", f"{name} must run at the configured time"


def test_postgresql_gets_the_dashboard_mirror_before_the_dashboard(
    render: Callable[..., tuple[dict[str, str], Settings]],
) -> None:
    sqlite_units, _ = render()
    assert not set(POSTGRESQL_ONLY) & set(sqlite_units)
    assert "jiritsu-dashboard-mirror" not in sqlite_units["jiritsu-dashboard.service"]

    units, _ = render(**POSTGRESQL)
    assert set(POSTGRESQL_ONLY) <= set(units)
    mirror = units["jiritsu-dashboard-mirror.service"]
    assert _value(mirror, "ExecStart") == f"{JIRITSU} dashboard mirror"
    assert "dashboard mirror" in _cli_commands()
    assert _value(mirror, "Type") == "oneshot"
    assert _values(units["jiritsu-dashboard-mirror.timer"], "OnCalendar") == ["*-*-* *:00/5:00 UTC"]
    dashboard = units["jiritsu-dashboard.service"]
    assert "Wants=jiritsu-dashboard-mirror.service" in dashboard.splitlines()
    assert "After=jiritsu-dashboard-mirror.service" in dashboard.splitlines()


def test_writable_paths_follow_the_configuration(
    render: Callable[..., tuple[dict[str, str], Settings]], isolated_env: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "elsewhere" / "backups"
    units, _ = render(JIRITSU_BACKUP__DIR=str(backups))
    assert _value(units["jiritsu-backup.service"], "ReadWritePaths") == f"{isolated_env} {backups}"
    inside, _ = render(JIRITSU_BACKUP__DIR=str(isolated_env / "b"))
    assert _value(inside["jiritsu-backup.service"], "ReadWritePaths") == str(isolated_env)


def test_protect_home_hides_homes_unless_something_lives_there() -> None:
    assert systemd._protect_home([Path("/opt/jiritsu/current"), Path("/var/lib/jiritsu")]) == "yes"
    assert systemd._protect_home([Path("/opt/x"), Path("/root/.pyenv/bin/python3")]) == "read-only"
    assert systemd._protect_home([Path("/home/ops/jiritsu")]) == "read-only"


@pytest.mark.parametrize(
    "overrides",
    [{}, CUSTOM, CUSTOM_2, MONOTONIC, POSTGRESQL],
    ids=["default", "custom", "custom-2", "monotonic", "postgresql"],
)
def test_systemd_analyze_verify_accepts_the_rendered_units(
    systemd_analyze: str,
    render: Callable[..., tuple[dict[str, str], Settings]],
    tmp_path: Path,
    overrides: dict[str, str],
) -> None:
    units, _ = render(**overrides)
    out = tmp_path / "verify"
    out.mkdir()
    for name, text in units.items():
        (out / name).write_text(text)
    done = _verify(systemd_analyze, out)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == "", "verify warned (unknown key, bad value, ...)"


def test_verify_would_catch_a_broken_unit(
    systemd_analyze: str, render: Callable[..., tuple[dict[str, str], Settings]], tmp_path: Path
) -> None:
    units, _ = render()
    out = tmp_path / "broken"
    out.mkdir()
    (out / "jiritsu-health.service").write_text(
        units["jiritsu-health.service"].replace(str(JIRITSU), "/nonexistent/jiritsu")
    )
    done = _verify(systemd_analyze, out)
    assert done.returncode != 0
    assert "not executable" in done.stderr


@pytest.mark.parametrize("overrides", [{}, CUSTOM, CUSTOM_2], ids=["default", "custom", "custom-2"])
def test_every_oncalendar_fires_when_the_configuration_says(
    systemd_analyze: str,
    render: Callable[..., tuple[dict[str, str], Settings]],
    overrides: dict[str, str],
) -> None:
    units, settings = render(**overrides)
    n = 8

    def timer(name: str) -> list[datetime]:
        return _timer_elapses(systemd_analyze, units[f"jiritsu-{name}.timer"], n)

    # tune: the cron expression, evaluated by the configuration's own cron parser.
    cron = settings.optimizer.cron
    expected, t = [], BASE
    for _ in range(n):
        t = cron.next_after(t)
        expected.append(t)
    assert timer("tune") == expected

    master = settings.master_bot
    weekday = WEEKDAYS.index(master.profit_save_day)
    assert timer("save-profit") == _expected(
        lambda t: (t.weekday(), t.hour, t.minute) == (weekday, master.profit_save_hour, 0), n
    )
    hours = master.rebalance_interval_hours
    assert timer("rebalance") == _expected(lambda t: t.minute == 0 and t.hour % hours == 0, n)
    for name, minutes in [
        ("fetch-news", settings.news_sentiment.fetch_interval_minutes),
        ("health", settings.health.check_interval_minutes),
    ]:
        every = timedelta(minutes=minutes)
        assert timer(name) == _expected(
            lambda t, every=every: (t - t.replace(hour=0, minute=0)) % every == timedelta(0), n
        ), name
    assert timer("snapshot") == _expected(lambda t: t.minute == 0, n)
    assert timer("backup") == _expected(lambda t: (t.hour, t.minute) == (2, 30), n)


def test_intervals_without_an_even_calendar_become_monotonic_timers(
    render: Callable[..., tuple[dict[str, str], Settings]],
) -> None:
    units, _ = render(**MONOTONIC)
    news, rebalance = units["jiritsu-fetch-news.timer"], units["jiritsu-rebalance.timer"]
    assert _values(news, "OnCalendar") == []
    assert _value(news, "OnUnitActiveSec") == "7min"
    assert _value(rebalance, "OnUnitActiveSec") == "5h"
    assert "every 5 hours" in _value(rebalance, "Description")


def test_render_rejects_a_bad_configuration_and_unsafe_paths(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _env_file(tmp_path, isolated_env, {"JIRITSU_OPTIMIZER__SCHEDULE": "61 * * * *"})
    args = ["render", "--user", "root", "--out", str(tmp_path / "u"), "--config", str(CONFIG)]
    assert systemd.main([*args, "--workdir", str(REPO), "--env-file", str(bad)]) == 2
    assert "optimizer.schedule" in capsys.readouterr().err
    good = _env_file(tmp_path, isolated_env, {})
    assert systemd.main([*args, "--workdir", "/opt/my jiritsu", "--env-file", str(good)]) == 2
    assert "no spaces" in capsys.readouterr().err
    assert not (tmp_path / "u").exists()


def test_python_m_schedules_lists_every_timer(isolated_env: Path) -> None:
    done = subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "python"),
            "-m",
            "jiritsu.ops.systemd",
            "schedules",
            "--config",
            str(CONFIG),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=isolated_env.parent,
    )
    assert done.returncode == 0, done.stderr
    assert "jiritsu-tune.timer: at cron '0 1 1 * *' (UTC)" in done.stdout
    assert "OnCalendar=*-*-* *:00/5:00 UTC" in done.stdout


# --------------------------------------------------------------------------- the scripts


@pytest.fixture
def fake_systemctl(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with a systemctl that records its arguments (one call per line)."""
    bindir = tmp_path / "fakebin"
    bindir.mkdir()
    log = tmp_path / "systemctl.log"
    (bindir / "systemctl").write_text(f'#!/usr/bin/env bash\necho "$*" >>"{log}"\n')
    (bindir / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}"}
    return env, log


def _script(
    path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(path), *args], capture_output=True, text=True, timeout=300, env=env or dict(os.environ)
    )


def _install_args(tmp_path: Path, isolated_env: Path, dest: Path) -> list[str]:
    env_file = _env_file(tmp_path, isolated_env / "var", {})
    return [
        "--user",
        "root",
        "--config",
        str(CONFIG),
        "--env-file",
        str(env_file),
        "--dest",
        str(dest),
    ]


def test_install_renders_verifies_installs_and_enables(
    systemd_analyze: str,
    tmp_path: Path,
    isolated_env: Path,
    fake_systemctl: tuple[dict[str, str], Path],
) -> None:
    env, log = fake_systemctl
    dest = tmp_path / "dest"
    dest.mkdir()
    done = _script(INSTALL, *_install_args(tmp_path, isolated_env, dest), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    installed = sorted(p.name for p in dest.iterdir())
    assert installed == _sqlite_units()
    for path in dest.iterdir():
        assert path.read_text().startswith(MARKER)
        assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert (isolated_env / "var").is_dir(), "the data dir is created for the service user"
    calls = log.read_text().splitlines()
    timers = [n for n in installed if n.endswith(".timer")]
    assert calls == [
        "daemon-reload",
        "enable --now "
        + " ".join(sorted([*timers, "jiritsu-dashboard.service", "jiritsu-trade.service"])),
        "restart " + " ".join(timers),
    ]
    again = _script(INSTALL, *_install_args(tmp_path, isolated_env, dest), env=env)
    assert again.returncode == 0, "installing twice is fine"


def test_install_dry_run_and_no_enable_change_nothing_they_should_not(
    systemd_analyze: str,
    tmp_path: Path,
    isolated_env: Path,
    fake_systemctl: tuple[dict[str, str], Path],
) -> None:
    env, log = fake_systemctl
    dest = tmp_path / "dest"
    dest.mkdir()
    dry = _script(INSTALL, *_install_args(tmp_path, isolated_env, dest), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert "+ systemctl enable --now" in dry.stdout
    assert f"----- {dest}/jiritsu-trade.service" in dry.stdout
    assert list(dest.iterdir()) == []
    assert not log.exists()
    files_only = _script(
        INSTALL, *_install_args(tmp_path, isolated_env, dest), "--no-enable", env=env
    )
    assert files_only.returncode == 0, files_only.stderr
    assert len(list(dest.iterdir())) == len(_sqlite_units())
    assert not log.exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--bogus"], id="unknown-option"),
        pytest.param(["--user"], id="missing-value"),
        pytest.param(["--user", "no-such-user-xyz"], id="no-such-user"),
        pytest.param(["--user", "root", "--dest", "relative/dir"], id="relative-dest"),
        pytest.param(["--user", "root", "--config", "/nonexistent/config.toml"], id="no-config"),
        pytest.param(["--user", "root", "--workdir", "/tmp"], id="workdir-without-venv"),
    ],
)
def test_install_usage_errors_exit_2(args: list[str]) -> None:
    done = _script(INSTALL, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "usage: scripts/install-systemd.sh" in done.stderr


def test_install_exits_2_on_a_bad_configuration(tmp_path: Path, isolated_env: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    args = _install_args(tmp_path, isolated_env, dest)
    env_file = Path(args[args.index("--env-file") + 1])
    env_file.write_text('JIRITSU_OPTIMIZER__SCHEDULE="0 1 31 2 *"\n')  # never fires
    done = _script(INSTALL, *args, "--no-enable")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "optimizer.schedule" in done.stderr
    assert list(dest.iterdir()) == []


def test_uninstall_removes_only_rendered_units(
    systemd_analyze: str,
    tmp_path: Path,
    isolated_env: Path,
    fake_systemctl: tuple[dict[str, str], Path],
) -> None:
    env, log = fake_systemctl
    dest = tmp_path / "dest"
    dest.mkdir()
    assert (
        _script(INSTALL, *_install_args(tmp_path, isolated_env, dest), "--no-enable").returncode
        == 0
    )
    handmade = dest / "jiritsu-custom.service"
    handmade.write_text("[Service]\nExecStart=/bin/true\n")

    dry = _script(UNINSTALL, "--dest", str(dest), "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert len(list(dest.iterdir())) == len(_sqlite_units()) + 1
    assert not log.exists()

    done = _script(UNINSTALL, "--dest", str(dest), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["jiritsu-custom.service"]
    calls = log.read_text().splitlines()
    assert calls[0].startswith("disable --now jiritsu-backup.timer")
    assert all(u.endswith(".timer") for u in calls[0].split()[2:]), "timers first"
    assert calls[1].startswith("disable --now jiritsu-backup.service")
    assert calls[2] == "daemon-reload"
    assert (isolated_env / "var").is_dir(), "data is kept"

    nothing = _script(UNINSTALL, "--dest", str(dest), "--no-disable")
    assert nothing.returncode == 0
    assert "no Jiritsu units installed" in nothing.stdout
    assert _script(UNINSTALL, "--what").returncode == 2
