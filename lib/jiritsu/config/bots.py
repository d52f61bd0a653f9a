"""``[[sub_bots]]`` and ``[strategies]``: each bot's market, sizing, split entries and strategy
parameters (a strategy's own parameters are checked by its ``Params``), and the three default
bots."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from jiritsu.config.base import (
    BotName,
    Dec,
    EnvName,
    Float,
    Int,
    Interval,
    Model,
    Problems,
    Rate,
    Symbol,
    config_dir,
    env_stem,
    resolve_path,
)


class VolatilityThresholds(Model):
    low: Float = Field(default=0.005, gt=0, lt=1)
    medium: Float = Field(default=0.015, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> VolatilityThresholds:
        if not self.low < self.medium:
            raise Problems([(("medium",), f"must be greater than low ({self.low})")])
        return self


class SizingMultipliers(Model):
    low: Dec = Field(default=Decimal("1.2"), gt=0, le=10)
    medium: Dec = Field(default=Decimal("1.0"), gt=0, le=10)
    high: Dec = Field(default=Decimal("0.6"), gt=0, le=10)


class DynamicSizing(Model):
    enabled: bool = True
    volatility_indicator: Literal["ATR"] = "ATR"
    atr_period: Int = Field(default=14, ge=2, le=500)
    volatility_thresholds: VolatilityThresholds = Field(default_factory=VolatilityThresholds)
    sizing_multipliers: SizingMultipliers = Field(default_factory=SizingMultipliers)


class SplitEntry(Model):
    enabled: bool = False
    count: Int = Field(default=3, ge=1, le=10)
    method: Literal["time", "price"] = "time"
    interval_seconds: Int = Field(default=60, gt=0)
    price_step_pct: Float = Field(default=0.002, gt=0, lt=1)
    timeout_seconds: Int = Field(default=600, gt=0)

    @model_validator(mode="after")
    def _fits_timeout(self) -> SplitEntry:
        span = (self.count - 1) * self.interval_seconds
        if self.enabled and self.method == "time" and span > self.timeout_seconds:
            raise Problems(
                [
                    (
                        ("timeout_seconds",),
                        f"must be at least (count - 1) * interval_seconds = {span}, "
                        "or the last slices never happen",
                    )
                ]
            )
        return self


class StrategyParams(Model):
    """``rule`` names the bot's strategy (:mod:`jiritsu.strategy.registry`); its own parameters
    sit beside the kernel's keys below and are validated by the strategy's ``Params`` (see
    ``Settings._strategy_params``)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    rule: str = Field(default="ema_cross", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    tp_sl_enabled: bool = True
    tp_ratio: Float = Field(default=2.0, gt=0)
    sl_ratio: Float = Field(default=1.0, gt=0)
    min_confidence: Rate = 0.6

    @property
    def strategy_values(self) -> dict[str, Any]:
        """The strategy's own parameters as written (everything but the kernel's keys)."""
        return dict(self.model_extra or {})


class StrategiesSettings(Model):
    """Where user strategies live: ``*.py`` files in these directories (relative to the config
    file; a missing directory is no error)."""

    paths: list[str] = Field(default_factory=lambda: ["strategies"], validate_default=True)

    @field_validator("paths")
    @classmethod
    def _absolute(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return [str(resolve_path(v, config_dir(info))) for v in value]


class SubBot(Model):
    name: BotName
    enabled: bool = True
    symbol: Symbol = "BTCUSDT"
    category: Literal["linear", "spot"] = "linear"
    timeframe: Interval = "15"
    base_lot: Dec = Field(default=Decimal("100"), gt=0)
    sizing: Literal["lot", "risk"] = "risk"
    risk_per_trade: Rate = Field(default=0.01, gt=0, le=0.1)
    max_capital_pct: Rate = Field(default=0.98, gt=0)
    advisor: Literal["rules", "gemini", "hybrid"] = "rules"
    allow_short: bool = False
    max_holding_minutes: Int | None = Field(default=None, gt=0)
    member_id: Int | None = Field(default=None, gt=0)
    api_key_env: EnvName
    api_secret_env: EnvName
    dynamic_sizing: DynamicSizing = Field(default_factory=DynamicSizing)
    split_entry: SplitEntry = Field(default_factory=SplitEntry)
    strategy_params: StrategyParams = Field(default_factory=StrategyParams)

    @model_validator(mode="before")
    @classmethod
    def _default_env_names(cls, data: Any) -> Any:
        """Key names default from the bot name: SubBot-A -> BYBIT_SUBBOT_A_API_KEY."""
        if isinstance(data, dict) and isinstance(data.get("name"), str):
            stem = env_stem(data["name"])
            if stem:
                data = dict(data)
                data.setdefault("api_key_env", f"BYBIT_{stem}_API_KEY")
                data.setdefault("api_secret_env", f"BYBIT_{stem}_API_SECRET")
        return data

    @model_validator(mode="after")
    def _spot_is_long_only(self) -> SubBot:
        if self.category == "spot" and self.allow_short:
            raise Problems(
                [(("allow_short",), "must be false for spot (spot can only sell what it holds)")]
            )
        return self


DEFAULT_SUB_BOTS: list[dict[str, Any]] = [
    {
        "name": "SubBot-A",
        "enabled": True,
        "symbol": "BTCUSDT",
        "category": "spot",
        "timeframe": "60",
        "base_lot": "50",
        "sizing": "risk",
        "risk_per_trade": 0.01,
        "max_capital_pct": 0.98,
        "advisor": "rules",
        "allow_short": False,
        "api_key_env": "BYBIT_SUBBOT_A_API_KEY",
        "api_secret_env": "BYBIT_SUBBOT_A_API_SECRET",
        "dynamic_sizing": {
            "enabled": True,
            "volatility_indicator": "ATR",
            "atr_period": 14,
            "volatility_thresholds": {"low": 0.004, "medium": 0.012},
            "sizing_multipliers": {"low": "1.0", "medium": "0.8", "high": "0.5"},
        },
        "split_entry": {
            "enabled": False,
            "count": 2,
            "method": "time",
            "interval_seconds": 300,
            "price_step_pct": 0.003,
            "timeout_seconds": 1800,
        },
        "strategy_params": {
            "rule": "ema_cross",
            "fast_period": 20,
            "slow_period": 50,
            "tp_sl_enabled": True,
            "tp_ratio": 3.0,
            "sl_ratio": 2.0,
            "min_confidence": 0.7,
        },
    },
    {
        "name": "SubBot-B",
        "enabled": True,
        "symbol": "BTCUSDT",
        "category": "linear",
        "timeframe": "15",
        "base_lot": "100",
        "sizing": "risk",
        "risk_per_trade": 0.0025,
        "max_capital_pct": 0.98,
        "advisor": "rules",
        "allow_short": False,
        "api_key_env": "BYBIT_SUBBOT_B_API_KEY",
        "api_secret_env": "BYBIT_SUBBOT_B_API_SECRET",
        "dynamic_sizing": {
            "enabled": True,
            "volatility_indicator": "ATR",
            "atr_period": 14,
            "volatility_thresholds": {"low": 0.005, "medium": 0.015},
            "sizing_multipliers": {"low": "1.2", "medium": "1.0", "high": "0.6"},
        },
        "split_entry": {
            "enabled": True,
            "count": 3,
            "method": "time",
            "interval_seconds": 60,
            "price_step_pct": 0.002,
            "timeout_seconds": 600,
        },
        "strategy_params": {
            "rule": "ema_cross",
            "fast_period": 12,
            "slow_period": 26,
            "tp_sl_enabled": True,
            "tp_ratio": 2.0,
            "sl_ratio": 1.0,
            "min_confidence": 0.6,
        },
    },
    {
        "name": "SubBot-C",
        "enabled": True,
        "symbol": "BTCUSDT",
        "category": "linear",
        "timeframe": "5",
        "base_lot": "150",
        "sizing": "risk",
        "risk_per_trade": 0.0025,
        "max_capital_pct": 0.98,
        "advisor": "hybrid",
        "allow_short": True,
        "max_holding_minutes": 240,
        "api_key_env": "BYBIT_SUBBOT_C_API_KEY",
        "api_secret_env": "BYBIT_SUBBOT_C_API_SECRET",
        "dynamic_sizing": {
            "enabled": True,
            "volatility_indicator": "ATR",
            "atr_period": 10,
            "volatility_thresholds": {"low": 0.006, "medium": 0.02},
            "sizing_multipliers": {"low": "1.5", "medium": "1.0", "high": "0.5"},
        },
        "split_entry": {
            "enabled": True,
            "count": 2,
            "method": "price",
            "interval_seconds": 30,
            "price_step_pct": 0.003,
            "timeout_seconds": 300,
        },
        "strategy_params": {
            "rule": "rsi_reversion",
            "rsi_period": 14,
            "rsi_lower": 25,
            "rsi_upper": 75,
            "tp_sl_enabled": True,
            "tp_ratio": 1.5,
            "sl_ratio": 0.75,
            "min_confidence": 0.55,
        },
    },
]


def default_sub_bots() -> list[SubBot]:
    return [SubBot.model_validate(raw) for raw in DEFAULT_SUB_BOTS]
