"""The tail of the day's log file, for the dashboard's live log page.

The file is always ``<log dir>/jiritsu-<UTC day>.log`` for the day of the clock passed in; nothing
a request sends becomes part of a path. Lines that do not start a record (a traceback's lines)
belong to the record above them, so a level filter keeps or drops them together.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MAX_LINES = 2000
READ_LIMIT_BYTES = 4 * 1024 * 1024  # a tail never reads more than the file's last 4 MB
_RECORD = re.compile(r"^\[[^\]]*\] \[([A-Z]+)\] ")


@dataclass
class LogTail:
    """The last records of one day's file (``lines``: text lines, oldest first)."""

    file_name: str
    exists: bool
    lines: list[str] = field(default_factory=list)


def log_file(directory: Path, now: datetime) -> Path:
    """The file the daily handler writes on ``now``'s UTC day (see :mod:`jiritsu.log`)."""
    return Path(directory) / f"jiritsu-{now.strftime('%Y-%m-%d')}.log"


def _last_bytes(path: Path, limit: int) -> str:
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        start = max(0, size - limit)
        handle.seek(start)
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    if start > 0:  # the first line is probably cut: drop it
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text


def tail(directory: Path, now: datetime, *, lines: int = 200, level: str = "DEBUG") -> LogTail:
    """The last ``lines`` records at ``level`` or worse from the day's file under ``directory``."""
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r} (one of {', '.join(LEVELS)})")
    lines = max(1, min(int(lines), MAX_LINES))
    path = log_file(directory, now)
    if not path.is_file():
        return LogTail(path.name, False)
    floor = LEVELS.index(level)
    records: list[list[str]] = []
    keep = False
    for line in _last_bytes(path, READ_LIMIT_BYTES).splitlines():
        match = _RECORD.match(line)
        if match:
            found = match.group(1)
            keep = found not in LEVELS or LEVELS.index(found) >= floor
            if keep:
                records.append([line])
        elif keep and records:
            records[-1].append(line)
    out = [text for record in records[-lines:] for text in record]
    return LogTail(path.name, True, out[-MAX_LINES:])
