import io
import logging
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from jiritsu import redact
from jiritsu.log import DailyFileHandler, UTCFormatter, setup_console_logging, setup_file_logging

LINE = re.compile(r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\] \[(\w+)\] \[([\w.]+)\] (.*)$")


def _record(msg: str, created: float, level: int = logging.INFO) -> logging.LogRecord:
    rec = logging.LogRecord("jiritsu.test", level, __file__, 1, msg, None, None)
    rec.created = created
    return rec


def test_format_is_utc_with_z_level_and_logger_name() -> None:
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp()
    text = UTCFormatter().format(_record("hello", stamp, logging.WARNING))
    assert text == "[2026-01-02T03:04:05Z] [WARNING] [jiritsu.test] hello"


def test_console_logging_writes_the_format_and_masks_secrets() -> None:
    stream = io.StringIO()
    setup_console_logging(stream=stream)
    redact.register_secret("supersecretvalue42")
    logging.getLogger("jiritsu.engine").info("key is %s", "supersecretvalue42")
    try:
        raise RuntimeError("boom supersecretvalue42")
    except RuntimeError:
        logging.getLogger("jiritsu.engine").exception("failed")
    out = stream.getvalue()
    assert "supersecretvalue42" not in out
    first = out.splitlines()[0]
    match = LINE.match(first)
    assert match is not None, first
    assert match.groups() == ("INFO", "jiritsu.engine", "key is ***")
    assert "RuntimeError: boom ***" in out  # the traceback is masked too


def test_daily_files_roll_at_utc_midnight_and_old_ones_are_pruned(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    now = datetime(2026, 3, 31, 23, 59, 59, tzinfo=timezone.utc)
    for age in (29, 30, 45):  # 30 days of retention: 29 days old stays, 30 and 45 go
        day = (now - timedelta(days=age)).strftime("%Y-%m-%d")
        (logs / f"jiritsu-{day}.log").write_text("old\n")
    (logs / "unrelated.txt").write_text("keep me")
    handler = DailyFileHandler(logs, retention_days=30, now=lambda: now)
    handler.setFormatter(UTCFormatter())
    handler.emit(_record("before midnight", now.timestamp()))
    handler.emit(_record("after midnight", (now + timedelta(seconds=2)).timestamp()))
    handler.close()
    names = sorted(p.name for p in logs.iterdir())
    assert names == [
        f"jiritsu-{(now - timedelta(days=29)).strftime('%Y-%m-%d')}.log",
        "jiritsu-2026-03-31.log",
        "jiritsu-2026-04-01.log",
        "unrelated.txt",
    ]
    assert "before midnight" in (logs / "jiritsu-2026-03-31.log").read_text()
    assert "after midnight" in (logs / "jiritsu-2026-04-01.log").read_text()
    assert "before midnight" not in (logs / "jiritsu-2026-04-01.log").read_text()


def test_two_handlers_append_to_the_same_day_file(tmp_path: Path) -> None:
    """Timer commands and the trade loop log at once: neither may clobber the other."""
    a = DailyFileHandler(tmp_path)
    b = DailyFileHandler(tmp_path)
    for h in (a, b):
        h.setFormatter(UTCFormatter())
    t = time.time()
    a.emit(_record("from a", t))
    b.emit(_record("from b", t))
    a.emit(_record("from a again", t))
    a.close()
    b.close()
    (only,) = list(tmp_path.iterdir())
    assert [LINE.match(x).group(3) for x in only.read_text().splitlines()] == [
        "from a",
        "from b",
        "from a again",
    ]


@pytest.mark.usefixtures("isolated_env")
def test_setup_file_logging_is_idempotent(tmp_path: Path) -> None:
    setup_console_logging(stream=io.StringIO())
    setup_file_logging(tmp_path)
    setup_file_logging(tmp_path)
    logging.getLogger("jiritsu.x").warning("once")
    files = list((tmp_path / "logs").iterdir())
    assert len(files) == 1
    assert files[0].read_text().count("once") == 1
