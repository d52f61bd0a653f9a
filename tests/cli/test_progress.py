"""A log line written while a progress bar is drawn is printed above the bar, on a line of its
own, instead of into the bar's line where the next redraw would overwrite it (``tune``)."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import logging, time
from jiritsu.log import setup_console_logging
from jiritsu_cli.common import progress_bar
setup_console_logging()
with progress_bar("tuning") as update:
    for i in range(4):
        update(i, 4)
        time.sleep(0.25)
        logging.getLogger("jiritsu.tune").info("fold %d [done]", i)
logging.getLogger("jiritsu.tune").info("after the bar")
"""


def _terminal_output(code: str) -> bytes:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=follower, stdout=follower, stderr=follower,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"}, cwd=REPO,
    )  # fmt: skip
    os.close(follower)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([leader], [], [], 30)
            if not ready:
                break
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=30) == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    return out


def test_log_lines_go_above_the_progress_bar_not_into_it() -> None:
    out = _terminal_output(SCRIPT)
    starts = [m.start() for m in re.finditer(rb"\[\d{4}-\d\d-\d\dT[^]]*Z\] \[INFO\]", out)]
    assert len(starts) == 5, out
    for start in starts[:4]:
        before = out[:start]
        # The bar's line is erased (or a fresh line begun) before the log line is printed.
        assert before.endswith((b"\x1b[2K", b"\n")), before[-80:]
    text = out.decode(errors="replace")
    for i in range(4):
        assert f"fold {i} [done]" in text  # printed as text: brackets are not Rich markup
    assert "[bold]" not in text  # the bar redrawn after a log line keeps its style
