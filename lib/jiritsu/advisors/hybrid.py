"""The hybrid advisor: the rule proposes, Gemini confirms or vetoes.

Gemini is asked only when the rule fires, so a bot on 5-minute bars spends calls on the few bars
where something would happen, not on all 288 a day. The policy, in order:

1. The rule's decision is not ``ok`` (it could not judge): passed on as is (provider "hybrid").
2. The rule says HOLD: that HOLD is the decision; **no Gemini call**.
3. The rule's BUY/SELL is not in ``snapshot.allowed_actions``, or its confidence is below the
   bot's ``strategy_params.min_confidence``: nothing could be executed, so Gemini is not asked
   and the decision is HOLD with a reason saying why.
4. Otherwise Gemini sees the snapshot plus the rule's proposal and answers:

   * the same action -> **confirmed**: that action, with confidence
     ``min(rule confidence, Gemini confidence)``. A trade needs BOTH to be sure, so the weaker
     of the two is the honest figure, and it is the one ``min_confidence`` is later held
     against (an average would let a confident rule carry a doubtful model over the line);
   * HOLD or the opposite action -> **veto**: HOLD, with Gemini's confidence and reason
     ("vetoed by Gemini: ...");
   * no usable answer (skipped, invalid, error) -> outcome ``skipped``: the rule is NOT acted on
     alone. Without the confirmation this advisor promises, the conservative choice is no trade
     this cycle; Gemini's own outcome and error are kept in the decision.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jiritsu.advisors.base import Advisor, Decision, MarketSnapshot
from jiritsu.advisors.gemini import GeminiAdvisor
from jiritsu.advisors.prompt import Proposal, fmt_number


def _gemini_fields(decision: Decision) -> dict[str, Any]:
    """The cost and provenance of the Gemini call, carried into the hybrid decision."""
    return {
        "model": decision.model,
        "latency_ms": decision.latency_ms,
        "prompt_tokens": decision.prompt_tokens,
        "output_tokens": decision.output_tokens,
    }


class HybridAdvisor:
    """Rules propose, Gemini confirms or vetoes (see the module docstring)."""

    provider = "hybrid"

    def __init__(self, rules: Advisor, gemini: GeminiAdvisor) -> None:
        self.rules = rules
        self.gemini = gemini

    def __repr__(self) -> str:
        return f"HybridAdvisor(rules={self.rules!r}, gemini={self.gemini!r})"

    def _min_confidence(self) -> float:
        params = getattr(self.gemini.bot, "strategy_params", None)
        return float(getattr(params, "min_confidence", 0.0) or 0.0)

    def decide(self, snapshot: MarketSnapshot) -> Decision:
        """The rule's decision, confirmed or vetoed by Gemini when it fires. Never raises for a
        missing or bad Gemini answer."""
        rule = self.rules.decide(snapshot)
        rule_view = {
            "action": rule.action,
            "confidence": rule.confidence,
            "reason": rule.reason,
            "outcome": rule.outcome,
        }
        if rule.outcome != "ok" or rule.action not in ("BUY", "SELL"):
            return replace(rule, provider=self.provider, extra={**rule.extra, "rule": rule_view})

        action = rule.action
        if action not in snapshot.allowed_actions:
            return self._hold_without_asking(
                rule, rule_view, f"the rule's {action} is not allowed now"
            )
        floor = self._min_confidence()
        if rule.confidence < floor:
            return self._hold_without_asking(
                rule,
                rule_view,
                f"the rule's {action} at confidence {fmt_number(rule.confidence)} is below "
                f"min_confidence {fmt_number(floor)}",
            )

        proposal = Proposal(action, float(rule.confidence), rule.reason)
        verdict = self.gemini.decide(snapshot, proposal)
        extra = {
            **verdict.extra,
            "rule": rule_view,
            "gemini": {
                "action": verdict.action,
                "confidence": verdict.confidence,
                "reason": verdict.reason,
                "outcome": verdict.outcome,
            },
        }
        if verdict.outcome != "ok" or verdict.action is None:
            return Decision(
                action=None,
                confidence=0.0,
                reason=(
                    f"skipped: the rule proposed {action} but Gemini's confirmation was "
                    f"unavailable ({verdict.outcome}: {verdict.reason}); not acting on the rule "
                    "alone"
                ),
                provider=self.provider,
                outcome="skipped",
                error=verdict.error,
                extra=extra,
                **_gemini_fields(verdict),
            )
        if verdict.action == action:
            return Decision(
                action=action,
                confidence=min(float(rule.confidence), float(verdict.confidence)),
                reason=f"rule: {rule.reason}; confirmed by Gemini: {verdict.reason}",
                provider=self.provider,
                outcome="ok",
                extra=extra,
                **_gemini_fields(verdict),
            )
        return Decision(
            action="HOLD",
            confidence=float(verdict.confidence),
            reason=(
                f"vetoed by Gemini: {verdict.reason} (Gemini answered {verdict.action} to the "
                f"rule's {action}: {rule.reason})"
            ),
            provider=self.provider,
            outcome="ok",
            extra=extra,
            **_gemini_fields(verdict),
        )

    def _hold_without_asking(self, rule: Decision, rule_view: dict[str, Any], why: str) -> Decision:
        return Decision(
            action="HOLD",
            confidence=0.0,  # no judgement was made; the rule's own figure is in extra["rule"]
            reason=f"HOLD: {why}; Gemini was not asked",
            provider=self.provider,
            outcome="ok",
            extra={**rule.extra, "rule": rule_view},
        )
