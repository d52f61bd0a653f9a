"""The daily request/token budget: persisted in api_usage, shared, atomic, enforced before calls."""

from __future__ import annotations

import os
import threading
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from jiritsu.ai import Budget, BudgetExhausted, GeminiClient, build_gemini_client
from jiritsu.config import load_config
from jiritsu.db.models import ApiUsage
from tests.ai.conftest import KEYS
from tests.conftest import REPO
from tests.fakes.gemini import FakeGemini

T0 = datetime(2026, 3, 1, 23, 59, tzinfo=timezone.utc)


class Answer(BaseModel):
    value: int


def _client(fake: FakeGemini, budget: Budget) -> GeminiClient:
    return GeminiClient(
        KEYS,
        model="gemini-2.5-flash",
        timeout_seconds=10,
        retry_attempts=1,
        base_url=fake.base_url,
        budget=budget,
        sleep=lambda _s: None,
    )


def test_token_usage_is_recorded_per_utc_day(engine: Engine, fake: FakeGemini) -> None:
    budget = Budget(engine, "gemini", daily_requests=100, daily_tokens=10_000, clock=lambda: T0)
    fake.enqueue_json({"value": 1}, usage={"promptTokenCount": 120, "candidatesTokenCount": 8})
    fake.enqueue_json({"value": 2}, usage={"promptTokenCount": 100, "candidatesTokenCount": 4})
    with _client(fake, budget) as client:
        client.generate_json("a", Answer)
        client.generate_json("b", Answer)

    usage = budget.usage_today()
    assert (usage.day, usage.requests) == (date(2026, 3, 1), 2)
    assert (usage.prompt_tokens, usage.output_tokens, usage.tokens) == (220, 12, 232)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(ApiUsage.day, ApiUsage.provider, ApiUsage.requests)).all()
    assert rows == [(date(2026, 3, 1), "gemini", 2)]


def test_failed_attempts_count_as_requests(engine: Engine, fake: FakeGemini) -> None:
    budget = Budget(engine, daily_requests=100, daily_tokens=10_000, clock=lambda: T0)
    fake.enqueue_status(429, for_key=KEYS[0])
    fake.enqueue_json({"value": 1}, usage={"promptTokenCount": 10, "candidatesTokenCount": 2})
    with _client(fake, budget) as client:
        client.generate_json("a", Answer)
    assert budget.usage_today().requests == 2  # Google counts the 429 too
    assert budget.usage_today().tokens == 12


def test_request_budget_stops_calls_before_any_request(engine: Engine, fake: FakeGemini) -> None:
    budget = Budget(engine, daily_requests=2, daily_tokens=10_000, clock=lambda: T0)
    for i in range(3):
        fake.enqueue_json({"value": i})
    with _client(fake, budget) as client:
        client.generate_json("a", Answer)
        client.generate_json("b", Answer)
        with pytest.raises(BudgetExhausted, match="request budget spent: 2 of 2"):
            client.generate_json("c", Answer)
    assert len(fake.requests) == 2  # the third call never reached the server
    assert fake.pending == 1


def test_token_budget_stops_calls_before_any_request(engine: Engine, fake: FakeGemini) -> None:
    budget = Budget(engine, daily_requests=100, daily_tokens=50, clock=lambda: T0)
    fake.enqueue_json({"value": 1}, usage={"promptTokenCount": 45, "candidatesTokenCount": 10})
    with _client(fake, budget) as client:
        client.generate_json("a", Answer)  # allowed: 0 < 50 before it; 55 after it
        with pytest.raises(BudgetExhausted, match="token budget spent: 55 of 50"):
            client.generate_json("b", Answer)
    assert len(fake.requests) == 1


def test_a_budget_of_zero_allows_no_call(sqlite_engine: Engine, fake: FakeGemini) -> None:
    budget = Budget(sqlite_engine, daily_requests=0, daily_tokens=1000, clock=lambda: T0)
    with pytest.raises(BudgetExhausted):
        budget.check()
    with _client(fake, budget) as client, pytest.raises(BudgetExhausted):
        client.generate_json("a", Answer)
    assert fake.requests == []


def test_budget_resets_at_midnight_utc(sqlite_engine: Engine) -> None:
    now = [T0]
    budget = Budget(sqlite_engine, daily_requests=1, daily_tokens=100, clock=lambda: now[0])
    budget.acquire()
    with pytest.raises(BudgetExhausted):
        budget.acquire()
    now[0] = T0 + timedelta(minutes=1)  # 2026-03-02 00:00 UTC
    budget.acquire()
    assert budget.usage_today().day == date(2026, 3, 2)
    assert budget.usage_today().requests == 1
    # a local time zone does not move the UTC day
    tokyo = timezone(timedelta(hours=9))
    now[0] = datetime(2026, 3, 2, 8, 0, tzinfo=tokyo)  # 2026-03-01 23:00 UTC
    assert budget.today() == date(2026, 3, 1)


def test_budgets_are_shared_between_instances(sqlite_engine: Engine) -> None:
    """Two Budget objects (as in two processes) see and spend the same row."""
    one = Budget(sqlite_engine, daily_requests=3, daily_tokens=100, clock=lambda: T0)
    two = Budget(sqlite_engine, daily_requests=3, daily_tokens=100, clock=lambda: T0)
    one.acquire()
    two.acquire()
    one.record(30, 5, requests=0)
    assert two.usage_today().requests == 2
    assert two.usage_today().tokens == 35
    two.acquire()
    with pytest.raises(BudgetExhausted):
        one.acquire()


def test_concurrent_acquire_never_exceeds_the_budget(engine: Engine) -> None:
    """Eight threads, each on its own connection, race for 20 requests; exactly 20 win."""
    budget = Budget(engine, daily_requests=20, daily_tokens=10**9, clock=lambda: T0)
    wins: list[int] = []
    losses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def worker() -> None:
        start.wait()
        for _ in range(5):
            try:
                budget.acquire()
                budget.record(1, 1, requests=0)
                outcome = wins
            except BudgetExhausted:
                outcome = losses
            with lock:
                outcome.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert (len(wins), len(losses)) == (20, 20)
    usage = budget.usage_today()
    assert (usage.requests, usage.prompt_tokens, usage.output_tokens) == (20, 20, 20)


def test_build_gemini_client_from_the_configuration(
    sqlite_engine: Engine, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEYS", ",".join(KEYS))
    monkeypatch.setenv("JIRITSU_GEMINI__BASE_URL", fake.base_url)
    monkeypatch.setenv("JIRITSU_GEMINI__DAILY_REQUEST_BUDGET", "7")
    loaded = load_config(REPO / "config.toml")
    client = build_gemini_client(loaded, sqlite_engine)
    assert client is not None
    assert client.key_count == 3
    assert client.budget is not None
    assert client.budget.daily_requests == 7
    fake.enqueue_json({"value": 5})
    with client:
        assert client.generate_json("q", Answer).value == Answer(value=5)
    assert fake.requests[0].model == loaded.settings.gemini.model


def test_build_gemini_client_without_keys_is_none(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GEMINI_API_KEYS", raising=False)
    assert "GEMINI_API_KEYS" not in os.environ
    loaded = load_config(REPO / "config.toml")
    assert build_gemini_client(loaded, sqlite_engine) is None
