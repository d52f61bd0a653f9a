"""Logging: one format, UTC, secrets masked, a file per UTC day under the data dir.

Several processes write the log at once (the trade loop plus timer-started commands), so instead
of renaming a shared file at midnight -- which races between processes -- every process appends
to the file named for the current UTC day (``jiritsu-YYYY-MM-DD.log``, O_APPEND) and prunes
files older than the retention.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from jiritsu.clock import wall_now
from jiritsu.redact import redact

FORMAT = "[%(asctime)s] [%(levelname)s] [%(name)s] %(message)s"
_FILE_RE = re.compile(r"^jiritsu-(\d{4}-\d{2}-\d{2})\.log$")
_CONSOLE_MARK = "_jiritsu_console"
_FILE_MARK = "_jiritsu_file"


class UTCFormatter(logging.Formatter):
    """``[2026-01-01T00:00:00Z] [INFO] [jiritsu.module] message`` with secrets masked.

    Masking happens on the fully formatted text, so arguments, exception tracebacks and
    ``extra`` fields are all covered.
    """

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class DailyFileHandler(logging.Handler):
    """Append to ``<dir>/jiritsu-<UTC date>.log``; keep ``retention_days`` days of files."""

    def __init__(
        self,
        directory: Path,
        retention_days: int = 30,
        now: Callable[[], datetime] = wall_now,  # log files are named by wall time
    ) -> None:
        super().__init__()
        self.directory = Path(directory)
        self.retention_days = retention_days
        self._now = now
        self._day: str | None = None
        self._stream: TextIO | None = None
        self.directory.mkdir(parents=True, exist_ok=True)

    def path_for(self, day: str) -> Path:
        return self.directory / f"jiritsu-{day}.log"

    def _roll(self, day: str) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = open(self.path_for(day), "a", encoding="utf-8")
        self._day = day
        self.prune()

    def prune(self) -> list[Path]:
        """Delete log files older than the retention; return what was deleted."""
        cutoff = (self._now() - timedelta(days=self.retention_days)).date()
        removed = []
        for entry in self.directory.iterdir():
            match = _FILE_RE.match(entry.name)
            if not match:
                continue
            try:
                day = datetime.strptime(match.group(1), "%Y-%m-%d").date()
            except ValueError:
                continue
            if day <= cutoff:
                try:
                    entry.unlink()
                    removed.append(entry)
                except FileNotFoundError:  # another process pruned it first
                    pass
        return removed

    def emit(self, record: logging.LogRecord) -> None:
        try:
            day = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%d")
            msg = self.format(record) + "\n"
            self.acquire()
            try:
                if day != self._day:
                    self._roll(day)
                assert self._stream is not None
                self._stream.write(msg)
                self._stream.flush()
            finally:
                self.release()
        except Exception:  # noqa: BLE001 - logging must never take the process down
            self.handleError(record)

    def close(self) -> None:
        self.acquire()
        try:
            if self._stream is not None:
                self._stream.close()
                self._stream = None
        finally:
            self.release()
        super().close()


def _root() -> logging.Logger:
    return logging.getLogger("jiritsu")


def _quiet_third_parties() -> None:
    # pybit adds its own StreamHandler when the root logger has none (duplicate lines); giving
    # the root logger a NullHandler stops that without printing anything twice.
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    for noisy in ("urllib3", "httpx", "httpcore", "pybit", "alembic", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def setup_console_logging(
    *, debug: bool = False, level: str = "INFO", stream: TextIO | None = None
) -> None:
    """Log ``jiritsu.*`` to the console (stdout by default). Safe to call more than once."""
    logger = _root()
    for handler in list(logger.handlers):
        if getattr(handler, _CONSOLE_MARK, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stdout)
    setattr(handler, _CONSOLE_MARK, True)
    handler.setFormatter(UTCFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else getattr(logging, level.upper(), logging.INFO))
    logger.propagate = False
    _quiet_third_parties()


def setup_file_logging(
    data_dir: Path, *, retention_days: int = 30, level: str | None = None
) -> DailyFileHandler:
    """Add (or replace) the daily file handler under ``<data_dir>/logs``."""
    logger = _root()
    for handler in list(logger.handlers):
        if getattr(handler, _FILE_MARK, False):
            logger.removeHandler(handler)
            handler.close()
    handler = DailyFileHandler(Path(data_dir) / "logs", retention_days=retention_days)
    setattr(handler, _FILE_MARK, True)
    handler.setFormatter(UTCFormatter())
    logger.addHandler(handler)
    if level:
        logger.setLevel(getattr(logging, level.upper(), logging.INFO))
    return handler


class _LineHandler(logging.Handler):
    """Hands each formatted record to a callable (see :func:`console_log_to`)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        super().__init__()
        self._write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never take the process down
            self.handleError(record)


@contextmanager
def console_log_to(write: Callable[[str], None]) -> Iterator[None]:
    """Send console log lines to ``write`` for the duration of the block.

    A live terminal display (a progress bar) redraws its line in place; a log line written
    straight to the terminal lands in the middle of it and is overwritten by the next redraw.
    ``write`` should print above the display (Rich: the display's ``console.print``). The file
    log is untouched.
    """
    logger = _root()
    consoles = [h for h in logger.handlers if getattr(h, _CONSOLE_MARK, False)]
    if not consoles:
        yield
        return
    routed = _LineHandler(write)
    routed.setFormatter(consoles[0].formatter or UTCFormatter())
    routed.setLevel(consoles[0].level)
    for handler in consoles:
        logger.removeHandler(handler)
    logger.addHandler(routed)
    try:
        yield
    finally:
        logger.removeHandler(routed)
        for handler in consoles:
            logger.addHandler(handler)
