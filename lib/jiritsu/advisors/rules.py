"""The rules advisor: the bot's own indicator rule, offline, free and deterministic.

The engine computes the rule's answer with the strategy kernel's functions
(:mod:`jiritsu.strategy.rules`, the same ones a backtest runs) and hands it over in
``snapshot.rule_signal``; this advisor only makes it a :class:`Decision`, so the live bot, the
hybrid advisor's proposal and a backtest can never disagree on what "the rule" said. A snapshot
without ``rule_signal`` (built by hand) is judged from ``snapshot.indicators`` with the same
functions: ``ema_fast``/``ema_slow`` with ``ema_fast_prev``/``ema_slow_prev`` for a cross, or
``rsi``.
"""

from __future__ import annotations

from typing import Any

from jiritsu.advisors.base import Action, Decision, MarketSnapshot

_NAMES: dict[int, Action] = {1: "BUY", -1: "SELL", 0: "HOLD"}


class RulesAdvisor:
    """Decides with the bot's ``strategy_params.rule``; never calls anything outside."""

    provider = "rules"

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    def __repr__(self) -> str:
        return f"RulesAdvisor({self.bot.name}: {self.bot.strategy_params.rule})"

    def decide(self, snapshot: MarketSnapshot) -> Decision:
        """The rule's answer (outcome "skipped" when the indicators are not available)."""
        if snapshot.rule_signal is not None:
            action, confidence, reason = snapshot.rule_signal
            return Decision(action, float(confidence), reason, self.provider)
        return self._from_indicators(snapshot)

    def _from_indicators(self, snapshot: MarketSnapshot) -> Decision:
        import numpy as np

        from jiritsu.strategy.rules import ema_cross_signal, rsi_reversion_signal

        ind = snapshot.indicators
        sp = self.bot.strategy_params
        try:
            if sp.rule == "ema_cross":
                fast = np.array([ind["ema_fast_prev"], ind["ema_fast"]], dtype=np.float64)
                slow = np.array([ind["ema_slow_prev"], ind["ema_slow"]], dtype=np.float64)
                close = np.array([snapshot.price, snapshot.price], dtype=np.float64)
                atr = np.array([ind["atr"], ind["atr"]], dtype=np.float64)
                code, conf = ema_cross_signal(1, close, fast, slow, atr)
                what = f"EMA {ind['ema_fast']:.6g} vs {ind['ema_slow']:.6g}"
            else:
                rsi = np.array([ind["rsi"]], dtype=np.float64)
                code, conf = rsi_reversion_signal(0, rsi, float(sp.rsi_lower), float(sp.rsi_upper))
                what = f"RSI {ind['rsi']:.4g} (zone {sp.rsi_lower:g}/{sp.rsi_upper:g})"
        except (KeyError, TypeError, ValueError) as exc:
            return Decision(
                None, 0.0, f"indicators missing: {exc}", self.provider, outcome="skipped"
            )
        action = _NAMES[int(code)]
        return Decision(action, float(conf), f"{sp.rule} {action}: {what}", self.provider)
