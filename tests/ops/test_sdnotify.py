"""sd_notify over a real datagram socket, as systemd would receive it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jiritsu.ops import sdnotify


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, dict[str, str]]]:
    """A bound AF_UNIX datagram socket standing in for systemd's $NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def test_ready_status_watchdog_and_stopping_arrive_as_sent(
    listener: tuple[socket.socket, dict[str, str]],
) -> None:
    sock, env = listener
    assert sdnotify.ready("trading 3 bots", environ=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=trading 3 bots"
    assert sdnotify.watchdog(environ=env)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.status("reconciling\nSubBot-A", environ=env)
    assert sock.recv(4096) == b"STATUS=reconciling SubBot-A", "one line only"
    assert sdnotify.stopping(environ=env)
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket() -> None:
    name = f"jiritsu-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        assert sdnotify.watchdog(environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        sock.close()


@pytest.mark.parametrize("value", [None, "", "relative/path", "vsock:2:1234"])
def test_without_a_usable_socket_every_call_is_a_no_op(value: str | None) -> None:
    env = {} if value is None else {"NOTIFY_SOCKET": value}
    assert sdnotify.ready(environ=env) is False
    assert sdnotify.watchdog(environ=env) is False


def test_a_dead_socket_is_reported_not_raised(tmp_path: Path) -> None:
    assert sdnotify.ready(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}) is False


def test_malformed_assignments_are_a_bug_of_the_caller(
    listener: tuple[socket.socket, dict[str, str]],
) -> None:
    _, env = listener
    with pytest.raises(ValueError, match="KEY=VALUE"):
        sdnotify.notify("READY", environ=env)


def test_watchdog_period_is_half_of_watchdog_sec_for_this_process_only() -> None:
    mine = str(os.getpid())
    assert (
        sdnotify.watchdog_period(environ={"WATCHDOG_USEC": "180000000", "WATCHDOG_PID": mine}) == 90
    )
    assert sdnotify.watchdog_period(environ={"WATCHDOG_USEC": "20000000"}) == 10
    assert (
        sdnotify.watchdog_period(environ={"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}) is None
    )
    assert sdnotify.watchdog_period(environ={}) is None
    assert sdnotify.watchdog_period(environ={"WATCHDOG_USEC": "0"}) is None
