"""Advisors: rules (offline default), Gemini, and hybrid (rules propose, Gemini confirms)."""

from jiritsu.advisors.base import ACTIONS, Action, Advisor, Decision, MarketSnapshot

__all__ = ["ACTIONS", "Action", "Advisor", "Decision", "MarketSnapshot"]
