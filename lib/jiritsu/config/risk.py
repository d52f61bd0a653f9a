"""``[risk]``: the circuit breakers."""

from __future__ import annotations

from pydantic import Field

from jiritsu.config.base import Int, Model, Rate


class RiskSettings(Model):
    max_drawdown_pct: Rate = 0.15
    daily_loss_pct: Rate = 0.05
    crash_move_pct: Rate = 0.08
    crash_window_minutes: Int = Field(default=60, ge=1)
    max_consecutive_losses: Int = Field(default=5, ge=1)
    exchange_failure_limit: Int = Field(default=5, ge=1)
    cooldown_minutes: Int = Field(default=0, ge=0)
    crash_cooldown_minutes: Int = Field(default=240, ge=0)
    loss_streak_cooldown_minutes: Int = Field(default=1440, ge=0)
