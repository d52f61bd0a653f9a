"""A simulation's monthly tunings, computed ahead in a worker process while the loop trades.

A tuning at simulated time T reads nothing the trade loop writes: only the stored candles before
T (copied into the simulation's database before the loop starts) and the settings, which are the
configuration plus the winners of the tunings before it (:func:`jiritsu.tune.tune_all`). So a
worker process, on the machine's other core, runs the grids of every scheduled tuning in turn,
each on the settings the ones before it leave, while the loop trades towards T. At T the loop
takes the worker's outcomes and records and applies them itself through
:func:`jiritsu.tune.run_tuning` (the tuning rows, the overlay, the event, the reload), exactly
as when it computes them.

The loop takes outcomes only for the time it tunes at and only when the worker tuned with
settings equal to its own (compared whole); otherwise, or when the worker failed or is too slow,
it tunes in-process as it would without a worker, and stops the worker: its later tunings rest
on a chain the loop has left.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from pathlib import Path

    from jiritsu.config.settings import Settings
    from jiritsu.tune import BotOutcome

log = logging.getLogger(__name__)

# How long the loop waits for one tuning before it tunes in-process (bounded, like every wait;
# a tuning of the shipped grids takes 2-5 s of one core)
TAKE_TIMEOUT_S = 900.0
STOP_TIMEOUT_S = 10.0


def _work(conn: Connection, path: str) -> None:
    """The worker: wait for the tuning times (sent once the candles are copied), then tune at
    each and send (time, the settings tuned with, the outcomes, CPU seconds) or the error."""
    from jiritsu.clock import SimClock
    from jiritsu.config import load_config
    from jiritsu.db.engine import connect_configured
    from jiritsu.runtime import market_data
    from jiritsu.tune import tune_all, winning_params

    try:
        times = conn.recv()
    except EOFError:
        return
    if not times:
        return
    loaded = load_config(path)  # its environment is the simulation's
    clock = SimClock(times[0])
    db = connect_configured(loaded)
    market = market_data(loaded.settings, db, clock)
    params: dict[str, Any] = {}
    try:
        for t in times:
            clock.advance_to(t)
            cpu = time.process_time()
            settings = loaded.settings.with_params(params) if params else loaded.settings
            outcomes = tune_all(market, settings, t, workers=1)
            dump = settings.model_dump(mode="json")
            conn.send(("ok", t, dump, outcomes, time.process_time() - cpu))
            params.update(winning_params(outcomes))
    except OSError:  # the loop has gone (a broken pipe, a reset socket)
        return
    except Exception as exc:  # noqa: BLE001 - the loop tunes in-process and says why
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        db.dispose()


class TuningsAhead:
    """The worker process and the loop's end of its pipe.

    Started before the simulation's set-up (its imports overlap the candle copy) with the
    simulation's environment; :meth:`start` gives it the tuning times once the candles are
    stored."""

    def __init__(self, config_path: Path, environ: dict[str, str]) -> None:
        import socket
        from multiprocessing.connection import Connection

        # a fresh interpreter, neither forked (the simulating process holds database connections
        # and polars' thread pool, which a fork does not carry over safely) nor multiprocessing's
        # spawn (it re-runs the caller's main module, which may be a script that simulates)
        ours, theirs = socket.socketpair()
        self._conn = Connection(ours.detach())
        fd = theirs.detach()
        try:
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", __name__, str(fd), str(config_path)],
                env=environ, pass_fds=(fd,), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the simulation's stdout may be its --json
                # its own session: a Ctrl-C in the terminal reaches the simulation, which stops
                # the worker itself, not the worker (it would print a KeyboardInterrupt)
                start_new_session=True,
            )  # fmt: skip
        finally:
            os.close(fd)
        self.taken = 0  # tunings whose outcomes came from the worker
        self.cpu = 0.0  # the worker's CPU seconds for them
        self.stopped = ""  # why the loop stopped using the worker ("" while it does)

    def start(self, times: list[int]) -> None:
        """Tune at ``times`` (ms, ascending), each on the winners of the ones before."""
        if not times:
            self.close()
            return
        self._conn.send(list(times))

    def take(self, t: int, settings: Settings) -> tuple[list[BotOutcome], float] | None:
        """The outcomes of the tuning at ``t`` and the worker's CPU seconds for it, when the
        worker tuned at ``t`` with ``settings``; None: the caller tunes in-process."""
        while self._proc is not None:
            if not self._conn.poll(TAKE_TIMEOUT_S):
                self.close(f"no tuning from the worker within {TAKE_TIMEOUT_S:.0f} s")
                break
            try:
                msg = self._conn.recv()
            except (EOFError, OSError) as exc:
                self.close(f"the worker ended ({type(exc).__name__})")
                break
            if msg[0] == "error":
                self.close(f"the worker failed: {msg[1]}")
                break
            _kind, at, dump, outcomes, cpu = msg
            if at < t:  # a tuning the loop did not run: the chain has left the worker's
                self.close(f"the loop did not tune at {at}")
            elif at > t:
                self.close(f"the loop tuned at {t}, not scheduled when the worker started")
            elif dump != settings.model_dump(mode="json"):
                self.close(f"the settings at {t} differ from the worker's")
            else:
                self.taken += 1
                self.cpu += cpu
                return outcomes, cpu
        return None

    def close(self, why: str = "") -> None:
        """Stop the worker (idempotent); ``why`` is kept when the loop stops using it early."""
        if self._proc is None:
            return
        if why:
            self.stopped = why
            log.info("tunings in-process from now: %s", why)
        proc, self._proc = self._proc, None
        self._conn.close()
        # it only reads candles: stopping it mid-tuning loses nothing
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)


def main(argv: list[str]) -> int:
    """``python -m jiritsu.simulate.ahead FD CONFIG``: the worker, talking over socket ``FD``."""
    from multiprocessing.connection import Connection

    _work(Connection(int(argv[1])), argv[2])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
