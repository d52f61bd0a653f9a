"""`jiritsu data backfill` against the loopback fake Bybit through pybit: paging, gaps, resume."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jiritsu.db.engine import make_engine
from jiritsu.market.store import CandleStore, cache_root
from jiritsu_cli.main import app
from tests.fakes.bybit import FakeBybit

MIN = 60_000
runner = CliRunner()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeBybit, int, set[int]]]:
    """Three days of 1-minute bars up to the current minute, with two holes in them."""
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    end = now - now % MIN
    start = end - 3 * 1440 * MIN
    holes = {end - 100 * MIN + i * MIN for i in range(5)} | {end - 1700 * MIN}
    rows = [
        (t, 100.0, 101.0, 99.0, 100.5, 1.0) for t in range(start, end + MIN, MIN) if t not in holes
    ]
    with FakeBybit() as server:
        server.set_price_path("BTCUSDT", rows)
        monkeypatch.setenv("JIRITSU_EXCHANGE__BASE_URL", server.endpoint)
        monkeypatch.setenv("JIRITSU_EXCHANGE__CA_FILE", server.ca_path)
        monkeypatch.setenv("JIRITSU_EXCHANGE__MAX_RETRIES", "1")
        yield server, end, holes


def _kline_requests(server: FakeBybit) -> list:
    return [r for r in server.requests if r.path == "/v5/market/kline"]


def _stored(isolated_env: Path) -> list[int]:
    engine = make_engine(f"sqlite:///{isolated_env}/jiritsu.db")
    try:
        return CandleStore(engine, cache_root(isolated_env)).load("BTCUSDT", "1")["ts"].to_list()
    finally:
        engine.dispose()


def test_backfill_pages_keeps_gaps_and_resumes_after_a_failure(
    fake: tuple[FakeBybit, int, set[int]], isolated_env: Path
) -> None:
    server, end, holes = fake
    # The exchange keeps failing (1 try + 1 retry): the run stops with an error, stores nothing.
    server.inject("/v5/market/kline", "http_503", times=2)
    failed = runner.invoke(app, ["data", "backfill", "--days", "2"])
    assert failed.exit_code == 1, failed.output
    assert "Traceback" not in failed.output
    assert _stored(isolated_env) == []

    server.clear_requests()
    first = runner.invoke(app, ["data", "backfill", "--days", "2"])
    assert first.exit_code == 0, first.output
    expected = [t for t in range(end - 2880 * MIN, end, MIN) if t not in holes]
    assert _stored(isolated_env) == expected
    assert f"{len(expected):,} new bars" in first.output
    assert "2 gaps, 6 missing bars" in first.output
    pages = _kline_requests(server)
    assert len(pages) == 3  # 2880 bars at 1000 a page
    assert all(int(r.params["limit"]) == 1000 for r in pages)

    # What a run leaves behind is always one run of bars ending now (pages go backwards), so
    # an interrupted longer backfill is exactly this state; a failed attempt changes nothing.
    server.inject("/v5/market/kline", "http_503", times=2)
    assert runner.invoke(app, ["data", "backfill", "--days", "3"]).exit_code == 1
    assert _stored(isolated_env) == expected
    server.clear_requests()
    resumed = runner.invoke(app, ["data", "backfill", "--days", "3"])
    assert resumed.exit_code == 0, resumed.output
    everything = [t for t in range(end - 3 * 1440 * MIN, end, MIN) if t not in holes]
    assert _stored(isolated_env) == everything
    # Only the older day was fetched: nothing inside the stored run was asked for again.
    assert all(int(r.params["end"]) < end - 2880 * MIN for r in _kline_requests(server))
    again = runner.invoke(app, ["data", "backfill", "--days", "3"])
    assert "0 new bars" in again.output
