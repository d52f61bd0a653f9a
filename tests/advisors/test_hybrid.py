"""The hybrid advisor: rules propose, Gemini (real client, fake server) confirms or vetoes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.advisors.base import Action, Decision, MarketSnapshot
from jiritsu.advisors.gemini import GeminiAdvisor
from jiritsu.advisors.hybrid import HybridAdvisor
from jiritsu.ai import GeminiClient
from jiritsu.db.models import SystemEvent
from tests.advisors import GOOD_BUY, GOOD_HOLD, KEYS, acts, make_bot, make_client, make_snapshot
from tests.fakes.gemini import FakeGemini


class ScriptedRules:
    """Stand-in for the rules advisor: proposes whatever ``snapshot.rule_signal`` says."""

    provider = "rules"

    def __init__(self, outcome: str = "ok") -> None:
        self.outcome = outcome
        self.calls = 0

    def decide(self, snapshot: MarketSnapshot) -> Decision:
        self.calls += 1
        if self.outcome != "ok":
            return Decision(None, 0.0, "not enough bars", "rules", outcome="skipped")
        action, confidence, reason = snapshot.rule_signal or ("HOLD", 0.0, "no signal")
        return Decision(action, confidence, reason, "rules")


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(keys=KEYS) as server:
        yield server


@pytest.fixture
def client(fake: FakeGemini) -> Iterator[GeminiClient]:
    with make_client(fake) as c:
        yield c


def hybrid(client: GeminiClient, engine: Engine | None = None) -> HybridAdvisor:
    return HybridAdvisor(ScriptedRules(), GeminiAdvisor(make_bot(), client, engine=engine))


def signal(action: Action, confidence: float = 0.7, reason: str = "RSI 23.9 below 25") -> tuple:
    return (action, confidence, reason)


def test_rule_hold_means_no_gemini_call(fake: FakeGemini, client: GeminiClient) -> None:
    decision = hybrid(client).decide(make_snapshot(rule_signal=signal("HOLD", 0.0, "RSI 50")))
    assert (decision.outcome, decision.action, decision.provider) == ("ok", "HOLD", "hybrid")
    assert decision.reason == "RSI 50"
    assert decision.extra["rule"]["action"] == "HOLD"
    assert fake.requests == []


def test_rule_buy_confirmed_by_gemini_is_a_buy_at_the_lower_confidence(
    fake: FakeGemini, client: GeminiClient
) -> None:
    fake.enqueue_json(
        {**GOOD_BUY, "confidence": 0.9},
        usage={"promptTokenCount": 420, "candidatesTokenCount": 30},
    )
    decision = hybrid(client).decide(make_snapshot(rule_signal=signal("BUY", 0.7)))
    assert (decision.outcome, decision.action, decision.provider) == ("ok", "BUY", "hybrid")
    assert decision.confidence == 0.7  # min(rule 0.7, Gemini 0.9)
    assert acts(decision)
    assert decision.reason.startswith("rule: RSI 23.9 below 25; confirmed by Gemini: ")
    assert (decision.prompt_tokens, decision.output_tokens) == (420, 30)
    assert decision.model == "gemini-fake-001"
    assert decision.latency_ms is not None
    assert decision.extra["prompt_hash"]
    assert decision.extra["gemini"]["confidence"] == 0.9
    [req] = fake.requests
    assert "Rule proposal: BUY with confidence 0.7 (RSI 23.9 below 25)" in req.prompt_text


def test_a_less_sure_gemini_lowers_the_confidence(fake: FakeGemini, client: GeminiClient) -> None:
    fake.enqueue_json({"action": "SELL", "confidence": 0.6, "reason": "RSI 78 and falling."})
    decision = hybrid(client).decide(make_snapshot(rule_signal=signal("SELL", 0.9, "RSI 78")))
    assert (decision.action, decision.confidence) == ("SELL", 0.6)


def test_rule_buy_and_gemini_hold_is_a_veto(fake: FakeGemini, client: GeminiClient) -> None:
    fake.enqueue_json(GOOD_HOLD)
    decision = hybrid(client).decide(make_snapshot(rule_signal=signal("BUY")))
    assert (decision.outcome, decision.action) == ("ok", "HOLD")
    assert decision.reason.startswith(f"vetoed by Gemini: {GOOD_HOLD['reason']}")
    assert decision.confidence == GOOD_HOLD["confidence"]
    assert not acts(decision)


def test_gemini_answering_the_opposite_is_a_veto_not_a_reversal(
    fake: FakeGemini, client: GeminiClient
) -> None:
    fake.enqueue_json({"action": "SELL", "confidence": 0.95, "reason": "Downtrend: ADX 35."})
    decision = hybrid(client).decide(make_snapshot(rule_signal=signal("BUY")))
    assert (decision.outcome, decision.action) == ("ok", "HOLD")
    assert decision.reason.startswith("vetoed by Gemini: Downtrend: ADX 35.")


def test_rule_buy_with_every_key_rate_limited_is_skipped(fake: FakeGemini, engine: Engine) -> None:
    for key in KEYS:
        fake.rate_limit_key(key)
    with make_client(fake) as client:
        decision = hybrid(client, engine).decide(make_snapshot(rule_signal=signal("BUY")))
    assert (decision.outcome, decision.action, decision.provider) == ("skipped", None, "hybrid")
    assert not acts(decision)
    assert "confirmation was unavailable" in decision.reason
    assert "not acting on the rule alone" in decision.reason
    assert decision.extra["gemini"]["outcome"] == "skipped"
    with engine.connect() as conn:
        levels = conn.execute(sa.select(SystemEvent.level, SystemEvent.event_type)).all()
    assert [tuple(r) for r in levels] == [("WARNING", "ADVISOR_ERROR")]


@pytest.mark.parametrize(
    "script",
    ["invalid", "error", "disallowed"],
)
def test_no_usable_confirmation_never_acts_on_the_rule_alone(fake: FakeGemini, script: str) -> None:
    if script == "invalid":
        for _ in range(3):
            fake.enqueue_json({"action": "BUY", "confidence": 1.7, "reason": "sure"})
    elif script == "error":
        fake.enqueue_status(503, times=3)
    else:  # Gemini answers an action the risk layer does not allow right now
        fake.enqueue_json({"action": "SELL", "confidence": 0.9, "reason": "short it"})
    snapshot = make_snapshot(rule_signal=signal("BUY", 0.9), allowed_actions=("BUY", "HOLD"))
    with make_client(fake) as client:
        decision = hybrid(client).decide(snapshot)
    assert (decision.outcome, decision.action) == ("skipped", None)
    assert not acts(decision)


def test_a_rule_signal_below_min_confidence_is_not_sent_to_gemini(
    fake: FakeGemini, client: GeminiClient
) -> None:
    decision = hybrid(client).decide(make_snapshot(rule_signal=signal("BUY", 0.4)))
    assert (decision.outcome, decision.action) == ("ok", "HOLD")
    assert "below min_confidence 0.55" in decision.reason
    assert fake.requests == []


def test_a_rule_action_that_is_not_allowed_is_not_sent_to_gemini(
    fake: FakeGemini, client: GeminiClient
) -> None:
    snapshot = make_snapshot(rule_signal=signal("SELL", 0.9), allowed_actions=("BUY", "HOLD"))
    decision = hybrid(client).decide(snapshot)
    assert (decision.outcome, decision.action) == ("ok", "HOLD")
    assert "not allowed" in decision.reason
    assert fake.requests == []


def test_a_rule_that_could_not_judge_is_passed_on(fake: FakeGemini, client: GeminiClient) -> None:
    advisor = HybridAdvisor(ScriptedRules(outcome="skipped"), GeminiAdvisor(make_bot(), client))
    decision = advisor.decide(make_snapshot(rule_signal=signal("BUY", 0.9)))
    assert (decision.outcome, decision.action, decision.provider) == ("skipped", None, "hybrid")
    assert fake.requests == []


def test_the_factory_builds_a_hybrid_for_the_default_hybrid_bot(
    fake: FakeGemini, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jiritsu.advisors.factory import build_advisor
    from jiritsu.config import load_config
    from jiritsu.db import migrate
    from jiritsu.db.engine import make_engine
    from tests.conftest import REPO

    monkeypatch.setenv("GEMINI_API_KEYS", ",".join(KEYS))
    monkeypatch.setenv("JIRITSU_GEMINI__BASE_URL", fake.base_url)
    loaded = load_config(REPO / "config.toml")
    bot = next(b for b in loaded.settings.sub_bots if b.advisor == "hybrid")
    migrate.upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    try:
        advisor = build_advisor(bot, loaded, engine)
    finally:
        engine.dispose()
    assert isinstance(advisor, HybridAdvisor)
    assert isinstance(advisor.gemini, GeminiAdvisor)
    assert advisor.gemini.model == loaded.settings.gemini.model
    advisor.gemini.client.close()
