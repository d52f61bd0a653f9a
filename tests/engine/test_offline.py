"""``[paper] price_source = "replay"`` means offline for every command: a socket guard proves that
paper ``trade-tick`` and ``trade-loop`` run on the stored candles without one network attempt,
while ``[exchange] base_url`` points at a closed port (and that the guard does see the attempts
``price_source = "bybit"`` makes)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from jiritsu.engine.loop import LoopOptions, run_loop, run_tick
from tests.engine.conftest import frame, load, only_bot, store_candles
from tests.engine.test_tick import DECIDE, FALL, QUIET, RSI_BOT


@pytest.fixture
def network_attempts(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every IP connect is recorded and refused (SQLite needs no socket; PostgreSQL tests would,
    which is why this file runs on SQLite only)."""
    attempts: list[Any] = []
    real_connect = socket.socket.connect

    def guard(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attempts.append(address)
            raise ConnectionRefusedError(f"network attempt to {address} blocked by the test")
        return real_connect(sock, address)

    def guard_ex(sock: socket.socket, address: Any) -> int:
        try:
            guard(sock, address)
        except ConnectionRefusedError:
            return 111
        return 0

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", guard_ex)
    return attempts


def test_paper_tick_on_replay_prices_never_touches_the_network(
    isolated_env: Path, network_attempts: list[Any]
) -> None:
    loaded = load(isolated_env, only_bot("SubBot-B", **RSI_BOT))
    assert loaded.settings.paper.price_source == "replay"
    assert loaded.settings.exchange.base_url == "http://127.0.0.1:9"  # a closed port
    store_candles(loaded, frame(FALL + QUIET))
    result = run_tick(loaded, now_ms=DECIDE + 5_000)
    assert network_attempts == []
    assert result.exit_code == 0
    assert result.reports[0].orders == ["Buy 0.001 Market leg 0"]  # decided on stored candles


def test_paper_loop_on_replay_prices_never_touches_the_network(
    isolated_env: Path, network_attempts: list[Any]
) -> None:
    loaded = load(isolated_env, only_bot("SubBot-B", **RSI_BOT))
    store_candles(loaded, frame(FALL + QUIET))
    result = run_loop(loaded, LoopOptions(max_steps=1, install_signals=False))
    assert network_attempts == []
    assert (result.exit_code, result.steps) == (0, 1)


def test_paper_tick_on_bybit_prices_asks_bybit(
    isolated_env: Path, network_attempts: list[Any]
) -> None:
    env = {**only_bot("SubBot-B", **RSI_BOT), "JIRITSU_PAPER__PRICE_SOURCE": "bybit"}
    loaded = load(isolated_env, env)
    store_candles(loaded, frame(FALL + QUIET))
    result = run_tick(loaded, now_ms=DECIDE + 5_000)
    assert network_attempts  # the guard sees every attempt
    assert network_attempts[0][1] == 9
    assert result.reports[0].orders == ["Buy 0.001 Market leg 0"]  # the stored candles serve
