"""The systemd notification protocol (sd_notify(3)) in pure Python, for ``Type=notify`` units.

``jiritsu-trade.service`` is ``Type=notify`` with ``WatchdogSec=``: the trade loop calls
:func:`ready` once it has reconciled and is trading, then :func:`watchdog` at least every
:func:`watchdog_period` seconds; when it hangs, systemd kills and restarts it. Outside systemd
(``$NOTIFY_SOCKET`` unset) every call is a cheap no-op that returns False, so the loop needs no
special case for a terminal or a test.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

__all__ = ["notify", "ready", "status", "stopping", "watchdog", "watchdog_period"]


def _address(environ: Mapping[str, str]) -> str | None:
    path = environ.get("NOTIFY_SOCKET", "")
    if path.startswith("@"):
        return "\0" + path[1:]  # abstract namespace socket
    if path.startswith("/"):
        return path
    return None  # unset, or a transport we do not speak (e.g. vsock:)


def notify(*assignments: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send ``KEY=VALUE`` assignments (e.g. ``"READY=1"``) to systemd; True when sent.

    Never raises: a service must not die because its supervisor cannot be told something.
    """
    env = os.environ if environ is None else environ
    address = _address(env)
    if address is None or not assignments:
        return False
    if any("\n" in a or "=" not in a for a in assignments):
        raise ValueError("each assignment must be one KEY=VALUE line")
    message = "\n".join(assignments).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
        return True
    except OSError:
        return False


def ready(status_text: str | None = None, *, environ: Mapping[str, str] | None = None) -> bool:
    """Start-up is complete (``READY=1``): systemd considers the unit started from now on."""
    fields = ["READY=1"] + ([f"STATUS={_one_line(status_text)}"] if status_text else [])
    return notify(*fields, environ=environ)


def stopping(*, environ: Mapping[str, str] | None = None) -> bool:
    """The service is shutting down on purpose (``STOPPING=1``)."""
    return notify("STOPPING=1", environ=environ)


def watchdog(*, environ: Mapping[str, str] | None = None) -> bool:
    """Feed the watchdog (``WATCHDOG=1``): still alive and making progress."""
    return notify("WATCHDOG=1", environ=environ)


def status(text: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """A one-line status shown by ``systemctl status`` (``STATUS=...``)."""
    return notify(f"STATUS={_one_line(text)}", environ=environ)


def watchdog_period(*, environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between :func:`watchdog` calls (half of ``WatchdogSec=``), or None without one.

    systemd sets ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, which must be this process).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


def _one_line(text: str) -> str:
    return " ".join(str(text).split())
