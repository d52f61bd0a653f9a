"""Render the systemd units in ``systemd/`` for one server, with schedules from the configuration.

The templates hold ``@PLACEHOLDER@`` fields: the service user and group, the checkout the units
run from (``@WORKDIR@``) and its ``jiritsu`` executable, the configuration and env files, the
writable paths, and one ``[Timer]`` schedule per timer. The schedules are derived here, so that
the conversion from the configuration (a cron expression, "every N hours", a weekday and hour)
to systemd calendar events is tested like any other code:

- ``jiritsu-fetch-news.timer``: every ``news_sentiment.fetch_interval_minutes``;
- ``jiritsu-rebalance.timer``: every ``master_bot.rebalance_interval_hours``;
- ``jiritsu-save-profit.timer``: ``master_bot.profit_save_day`` at ``profit_save_hour``:00;
- ``jiritsu-tune.timer``: the cron expression ``optimizer.schedule``;
- ``jiritsu-health.timer``: every ``health.check_interval_minutes``;
- ``jiritsu-snapshot.timer``: hourly; ``jiritsu-backup.timer``: daily at 02:30;
- ``jiritsu-dashboard-mirror.timer``: every 5 minutes, PostgreSQL only (Datasette reads SQLite:
  the mirror is its copy). The dashboard service then also starts after a first mirror run.

Every calendar event is in UTC (``... UTC``), as the configuration's times are. An interval that
no calendar event repeats evenly (every 7 minutes, every 5 hours) becomes a monotonic timer
(``OnUnitActiveSec=``) instead of a calendar event with an uneven gap at midnight.

``python -m jiritsu.ops.systemd render --user U --workdir W --out DIR ...`` is what
``scripts/install-systemd.sh`` runs; ``... schedules`` prints the timers' schedules.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jiritsu.config.cron import CronError, parse_cron
from jiritsu.resources import ROOT

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig, Settings

__all__ = [
    "MARKER",
    "TEMPLATE_DIR",
    "InstallSettings",
    "Schedule",
    "cron_to_oncalendar",
    "daily",
    "every_hours",
    "every_minutes",
    "from_cron",
    "install_settings",
    "main",
    "render_units",
    "schedules",
    "weekly",
    "write_units",
]

TEMPLATE_DIR = ROOT / "systemd"
MARKER = "# Rendered by jiritsu.ops.systemd"
HOME_DIRS = ("/home", "/root", "/run/user")
BACKUP_TIME = (2, 30)  # daily backup at 02:30 UTC: after the monthly tune (01:00) has started
MIRROR_EVERY_MINUTES = 5
POSTGRESQL_ONLY = ("jiritsu-dashboard-mirror.service", "jiritsu-dashboard-mirror.timer")
_MIRROR_DEPS = "Wants=jiritsu-dashboard-mirror.service\nAfter=jiritsu-dashboard-mirror.service"
_NO_MIRROR = "# (SQLite: the dashboard reads the database itself, no mirror unit)"
_PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")
_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/+@:,=-]*$")  # no spaces, quotes, '$' or '%' specifiers
_SAFE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_WEEKDAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # cron numbering: 0 = Sunday
_WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True)
class Schedule:
    """The ``[Timer]`` lines of one timer and a human description of them."""

    lines: tuple[str, ...]
    description: str

    @property
    def oncalendar(self) -> list[str]:
        """The ``OnCalendar=`` values (empty for a monotonic timer)."""
        return [line.split("=", 1)[1] for line in self.lines if line.startswith("OnCalendar=")]


def _calendar(description: str, *events: str) -> Schedule:
    return Schedule(tuple(f"OnCalendar={event}" for event in events), description)


def _monotonic(description: str, span: str) -> Schedule:
    return Schedule((f"OnBootSec={span}", f"OnUnitActiveSec={span}"), description)


def every_minutes(minutes: int) -> Schedule:
    """Every ``minutes``, on the clock (``*:00/15``) when the hour divides evenly."""
    if minutes < 1:
        raise ValueError("the interval must be at least one minute")
    description = "every minute" if minutes == 1 else f"every {minutes} minutes"
    if minutes < 60 and 60 % minutes == 0:
        step = "*" if minutes == 1 else f"00/{minutes}"
        return _calendar(description, f"*-*-* *:{step}:00 UTC")
    if minutes % 60 == 0 and 24 % (minutes // 60) == 0:
        return Schedule(every_hours(minutes // 60).lines, description)
    return _monotonic(description, f"{minutes}min")


def every_hours(hours: int) -> Schedule:
    """Every ``hours``, on the hour from midnight UTC when the day divides evenly."""
    if hours < 1:
        raise ValueError("the interval must be at least one hour")
    description = "every hour" if hours == 1 else f"every {hours} hours"
    if 24 % hours == 0:
        step = "00" if hours == 24 else ("*" if hours == 1 else f"00/{hours}")
        return _calendar(description, f"*-*-* {step}:00:00 UTC")
    return _monotonic(description, f"{hours}h")


def weekly(day: str, hour: int, minute: int = 0) -> Schedule:
    """Once a week, on ``day`` (``"sunday"``) at ``hour:minute`` UTC."""
    name = day.strip().lower()
    if name not in _WEEKDAY_NAMES:
        raise ValueError(f"not a weekday: {day!r}")
    short = name[:3].capitalize()
    return _calendar(
        f"on {name.capitalize()}s at {hour:02d}:{minute:02d} UTC",
        f"{short} *-*-* {hour:02d}:{minute:02d}:00 UTC",
    )


def daily(hour: int, minute: int = 0) -> Schedule:
    """Once a day at ``hour:minute`` UTC."""
    return _calendar(
        f"daily at {hour:02d}:{minute:02d} UTC", f"*-*-* {hour:02d}:{minute:02d}:00 UTC"
    )


def _numbers(values: Iterable[int], low: int, high: int) -> str:
    """A calendar component: ``*``, ``a/step``, or a list of values and ``a..b`` ranges."""
    items = sorted(set(values))
    if items == list(range(low, high + 1)):
        return "*"
    if len(items) >= 3:
        step = items[1] - items[0]
        if items == list(range(items[0], high + 1, step)) and items[-1] + step > high:
            return f"{items[0]:02d}/{step}"
    parts: list[str] = []
    run: list[int] = []
    for value in [*items, None]:
        if run and (value is None or value != run[-1] + 1):
            if len(run) >= 3:
                parts.append(f"{run[0]:02d}..{run[-1]:02d}")
            else:
                parts.extend(f"{v:02d}" for v in run)
            run = []
        if value is not None:
            run.append(value)
    return ",".join(parts)


def _weekdays(values: Iterable[int]) -> str:
    order = [1, 2, 3, 4, 5, 6, 0]  # Monday first, so that Mon..Fri is one range
    chosen = [d for d in order if d in set(values)]
    parts: list[str] = []
    run: list[int] = []
    for day in [*chosen, None]:
        if run and (day is None or order.index(day) != order.index(run[-1]) + 1):
            if len(run) >= 3:
                parts.append(f"{_WEEKDAYS[run[0]]}..{_WEEKDAYS[run[-1]]}")
            else:
                parts.extend(_WEEKDAYS[d] for d in run)
            run = []
        if day is not None:
            run.append(day)
    return ",".join(parts)


def cron_to_oncalendar(expression: str) -> list[str]:
    """The ``OnCalendar=`` values (UTC) that fire exactly when the cron ``expression`` does.

    Day matching follows :class:`jiritsu.config.cron.CronSchedule`: when both day-of-month and
    day-of-week are restricted a day matches if either does, which systemd can only express as
    two events (it ANDs the parts of one event).
    """
    cron = parse_cron(expression)
    time_part = f"{_numbers(cron.hours, 0, 23)}:{_numbers(cron.minutes, 0, 59)}:00"
    months = _numbers(cron.months, 1, 12)
    days = _numbers(cron.days, 1, 31)
    weekdays = _weekdays(cron.weekdays)
    by_date = f"*-{months}-{days} {time_part} UTC"
    by_weekday = f"{weekdays} *-{months}-* {time_part} UTC"
    if cron.days_restricted and cron.weekdays_restricted:
        return [by_date, by_weekday]
    # Otherwise a day must match both fields ("*/2" in day-of-month still restricts the days),
    # which one event expresses: systemd ANDs its parts.
    prefix = f"{weekdays} " if len(cron.weekdays) < 7 else ""
    return [f"{prefix}*-{months}-{days} {time_part} UTC"]


def from_cron(expression: str) -> Schedule:
    """A calendar schedule for a cron expression."""
    return _calendar(f"at cron {expression!r} (UTC)", *cron_to_oncalendar(expression))


def schedules(settings: Settings) -> dict[str, Schedule]:
    """Each timer's schedule (keyed by the unit's short name, e.g. ``"health"``)."""
    master = settings.master_bot
    return {
        "fetch-news": every_minutes(settings.news_sentiment.fetch_interval_minutes),
        "rebalance": every_hours(master.rebalance_interval_hours),
        "save-profit": weekly(master.profit_save_day, master.profit_save_hour),
        "tune": from_cron(settings.optimizer.schedule),
        "health": every_minutes(settings.health.check_interval_minutes),
        "snapshot": every_hours(1),
        "backup": daily(*BACKUP_TIME),
        "dashboard-mirror": every_minutes(MIRROR_EVERY_MINUTES),
    }


# --------------------------------------------------------------------------- install settings


@dataclass(frozen=True)
class InstallSettings:
    """Everything a template needs besides the schedules."""

    user: str
    group: str
    workdir: Path
    jiritsu: Path
    config: Path
    env_file: Path
    data_dir: Path
    read_write: tuple[Path, ...]
    protect_home: str
    watchdog_seconds: int

    def values(self) -> dict[str, str]:
        return {
            "USER": self.user,
            "GROUP": self.group,
            "WORKDIR": str(self.workdir),
            "JIRITSU": str(self.jiritsu),
            "CONFIG": str(self.config),
            "ENV_FILE": str(self.env_file),
            "DATA_DIR": str(self.data_dir),
            "READ_WRITE_PATHS": " ".join(str(p) for p in self.read_write),
            "PROTECT_HOME": self.protect_home,
            "WATCHDOG_SEC": f"{self.watchdog_seconds}s",
        }


def _safe_path(path: Path | str, what: str) -> Path:
    text = os.path.normpath(str(path))
    if not _SAFE_PATH.match(text):
        raise ValueError(
            f"{what} must be an absolute path of letters, digits and ._/+@:,=- only "
            f"(no spaces, quotes, '$' or '%'): {text!r}"
        )
    return Path(text)


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _writable_paths(settings: Settings, db_url: str) -> tuple[Path, ...]:
    """The data dir, plus the backup dir, SQLite file's dir and dashboard mirror's dir when
    they live outside it (SQLite writes its -wal/-shm files next to the database)."""
    data_dir = _safe_path(settings.general.data_dir, "general.data_dir")
    paths = [data_dir, Path(settings.backup_dir), Path(settings.dashboard_mirror_path).parent]
    if db_url.startswith("sqlite"):
        from sqlalchemy.engine import make_url

        database = make_url(db_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            paths.append(Path(database).parent)
    chosen: list[Path] = []
    for path in paths:
        path = _safe_path(path, "a writable path")
        if not any(_inside(path, kept) for kept in chosen):
            chosen = [kept for kept in chosen if not _inside(kept, path)] + [path]
    return tuple(chosen)


def _protect_home(paths: Iterable[Path]) -> str:
    """``yes`` hides the home directories; ``read-only`` when anything we need lives there."""
    for path in paths:
        for home in HOME_DIRS:
            if _inside(Path(path), Path(home)):
                return "read-only"
    return "yes"


def install_settings(
    loaded: LoadedConfig,
    *,
    user: str,
    group: str,
    workdir: Path,
    config: Path,
    env_file: Path,
    jiritsu: Path | None = None,
) -> InstallSettings:
    """Validate the install parameters and derive the rest from the configuration."""
    for value, what in ((user, "the user"), (group, "the group")):
        if not _SAFE_NAME.match(value):
            raise ValueError(f"{what} is not a valid name: {value!r}")
    workdir = _safe_path(workdir, "the working directory")
    jiritsu = _safe_path(jiritsu or workdir / ".venv" / "bin" / "jiritsu", "the jiritsu executable")
    config = _safe_path(config, "the configuration file")
    env_file = _safe_path(env_file, "the env file")
    settings = loaded.settings
    read_write = _writable_paths(settings, loaded.db_url)
    python = workdir / ".venv" / "bin" / "python"
    seen = [workdir, Path(os.path.realpath(workdir)), config, env_file, *read_write, jiritsu]
    seen += [Path(os.path.realpath(python)), Path(os.path.realpath(jiritsu))]
    return InstallSettings(
        user=user,
        group=group,
        workdir=workdir,
        jiritsu=jiritsu,
        config=config,
        env_file=env_file,
        data_dir=_safe_path(settings.general.data_dir, "general.data_dir"),
        read_write=read_write,
        protect_home=_protect_home(seen),
        watchdog_seconds=settings.health.heartbeat_max_age_seconds,
    )


# --------------------------------------------------------------------------- rendering


def template_names(template_dir: Path = TEMPLATE_DIR) -> list[str]:
    """The unit templates, sorted (``jiritsu-*.service`` and ``jiritsu-*.timer``)."""
    return sorted(
        p.name for p in Path(template_dir).glob("jiritsu-*") if p.suffix in (".service", ".timer")
    )


def render_units(
    settings: Settings,
    install: InstallSettings,
    template_dir: Path = TEMPLATE_DIR,
) -> dict[str, str]:
    """File name -> rendered unit text, for every template that applies to the configured
    database (the dashboard mirror only for PostgreSQL); ValueError for an unknown field."""
    postgresql = settings.database.db_type == "postgresql"
    values = install.values()
    values["DASHBOARD_MIRROR_DEPS"] = _MIRROR_DEPS if postgresql else _NO_MIRROR
    for name, schedule in schedules(settings).items():
        key = name.upper().replace("-", "_")
        values[f"{key}_SCHEDULE"] = "\n".join(schedule.lines)
        values[f"{key}_WHEN"] = schedule.description
    units: dict[str, str] = {}
    for name in template_names(template_dir):
        if name in POSTGRESQL_ONLY and not postgresql:
            continue
        text = (Path(template_dir) / name).read_text(encoding="utf-8")

        def fill(match: re.Match[str], name: str = name) -> str:
            key = match.group(1)
            if key not in values:
                raise ValueError(f"{name}: unknown placeholder @{key}@")
            return values[key]

        body = _PLACEHOLDER.sub(fill, text)
        header = (
            f"{MARKER} from systemd/{name}; edit the template and re-run\n"
            "# scripts/install-systemd.sh rather than this file.\n"
        )
        units[name] = header + body
    return units


def write_units(units: Mapping[str, str], out_dir: Path) -> list[Path]:
    """Write rendered units (mode 0644) into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sorted(units.items()):
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o644)
        written.append(path)
    return written


# --------------------------------------------------------------------------- python -m


def _load(config: Path, env_file: Path | None) -> LoadedConfig:
    """The configuration as the services will see it: the file plus the env file's variables
    (the installer's own shell environment is not theirs)."""
    from jiritsu.config import load_config
    from jiritsu.config.loader import read_dotenv

    environ: dict[str, str] = {}
    if env_file is not None and env_file.is_file():
        environ = read_dotenv(env_file)
    return load_config(config, environ=environ)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m jiritsu.ops.systemd",
        description="Render Jiritsu's systemd units from the configuration.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="render every unit into --out")
    render.add_argument("--user", required=True, help="service user")
    render.add_argument("--group", help="service group (default: the user)")
    render.add_argument("--workdir", required=True, type=Path, help="checkout the units run")
    render.add_argument("--out", required=True, type=Path, help="directory for the units")
    render.add_argument("--config", required=True, type=Path, help="configuration file")
    render.add_argument("--env-file", type=Path, default=Path("/etc/jiritsu/jiritsu.env"))
    render.add_argument("--jiritsu", type=Path, help="executable (default: WORKDIR/.venv/bin)")
    render.add_argument("--templates", type=Path, default=TEMPLATE_DIR, help=argparse.SUPPRESS)
    show = sub.add_parser("schedules", help="print each timer's schedule")
    show.add_argument("--config", required=True, type=Path, help="configuration file")
    show.add_argument("--env-file", type=Path, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints ``key=value`` lines for the install script. Exit 2 on bad input."""
    from jiritsu.errors import ConfigError

    args = _parser().parse_args(argv)
    try:
        loaded = _load(args.config.absolute(), args.env_file)
        if args.command == "schedules":
            for name, schedule in schedules(loaded.settings).items():
                print(f"jiritsu-{name}.timer: {schedule.description}")
                for line in schedule.lines:
                    print(f"  {line}")
            return 0
        install = install_settings(
            loaded,
            user=args.user,
            group=args.group or args.user,
            workdir=args.workdir,
            config=args.config.absolute(),
            env_file=args.env_file,
            jiritsu=args.jiritsu,
        )
        units = render_units(loaded.settings, install, args.templates)
    except ConfigError as exc:
        print(f"error: invalid configuration ({exc.source or args.config}):", file=sys.stderr)
        for key, message in exc.problems:
            print(f"  {key}: {message}", file=sys.stderr)
        return 2
    except (ValueError, CronError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in write_units(units, args.out):
        print(f"unit={path.name}")
    print(f"data_dir={install.data_dir}")
    print(f"read_write={' '.join(str(p) for p in install.read_write)}")
    print(f"protect_home={install.protect_home}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
