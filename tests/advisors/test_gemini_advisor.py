"""The Gemini advisor through the real shared client and google-genai, against the fake Gemini
served over HTTP on loopback. No part of google-genai is mocked."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.advisors.base import Decision, MarketSnapshot
from jiritsu.advisors.gemini import GeminiAdvisor
from jiritsu.advisors.prompt import REASON_MAX, build_prompt
from jiritsu.ai import Budget, GeminiClient
from jiritsu.db.models import SystemEvent
from jiritsu.notify import build_notifier
from tests.advisors import (
    GOOD_BUY,
    GOOD_HOLD,
    KEYS,
    MODEL,
    Sleeps,
    acts,
    make_bot,
    make_client,
    make_snapshot,
)
from tests.fakes.discord import FakeDiscord
from tests.fakes.gemini import FakeGemini


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(keys=KEYS) as server:
        yield server


def events(engine: Engine) -> list[tuple[str, str, str | None, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                SystemEvent.level, SystemEvent.event_type, SystemEvent.bot, SystemEvent.message
            ).order_by(SystemEvent.id)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def assert_no_judgement(decision: Decision) -> None:
    """A failure is never a judgement: no action (not even HOLD), nothing to execute."""
    assert decision.outcome != "ok"
    assert decision.action is None
    assert not acts(decision)
    assert decision.provider == "gemini"


# --------------------------------------------------------------------------- success


def test_a_valid_answer_becomes_a_decision_with_latency_tokens_and_prompt_hash(
    fake: FakeGemini,
) -> None:
    fake.enqueue_json(GOOD_BUY, usage={"promptTokenCount": 412, "candidatesTokenCount": 23})
    snapshot = make_snapshot()
    with make_client(fake) as client:
        decision = GeminiAdvisor(make_bot(), client, model=MODEL).decide(snapshot)

    assert decision.outcome == "ok"
    assert (decision.action, decision.confidence) == ("BUY", 0.8)
    assert decision.reason == GOOD_BUY["reason"]
    assert decision.provider == "gemini"
    assert decision.model == "gemini-fake-001"  # the answering model version
    assert isinstance(decision.latency_ms, int)
    assert decision.latency_ms >= 0
    assert (decision.prompt_tokens, decision.output_tokens) == (412, 23)
    assert decision.extra["total_tokens"] == 435
    assert acts(decision)

    prompt = build_prompt(snapshot)
    assert decision.extra["prompt_hash"] == prompt.prompt_hash
    [req] = fake.requests
    assert req.prompt_text == prompt.user  # the hash describes exactly what was sent
    assert req.system_text.startswith(prompt.system)
    assert req.response_mime_type == "application/json"
    schema = req.response_schema or {}
    assert schema["properties"]["action"]["enum"] == ["BUY", "SELL", "HOLD"]
    assert set(schema["required"]) == {"action", "confidence", "reason"}


def test_the_answer_reason_is_stripped_and_hold_is_a_judgement(fake: FakeGemini) -> None:
    fake.enqueue_json({**GOOD_HOLD, "reason": "   no trend.  "})
    with make_client(fake) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(make_snapshot())
    assert (decision.outcome, decision.action, decision.reason) == ("ok", "HOLD", "no trend.")
    assert not acts(decision)  # HOLD places nothing, but it IS a judgement


def test_keys_rotate_round_robin_across_decisions(fake: FakeGemini) -> None:
    for _ in range(4):
        fake.enqueue_json(GOOD_HOLD)
    with make_client(fake) as client:
        advisor = GeminiAdvisor(make_bot(), client)
        outcomes = [advisor.decide(make_snapshot()).outcome for _ in range(4)]
    assert outcomes == ["ok"] * 4
    assert fake.keys_used == [KEYS[0], KEYS[1], KEYS[2], KEYS[0]]


def test_a_429_on_one_key_moves_to_the_next_key_in_the_same_decision(fake: FakeGemini) -> None:
    fake.enqueue_status(429, for_key=KEYS[0])
    fake.enqueue_json(GOOD_BUY)
    sleeps = Sleeps()
    with make_client(fake, sleeps=sleeps) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(make_snapshot())
    assert (decision.outcome, decision.action) == ("ok", "BUY")
    assert fake.keys_used == [KEYS[0], KEYS[1]]
    assert [r.status for r in fake.requests] == [429, 200]
    assert sleeps == []  # at once, no back-off
    assert decision.extra["key_index"] == 1


# --------------------------------------------------------------------------- failures


def test_429_on_every_key_is_skipped_with_a_warning_event_and_no_action(
    fake: FakeGemini, engine: Engine
) -> None:
    for key in KEYS:
        fake.rate_limit_key(key)
    with make_client(fake) as client:
        decision = GeminiAdvisor(make_bot(), client, engine=engine).decide(make_snapshot())

    assert_no_judgement(decision)
    assert decision.outcome == "skipped"
    assert "rate-limited" in decision.reason
    assert sorted(fake.keys_used) == sorted(KEYS)  # each key tried once, then give up
    [(level, kind, bot, message)] = events(engine)
    assert (level, kind, bot) == ("WARNING", "ADVISOR_ERROR", "SubBot-C")
    assert "no Gemini decision this cycle" in message
    for key in KEYS:
        assert key not in message
        assert key not in (decision.error or "")


def test_malformed_json_is_retried_then_invalid_with_error_event_and_discord_alert(
    fake: FakeGemini, engine: Engine
) -> None:
    for _ in range(3):
        fake.enqueue_text('{"action": "BUY", "confidence": 0.8, "reason": "cut off')
    sleeps = Sleeps()
    with FakeDiscord() as discord, make_client(fake, sleeps=sleeps) as client:
        notifier = build_notifier(discord.url_for("9", "tok-advisor"))
        advisor = GeminiAdvisor(make_bot(), client, engine=engine, notifier=notifier)
        decision = advisor.decide(make_snapshot())
        messages = list(discord.messages)

    assert_no_judgement(decision)
    assert decision.outcome == "invalid"
    assert len(fake.requests) == 3  # first try + retry_attempts (2)
    assert sleeps == [1.0, 2.0]  # with back-off
    [(level, kind, bot, message)] = events(engine)
    assert (level, kind, bot) == ("ERROR", "ADVISOR_ERROR", "SubBot-C")
    assert "unusable answers" in message
    [alert] = messages
    assert alert["embeds"][0]["title"] == "[ERROR] ADVISOR_ERROR"
    assert "unusable answers" in json.dumps(alert)


@pytest.mark.parametrize(
    "answer",
    [
        {"action": "BUY", "confidence": 1.7, "reason": "very sure"},
        {"action": "BUY", "confidence": -0.1, "reason": "negative"},
        {"action": "BUY_MORE", "confidence": 0.9, "reason": "all in"},
        {"action": "buy", "confidence": 0.9, "reason": "lower case"},
        {"action": "BUY", "confidence": 0.9, "reason": ""},
        {"action": "BUY", "confidence": 0.9, "reason": "    "},
        {"action": "BUY", "confidence": 0.9, "reason": "x" * (REASON_MAX + 1)},
        {"action": "BUY", "confidence": "high", "reason": "wrong type"},
        {"action": "BUY", "reason": "no confidence"},
        {"action": "BUY", "confidence": 0.9, "reason": "ok", "size_usdt": 1e6},
        ["BUY", 0.9, "not an object"],
    ],
    ids=[
        "confidence-1.7",
        "confidence-negative",
        "action-BUY_MORE",
        "action-lowercase",
        "empty-reason",
        "blank-reason",
        "reason-too-long",
        "confidence-string",
        "missing-field",
        "extra-field",
        "not-an-object",
    ],
)
def test_schema_violations_are_invalid_after_retries(fake: FakeGemini, answer: Any) -> None:
    for _ in range(3):
        fake.enqueue_json(answer)
    with make_client(fake) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(make_snapshot())
    assert_no_judgement(decision)
    assert decision.outcome == "invalid"
    assert len(fake.requests) == 3


def test_a_bad_answer_then_a_good_one_is_a_decision(fake: FakeGemini) -> None:
    fake.enqueue_json({"action": "BUY", "confidence": 1.7, "reason": "very sure"})
    fake.enqueue_json(GOOD_BUY)
    with make_client(fake) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(make_snapshot())
    assert (decision.outcome, decision.action) == ("ok", "BUY")
    assert decision.extra["attempts"] == 2


def test_timeouts_are_an_error_never_a_decision(fake: FakeGemini) -> None:
    for _ in range(2):
        fake.enqueue_delay(20, then=GOOD_BUY)  # the answer comes long after the client gave up
    with make_client(fake, retry_attempts=1, timeout=0.5) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(make_snapshot())
    assert_no_judgement(decision)
    assert decision.outcome == "error"
    assert "Timeout" in (decision.error or "")
    assert len(fake.requests) == 2


def test_an_unreachable_server_is_an_error(fake: FakeGemini) -> None:
    fake.stop()  # nothing listens on the port any more
    with make_client(fake, retry_attempts=1, timeout=2) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(make_snapshot())
    assert_no_judgement(decision)
    assert decision.outcome == "error"


def test_an_action_that_is_not_allowed_is_invalid_and_not_retried(fake: FakeGemini) -> None:
    fake.enqueue_json(GOOD_BUY, usage={"promptTokenCount": 300, "candidatesTokenCount": 20})
    snapshot = make_snapshot(allowed_actions=("SELL", "HOLD"))
    with make_client(fake) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(snapshot)
    assert_no_judgement(decision)
    assert decision.outcome == "invalid"
    assert "not allowed" in decision.reason
    assert decision.extra["answer"] == {"action": "BUY", "confidence": 0.8}
    assert (decision.prompt_tokens, decision.output_tokens) == (300, 20)  # the call still cost
    assert len(fake.requests) == 1
    assert "Allowed actions: SELL, HOLD" in fake.requests[0].prompt_text


def test_only_hold_allowed_means_no_call(fake: FakeGemini) -> None:
    with make_client(fake) as client:
        decision = GeminiAdvisor(make_bot(), client).decide(
            make_snapshot(allowed_actions=("HOLD",))
        )
    assert_no_judgement(decision)
    assert decision.outcome == "skipped"
    assert fake.requests == []


def test_a_spent_budget_is_skipped_without_any_request(fake: FakeGemini, engine: Engine) -> None:
    budget = Budget(engine, "gemini", daily_requests=0, daily_tokens=1_000_000)
    fake.enqueue_json(GOOD_BUY)
    with make_client(fake, budget=budget) as client:
        advisor = GeminiAdvisor(make_bot(), client, engine=engine)
        first = advisor.decide(make_snapshot())
        second = advisor.decide(make_snapshot())

    for decision in (first, second):
        assert_no_judgement(decision)
        assert decision.outcome == "skipped"
        assert "budget" in decision.reason
    assert fake.requests == []  # nothing reached the server
    assert fake.pending == 1
    warnings = [e for e in events(engine) if e[0] == "WARNING"]
    assert len(warnings) == 1  # once per day, not once per bar
    assert "budget spent" in warnings[0][3]


def test_tokens_are_counted_in_the_budget(fake: FakeGemini, engine: Engine) -> None:
    budget = Budget(engine, "gemini", daily_requests=10, daily_tokens=1_000_000)
    fake.enqueue_json(GOOD_BUY, usage={"promptTokenCount": 400, "candidatesTokenCount": 25})
    with make_client(fake, budget=budget) as client:
        decision = GeminiAdvisor(make_bot(), client, engine=engine).decide(make_snapshot())
    assert decision.outcome == "ok"
    usage = budget.usage_today()
    assert (usage.requests, usage.prompt_tokens, usage.output_tokens) == (1, 400, 25)


# --------------------------------------------------------------------------- alerts


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Alerts:
    """A notifier that keeps what it is asked to send (the real Discord path is tested above)."""

    sent: list[tuple[str, str, str]] = field(default_factory=list)

    def notify(self, level: str, title: str, message: str, fields: Any = None) -> bool:
        self.sent.append((level, title, message))
        return True

    def send_report(self, title: str, sections: Any) -> bool:
        return True


def test_discord_alerts_start_a_failure_streak_and_are_then_rate_limited(
    fake: FakeGemini,
) -> None:
    clock, alerts = Clock(), Alerts()
    with make_client(fake, retry_attempts=0) as client:
        advisor = GeminiAdvisor(
            make_bot(), client, notifier=alerts, alert_interval_seconds=3600, clock=clock
        )

        def fail() -> Decision:
            fake.enqueue_status(500)
            return advisor.decide(make_snapshot())

        assert [fail().outcome for _ in range(3)] == ["error"] * 3
        assert len(alerts.sent) == 1  # the streak's first failure only
        clock.now += 3600
        fail()
        assert len(alerts.sent) == 2  # still failing an hour later: reminded once
        fake.enqueue_json(GOOD_HOLD)
        assert advisor.decide(make_snapshot()).outcome == "ok"
        assert advisor.failure_streak == 0
        fail()
        assert len(alerts.sent) == 3  # a new streak alerts at once
    assert all(level == "ERROR" for level, _, _ in alerts.sent)


def test_the_factory_signature_still_works(fake: FakeGemini) -> None:
    with make_client(fake) as client:
        advisor = GeminiAdvisor(make_bot(), client, model=client.model)
        assert advisor.provider == "gemini"
        with pytest.raises(ValueError, match="differs"):
            GeminiAdvisor(make_bot(), client, model="another-model")


# --------------------------------------------------------------------------- the property


def _all_keys_429(fake: FakeGemini) -> None:
    for key in KEYS:
        fake.rate_limit_key(key)


def _bad(text: str) -> Callable[[FakeGemini], None]:
    def script(fake: FakeGemini) -> None:
        for _ in range(3):
            fake.enqueue_text(text)

    return script


def _status(code: int) -> Callable[[FakeGemini], None]:
    return lambda fake: fake.enqueue_status(code, times=3)


def _timeouts(fake: FakeGemini) -> None:
    for _ in range(3):
        fake.enqueue_delay(20, then=GOOD_BUY)


def _disallowed(fake: FakeGemini) -> None:
    fake.enqueue_json({"action": "SELL", "confidence": 0.99, "reason": "short it"})


def _unknown_key(fake: FakeGemini) -> None:
    pass  # the client's keys are not the fake's: every key is refused with 400


FAILURES: dict[str, tuple[Callable[[FakeGemini], None], dict[str, Any]]] = {
    "all-keys-429": (_all_keys_429, {}),
    "not-json": (_bad("BUY, definitely"), {}),
    "fenced-json": (_bad('```json\n{"action": "BUY"}\n```'), {}),
    "empty-text": (_bad(""), {}),
    "confidence-1.7": (_bad('{"action": "BUY", "confidence": 1.7, "reason": "x"}'), {}),
    "action-BUY_MORE": (_bad('{"action": "BUY_MORE", "confidence": 0.9, "reason": "x"}'), {}),
    "empty-reason": (_bad('{"action": "SELL", "confidence": 0.9, "reason": ""}'), {}),
    "nan-confidence": (_bad('{"action": "BUY", "confidence": NaN, "reason": "x"}'), {}),
    "server-errors": (_status(503), {}),
    "timeouts": (_timeouts, {"timeout": 0.5}),
    "disallowed-action": (_disallowed, {"allowed": ("BUY", "HOLD")}),
    "keys-refused": (_unknown_key, {"keys": ("gk-unknown-key-0001", "gk-unknown-key-0002")}),
    "budget-spent": (lambda fake: fake.enqueue_json(GOOD_BUY), {"budget": 0}),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_no_failure_ever_yields_an_actionable_decision(
    fake: FakeGemini, sqlite_url: str, case: str
) -> None:
    """No order is ever placed from an invalid answer: every non-ok outcome has no action."""
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine

    script, options = FAILURES[case]
    script(fake)
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    budget = None
    if "budget" in options:
        budget = Budget(engine, daily_requests=options["budget"], daily_tokens=10**6)
    snapshot: MarketSnapshot = make_snapshot(
        allowed_actions=options.get("allowed", ("BUY", "SELL", "HOLD"))
    )
    client: GeminiClient = make_client(
        fake,
        options.get("keys", KEYS),
        retry_attempts=2 if "timeout" not in options else 1,
        timeout=options.get("timeout", 10),
        budget=budget,
    )
    try:
        with client:
            decision = GeminiAdvisor(make_bot(), client, engine=engine).decide(snapshot)
    finally:
        engine.dispose()
    assert_no_judgement(decision)
    assert decision.outcome in ("skipped", "invalid", "error")
    assert decision.confidence == 0.0
    assert decision.error
