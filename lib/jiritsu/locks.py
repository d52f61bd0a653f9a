"""Locks that keep the periodic jobs from acting on money or orders another job is moving.

- :func:`master_lock`: every run that moves money between accounts (rebalance, profit saving)
  and every reading of all the balances at once (portfolio snapshots, the trade loop's
  valuation for its breakers). A transfer is never half-way while balances are read, so no
  snapshot sees money twice or not at all. An exclusive ``flock`` on ``<data_dir>/master.lock``
  and, on PostgreSQL, a session advisory lock as well, so two hosts sharing one database are
  serialised too.
- :func:`bot_lock`: one bot's orders. The trade loop holds it while it steps the bot, and
  ``jiritsu reconcile`` while it reconciles that bot, so reconciliation never meets an order the
  loop is half-way through sending or recording.

Both are released by the kernel when the process dies, so a crash never leaves one behind.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jiritsu.errors import JiritsuError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger("jiritsu.locks")

LOCK_FILENAME = "master.lock"
LOCK_WAIT_SECONDS = 600.0  # the service's start timeout is 15 minutes
PG_LOCK_KEY = 0x4A49524954535501  # "JIRITSU\x01"; distinct from the paper ledger's key


class MasterBusy(JiritsuError):
    """Another master run (rebalance or profit saving) still holds the lock."""


class BotBusy(JiritsuError):
    """Another process (the trade loop, another reconcile) is working the bot's orders."""


@contextmanager
def _flock(
    path: Path,
    busy: Callable[[], JiritsuError],
    *,
    wait_seconds: float,
    poll_seconds: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; poll until ``wait_seconds``, then ``busy()``."""
    import fcntl

    deadline = clock() + wait_seconds
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # closed in finally
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if clock() >= deadline:
                    raise busy() from None
                sleep(poll_seconds)
        yield
    finally:
        handle.close()  # closing the descriptor releases the flock


@contextmanager
def master_lock(
    engine: Engine,
    data_dir: Path,
    *,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Hold the master lock for the block; wait up to ``wait_seconds``, then :class:`MasterBusy`.

    The PostgreSQL advisory lock is released with its connection.
    """
    path = Path(data_dir) / LOCK_FILENAME

    def busy() -> JiritsuError:
        return MasterBusy(f"another rebalance, profit saving or snapshot holds {path}")

    deadline = clock() + wait_seconds
    with _flock(
        path, busy, wait_seconds=wait_seconds, poll_seconds=poll_seconds, sleep=sleep, clock=clock
    ):
        if engine.dialect.name != "postgresql":
            yield
            return
        import sqlalchemy as sa

        conn = engine.connect()
        try:
            while not conn.execute(
                sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": PG_LOCK_KEY}
            ).scalar():
                conn.rollback()
                if clock() >= deadline:
                    raise MasterBusy("another host's master run holds the database's master lock")
                sleep(poll_seconds)
            conn.commit()
            yield
        finally:
            _release_pg(conn)


def _release_pg(conn: Any) -> None:
    import sqlalchemy as sa

    try:
        conn.execute(sa.text("SELECT pg_advisory_unlock_all()"))
        conn.commit()
    except Exception as exc:  # noqa: BLE001 - never mask the run's own error; drop the session
        log.warning("could not release the master advisory lock cleanly: %s", exc)
        conn.invalidate()
    finally:
        conn.close()


def bot_lock_path(data_dir: Path, bot: str) -> Path:
    """``<data_dir>/locks/bot-<name>.lock`` (the name reduced to safe file-name characters)."""
    return Path(data_dir) / "locks" / f"bot-{re.sub(r'[^A-Za-z0-9_.-]', '_', bot)}.lock"


@contextmanager
def bot_lock(
    data_dir: Path,
    bot: str,
    *,
    wait_seconds: float,
    poll_seconds: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[None]:
    """Hold one bot's lock for the block; wait up to ``wait_seconds``, then :class:`BotBusy`."""
    path = bot_lock_path(data_dir, bot)

    def busy() -> JiritsuError:
        return BotBusy(f"{bot}: another process is working its orders ({path})")

    with _flock(path, busy, wait_seconds=wait_seconds, poll_seconds=poll_seconds, sleep=sleep,
                clock=clock):  # fmt: skip
        yield
