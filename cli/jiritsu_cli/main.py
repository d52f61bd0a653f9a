"""The ``jiritsu`` root command: global options and the registry of every subcommand.

Subcommand modules are imported here, so they must stay import-light (typer only at module
level); the library is imported inside each command.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from jiritsu import __version__
from jiritsu_cli import (
    config_cmd,
    dashboard_cmd,
    data_cmd,
    db_cmd,
    health_cmd,
    master_cmd,
    news_cmd,
    reconcile_cmd,
    status_cmd,
)
from jiritsu_cli.common import AppState, new_app, not_implemented

app = new_app(
    "Jiritsu (自律): a self-optimising crypto portfolio on Bybit, run unattended.",
    name="jiritsu",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jiritsu {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="JIRITSU_CONFIG",
            help="Configuration file (default: ./config.toml, else the embedded default).",
            show_default=False,
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Log DEBUG and show tracebacks.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Global options shared by every subcommand."""
    from jiritsu.log import setup_console_logging

    ctx.obj = AppState(config_path=config, debug=debug)
    # Machine-readable output keeps stdout clean: logs go to stderr when --json is asked for.
    setup_console_logging(debug=debug, stream=sys.stderr if "--json" in sys.argv else sys.stdout)


app.add_typer(config_cmd.app, name="config")
app.add_typer(db_cmd.app, name="db")
app.add_typer(dashboard_cmd.app, name="dashboard")
app.add_typer(data_cmd.app, name="data")
app.command("status", help=status_cmd.status.__doc__)(status_cmd.status)
app.command("fetch-news", help=news_cmd.fetch_news.__doc__)(news_cmd.fetch_news)
app.command("reconcile", help=reconcile_cmd.reconcile.__doc__)(reconcile_cmd.reconcile)
app.command("health", help=health_cmd.health.__doc__)(health_cmd.health)
app.command("phase", help=master_cmd.phase.__doc__)(master_cmd.phase)
app.command("rebalance", help=master_cmd.rebalance.__doc__)(master_cmd.rebalance)
app.command("save-profit", help=master_cmd.save_profit.__doc__)(master_cmd.save_profit)
app.command("snapshot", help=master_cmd.snapshot.__doc__)(master_cmd.snapshot)

# Subcommands whose capability has not landed yet: registered now so that the CLI surface, the
# systemd units and the README can be written against it; each says so and exits 1.
_PENDING: dict[str, str] = {
    "trade-tick": "Run one trading cycle for every enabled bot.",
    "trade-loop": "Trade continuously: reconcile, tick at each bar close, honour halts.",
    "tune": "Re-tune the bots' parameters by walk-forward backtesting.",
    "backtest": "Backtest a bot over stored candles.",
    "halt": "Halt trading globally or for one bot.",
    "resume": "Lift a halt.",
    "flatten": "Cancel every open order and close every position at market.",
}
_PENDING_GROUPS: dict[str, tuple[str, dict[str, str]]] = {}
_LENIENT = {"allow_extra_args": True, "ignore_unknown_options": True}


def _placeholder(full_name: str) -> Callable[[typer.Context], None]:
    def command(ctx: typer.Context) -> None:
        not_implemented(full_name)

    return command


for _name, _help in _PENDING.items():
    app.command(_name, help=f"{_help} (not implemented yet)", context_settings=_LENIENT)(
        _placeholder(_name)
    )
for _group, (_help, _subs) in _PENDING_GROUPS.items():
    _sub = new_app(_help)
    for _name, _shelp in _subs.items():
        _sub.command(_name, help=f"{_shelp} (not implemented yet)", context_settings=_LENIENT)(
            _placeholder(f"{_group} {_name}")
        )
    app.add_typer(_sub, name=_group)


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
