"""The rules advisor: the bot's own strategy, offline, free and deterministic.

The engine computes the strategy's answer (:mod:`jiritsu.strategy.contract`, the same signals a
backtest runs) and hands it over in ``snapshot.rule_signal``; this advisor only makes it a
:class:`Decision`, so the live bot, the hybrid advisor's proposal and a backtest can never
disagree on what "the rule" said. A snapshot without ``rule_signal`` (built by hand) has no
answer to pass on: the decision is "skipped", never a guess.
"""

from __future__ import annotations

from typing import Any

from jiritsu.advisors.base import Decision, MarketSnapshot


class RulesAdvisor:
    """Decides with the bot's strategy (``strategy_params.rule``); never calls anything outside."""

    provider = "rules"

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    def __repr__(self) -> str:
        return f"RulesAdvisor({self.bot.name}: {self.bot.strategy_params.rule})"

    def decide(self, snapshot: MarketSnapshot) -> Decision:
        """The strategy's answer (outcome "skipped" when the snapshot carries none)."""
        if snapshot.rule_signal is None:
            return Decision(
                None, 0.0, "no strategy signal in the snapshot", self.provider, outcome="skipped"
            )
        action, confidence, reason = snapshot.rule_signal
        return Decision(action, float(confidence), reason, self.provider)
