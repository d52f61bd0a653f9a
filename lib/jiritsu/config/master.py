"""``[master_bot]``: the market phase (indicator, timeframe, thresholds), the capital allocation
per phase, rebalancing and the weekly profit saving."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from jiritsu.config.base import (
    CTX_BOTS,
    Dec,
    DecRate,
    Float,
    Hour,
    Int,
    Interval,
    KeyPath,
    Model,
    Problems,
    Symbol,
    from_context,
    lower,
    raise_if,
    to_decimal,
    unknown_bots,
)

PHASES = ("strong_bull", "weak_bull", "ranging", "weak_bear", "strong_bear")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
SHARE_TOLERANCE = Decimal("1e-9")


class PhaseThresholds(Model):
    weak_pct: Float = Field(default=0.005, gt=0, lt=1)
    strong_pct: Float = Field(default=0.02, gt=0, lt=1)
    adx_trend: Float = Field(default=20, gt=0, lt=100)
    adx_strong: Float = Field(default=40, gt=0, lt=100)

    @model_validator(mode="after")
    def _ordered(self) -> PhaseThresholds:
        problems: list[tuple[KeyPath, str]] = []
        if not self.weak_pct < self.strong_pct:
            problems.append((("strong_pct",), f"must be greater than weak_pct ({self.weak_pct})"))
        if not self.adx_trend < self.adx_strong:
            problems.append((("adx_strong",), f"must be greater than adx_trend ({self.adx_trend})"))
        raise_if(problems)
        return self


def _indicator_in(value: Any) -> Any:
    if isinstance(value, str):
        return {"ema_cross": "EMA_Cross", "adx": "ADX"}.get(value.strip().lower(), value)
    return value


class MarketPhaseSettings(Model):
    indicator: Annotated[Literal["EMA_Cross", "ADX"], BeforeValidator(_indicator_in)] = "EMA_Cross"
    timeframe: Interval = "60"
    short_period: Int = Field(default=20, ge=1, le=1000)
    long_period: Int = Field(default=50, ge=2, le=1000)
    thresholds: PhaseThresholds = Field(default_factory=PhaseThresholds)

    @model_validator(mode="after")
    def _ordered(self) -> MarketPhaseSettings:
        if not self.short_period < self.long_period:
            raise Problems(
                [(("long_period",), f"must be greater than short_period ({self.short_period})")]
            )
        return self


Share = Annotated[Decimal, BeforeValidator(to_decimal), Field(ge=0, le=1)]


def _shares(a: str, b: str, c: str) -> Any:
    """A phase's default table; validated like a written one, since it names bots too."""
    return Field(
        default_factory=lambda: {
            "SubBot-A": Decimal(a),
            "SubBot-B": Decimal(b),
            "SubBot-C": Decimal(c),
        },
        validate_default=True,
    )


class Allocations(Model):
    strong_bull: dict[str, Share] = _shares("0.2", "0.3", "0.5")
    weak_bull: dict[str, Share] = _shares("0.3", "0.4", "0.3")
    ranging: dict[str, Share] = _shares("0.4", "0.4", "0.2")
    weak_bear: dict[str, Share] = _shares("0.5", "0.3", "0.2")
    strong_bear: dict[str, Share] = _shares("0.6", "0.2", "0.2")

    @field_validator(*PHASES)
    @classmethod
    def _known_bots(cls, value: dict[str, Decimal], info: ValidationInfo) -> dict[str, Decimal]:
        raise_if(unknown_bots(value, from_context(info, CTX_BOTS)))
        return value

    @model_validator(mode="after")
    def _sum_to_one(self) -> Allocations:
        problems: list[tuple[KeyPath, str]] = []
        for phase in PHASES:
            total = sum(self.phase(phase).values(), Decimal(0))
            if abs(total - 1) > SHARE_TOLERANCE:
                problems.append(((phase,), f"shares add up to {total}, they must add up to 1"))
        raise_if(problems)
        return self

    def phase(self, name: str) -> dict[str, Decimal]:
        """The {bot: share} table of one market phase."""
        if name not in PHASES:
            raise KeyError(name)
        shares: dict[str, Decimal] = getattr(self, name)
        return shares


class MasterBotSettings(Model):
    index_symbol: Symbol = "BTCUSDT"
    rebalance_interval_hours: Int = Field(default=4, ge=1, le=24 * 31)
    profit_save_day: Annotated[
        Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        BeforeValidator(lower),
    ] = "sunday"
    profit_save_hour: Hour = 0
    profit_save_rate: DecRate = Decimal("0.5")
    rebalance_tolerance_pct: DecRate = Decimal("0.05")
    min_transfer_usdt: Dec = Field(default=Decimal("10"), ge=0)
    main_member_id: Int | None = Field(default=None, gt=0)
    market_phase: MarketPhaseSettings = Field(default_factory=MarketPhaseSettings)
    allocations: Allocations = Field(default_factory=Allocations)

    @property
    def profit_save_weekday(self) -> int:
        """``profit_save_day`` as ``datetime.weekday()`` (Monday = 0)."""
        return WEEKDAYS.index(self.profit_save_day)
