"""The ``jiritsu`` root command: global options and the registry of every subcommand.

Subcommand modules are imported here, so they must stay import-light (typer only at module
level); the library is imported inside each command.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from jiritsu import __version__
from jiritsu_cli import (
    backtest_cmd,
    config_cmd,
    control_cmd,
    dashboard_cmd,
    data_cmd,
    db_cmd,
    doctor_cmd,
    health_cmd,
    master_cmd,
    news_cmd,
    reconcile_cmd,
    simulate_cmd,
    status_cmd,
    strategies_cmd,
    trade_cmd,
    tune_cmd,
)
from jiritsu_cli.common import AppState, new_app

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
app.add_typer(strategies_cmd.app, name="strategies")
app.command("status", help=status_cmd.status.__doc__)(status_cmd.status)
app.command("fetch-news", help=news_cmd.fetch_news.__doc__)(news_cmd.fetch_news)
app.command("reconcile", help=reconcile_cmd.reconcile.__doc__)(reconcile_cmd.reconcile)
app.command("health", help=health_cmd.health.__doc__)(health_cmd.health)
app.command("doctor", help=doctor_cmd.doctor.__doc__)(doctor_cmd.doctor)
app.command("trade-tick", help=trade_cmd.trade_tick.__doc__)(trade_cmd.trade_tick)
app.command("trade-loop", help=trade_cmd.trade_loop.__doc__)(trade_cmd.trade_loop)
app.command("halt", help=control_cmd.halt.__doc__)(control_cmd.halt)
app.command("resume", help=control_cmd.resume.__doc__)(control_cmd.resume)
app.command("flatten", help=control_cmd.flatten.__doc__)(control_cmd.flatten)
app.command("phase", help=master_cmd.phase.__doc__)(master_cmd.phase)
app.command("rebalance", help=master_cmd.rebalance.__doc__)(master_cmd.rebalance)
app.command("save-profit", help=master_cmd.save_profit.__doc__)(master_cmd.save_profit)
app.command("snapshot", help=master_cmd.snapshot.__doc__)(master_cmd.snapshot)
app.command("backtest", help=backtest_cmd.backtest.__doc__)(backtest_cmd.backtest)
app.command("tune", help=tune_cmd.tune.__doc__)(tune_cmd.tune)
app.command("simulate", help=simulate_cmd.simulate.__doc__)(simulate_cmd.simulate)


def run() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    run()
