"""``jiritsu config check|show``: validate the configuration and show its effective values.

The library (:mod:`jiritsu.config.describe`) computes the summary and the rows, masking secrets;
these commands only render. Only typer is imported at module level.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, new_app, state

app = new_app("Check the configuration and show its effective values.")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file (overrides the global --config and JIRITSU_CONFIG).",
        show_default=False,
    ),
]


def _loaded(ctx: typer.Context, config: Path | None) -> Any:
    app_state = state(ctx)
    if config is not None:
        app_state.config_path = config
        app_state._loaded = None
    return app_state.loaded()


@app.command()
@handle_errors
def check(ctx: typer.Context, config: ConfigOption = None) -> None:
    """Validate the configuration: print a short summary (exit 0) or every problem (exit 2).

    Outside paper mode the keys and UIDs the environment needs count too."""
    from rich.markup import escape
    from rich.table import Table

    from jiritsu.config.describe import summary
    from jiritsu.config.live import live_problems
    from jiritsu.errors import ConfigError

    loaded = _loaded(ctx, config)
    missing = live_problems(loaded)
    if missing:
        raise ConfigError(missing, source=str(loaded.path))
    info = summary(loaded)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("file", escape(info["config_file"]))
    grid.add_row("environment", info["environment"])
    grid.add_row("data dir", escape(info["data_dir"]))
    grid.add_row("database", escape(info["database"]))
    enabled = [b for b in info["bots"] if b["enabled"]]
    for i, bot in enumerate(enabled):
        grid.add_row(
            "bots" if i == 0 else "",
            escape(f"{bot['name']}  {bot['symbol']} {bot['category']} {bot['timeframe']}")
            + f"  advisor={bot['advisor']}",
        )
    if not enabled:
        grid.add_row("bots", "[yellow]none enabled[/]")
    disabled = [b["name"] for b in info["bots"] if not b["enabled"]]
    if disabled:
        grid.add_row("disabled", escape(", ".join(disabled)))
    news = info["news"]
    grid.add_row("news", f"scorer={news['scorer']}" + ("" if news["enabled"] else " (disabled)"))
    tuning = info["tuning"]
    grid.add_row(
        "tuning",
        escape(
            f"{'on' if tuning['enabled'] else 'off'}, schedule '{tuning['schedule']}' "
            f"(next {tuning['next_run']}), {tuning['grid_size']} backtests per fold"
        ),
    )
    overlay = info["overlay"]
    if overlay["present"]:
        run = f" from tuning run {overlay['tuning_run_id']}" if overlay.get("tuning_run_id") else ""
        grid.add_row("overlay", escape(f"{overlay['path']} ({overlay['params']} parameters{run})"))
    else:
        grid.add_row("overlay", escape(f"{overlay['path']} (not present)"))
    if info["env_overrides"]:
        grid.add_row("env overrides", escape(", ".join(info["env_overrides"])))
    secrets = info["secrets"]
    grid.add_row("secrets", f"{sum(s['set'] for s in secrets)} of {len(secrets)} set")
    out = console()
    out.print("[bold green]configuration OK[/]")
    out.print(grid)


@app.command()
@handle_errors
def show(
    ctx: typer.Context,
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show every effective key, its value (secrets masked) and where it came from."""
    from jiritsu.config.describe import effective_rows, rows_as_json

    loaded = _loaded(ctx, config)
    rows = effective_rows(loaded)
    if as_json:
        import json

        overlay = str(loaded.overlay_path) if loaded.overlay is not None else None
        doc = {"config_file": str(loaded.path), "overlay_file": overlay, "keys": rows_as_json(rows)}
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return

    from rich.table import Table
    from rich.text import Text

    colours = {"default": "dim", "file": "", "overlay": "magenta", "env": "cyan"}
    table = Table(title=f"Effective configuration: {loaded.path}", title_justify="left")
    table.add_column("key", overflow="fold")
    table.add_column("value", overflow="fold")
    table.add_column("origin", no_wrap=True)
    for row in rows:
        origin = f"env ({row.env_var})" if row.origin == "env" and row.env_var else row.origin
        table.add_row(Text(row.key), Text(row.display), Text(origin, style=colours[row.origin]))
    console().print(table)
