"""The CLI surface: every command registered, documented and cheap to start."""

from __future__ import annotations

import json
import subprocess
import sys

import typer
from typer.testing import CliRunner

from jiritsu_cli.main import app
from tests.conftest import REPO

runner = CliRunner()

DESIGN_COMMANDS = {
    "trade-tick", "trade-loop", "fetch-news", "rebalance", "save-profit", "snapshot", "tune",
    "backtest", "health", "halt", "resume", "flatten", "status", "reconcile", "phase", "data",
    "db", "config", "dashboard",
}  # fmt: skip


def _walk(group, prefix: tuple[str, ...] = ()):
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        yield path, cmd
        if hasattr(cmd, "commands"):
            yield from _walk(cmd, path)


def _commands() -> list[tuple[tuple[str, ...], object]]:
    return list(_walk(typer.main.get_command(app)))


def test_every_design_command_is_registered() -> None:
    top = {path[0] for path, _ in _commands()}
    assert DESIGN_COMMANDS <= top


def test_every_command_has_help_text_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for path, cmd in _commands():
        assert (cmd.help or "").strip(), f"jiritsu {' '.join(path)} has no help text"
        if len(path) == 1 and hasattr(cmd, "commands"):
            continue  # groups are documented through their subcommands
        name = " ".join(path)
        assert f"jiritsu {name}" in readme or (
            len(path) == 2 and f"jiritsu {path[0]} " in readme and path[1] in readme
        ), f"jiritsu {name} is missing from README.md"


def test_help_for_every_command_exits_0() -> None:
    for path, _ in _commands():
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)


def test_unknown_command_is_a_usage_error_without_traceback() -> None:
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


HEAVY = ("sqlalchemy", "alembic", "pybit", "google", "polars", "numpy", "datasette", "pydantic",
         "requests", "feedparser", "psycopg", "psutil", "rich")  # fmt: skip


def test_start_up_imports_no_heavy_module() -> None:
    """Timers start the CLI every minute: importing the app must not pull in heavy libraries."""
    code = (
        "import sys, json, jiritsu_cli.main\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_console_script_help_and_version() -> None:
    exe = REPO / ".venv" / "bin" / "jiritsu"
    help_out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=False)
    assert help_out.returncode == 0
    for name in DESIGN_COMMANDS:
        assert name in help_out.stdout
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    assert version.returncode == 0
    assert version.stdout.startswith("jiritsu ")


def test_rendering_help_loads_no_heavy_module() -> None:
    """`jiritsu --help` is what timers and operators hit most; keep it to plain formatting."""
    code = (
        "import sys, json\n"
        "from jiritsu_cli.main import app\n"
        "sys.argv = ['jiritsu', '--help']\n"
        "try:\n    app()\nexcept SystemExit:\n    pass\n"
        f"heavy = {(*HEAVY, 'markdown_it')!r}\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        "print(json.dumps(sorted(loaded & set(heavy))), file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Commands:" in out.stdout
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []
