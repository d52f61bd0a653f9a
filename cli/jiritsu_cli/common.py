"""What every command shares: global options, config loading and error -> exit code mapping.

Commands stay thin: parse, call the library, render. Heavy imports happen inside the command
functions, never at module level, because systemd timers start this CLI every minute.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer

from jiritsu.errors import ExitCode, JiritsuError

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppState:
    """Per-invocation state set by the root callback."""

    config_path: Path | None = None
    debug: bool = False
    _loaded: Any = field(default=None, repr=False)

    def loaded(self) -> Any:
        """The validated configuration (``jiritsu.config.LoadedConfig``), loaded once."""
        if self._loaded is None:
            from jiritsu.config import load_config
            from jiritsu.log import setup_file_logging

            self._loaded = load_config(self.config_path)
            general = self._loaded.settings.general
            setup_file_logging(
                general.data_dir,
                retention_days=general.log_retention_days,
                level="DEBUG" if self.debug or general.debug_mode else general.log_level,
            )
        return self._loaded

    def settings(self) -> Any:
        return self.loaded().settings


def new_app(help: str, **kwargs: Any) -> typer.Typer:
    """A Typer app (root or group) with plain-text help.

    Typer's Rich help formatter imports rich.markdown and markdown-it (~200 ms); timers start
    this CLI every minute and operators read help over SSH, so plain Click formatting it is.
    """
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(help=help, rich_markup_mode=None, **kwargs)


def state(ctx: typer.Context) -> AppState:
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def console(stderr: bool = False) -> Any:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A Rich progress bar on stderr; yields ``update(done, total)``.

    While it is drawn, console log lines are printed above it instead of over it.
    """
    if not enabled:
        yield lambda done, total: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    from rich.text import Text

    from jiritsu.log import console_log_to

    with Progress(
        f"[bold]{label}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console(stderr=True), transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def log_line(line: str) -> None:
            bar.console.print(Text(line), highlight=False, soft_wrap=True)  # no markup parsing

        with console_log_to(log_line):
            yield update


def fail(message: str, code: ExitCode = ExitCode.FAILURE) -> typer.Exit:
    """Print an error line to stderr and return the Exit to raise."""
    from rich.markup import escape

    from jiritsu.redact import redact

    console(stderr=True).print(f"[bold red]error:[/] {escape(redact(message))}", markup=True)
    return typer.Exit(int(code))


def _render_error(exc: JiritsuError) -> None:
    from rich.markup import escape

    from jiritsu.errors import ConfigError
    from jiritsu.redact import redact

    err = console(stderr=True)
    if isinstance(exc, ConfigError):
        where = f" ({escape(exc.source)})" if exc.source else ""
        err.print(f"[bold red]error:[/] invalid configuration{where}", markup=True)
        for key, msg in exc.problems:
            err.print(f"  [yellow]{escape(redact(key))}[/]: {escape(redact(msg))}", markup=True)
        return
    err.print(f"[bold red]error:[/] {escape(redact(str(exc)))}", markup=True)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Map the error hierarchy to exit codes; user errors never show a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except JiritsuError as exc:
            if exc.exit_code == ExitCode.DB_UNREACHABLE:
                import logging

                logging.getLogger("jiritsu.cli").critical("database unreachable: %s", exc)
            _render_error(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            console(stderr=True).print("interrupted")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # the last line of defence: log it, exit 1
            import logging

            logging.getLogger("jiritsu.cli").exception("unexpected error")
            ctx_debug = any(a.debug for a in args if isinstance(a, AppState))
            if ctx_debug or "--debug" in sys.argv:
                raise
            from rich.markup import escape

            from jiritsu.redact import redact

            console(stderr=True).print(
                f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(redact(str(exc)))} "
                "(details in the log; rerun with --debug for a traceback)",
                markup=True,
            )
            raise typer.Exit(int(ExitCode.FAILURE)) from None

    return wrapper
