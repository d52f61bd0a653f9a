"""``[optimizer]``: the monthly walk-forward tuning, its schedule and its parameter grid."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from jiritsu.config.base import CTX_BOTS, Int, KeyPath, Model, Rate, from_context, raise_if
from jiritsu.config.cron import CronError, CronSchedule, parse_cron
from jiritsu.config.params import ParamRange, range_problems


def _default_param_ranges() -> dict[str, ParamRange]:
    def rng(start: str, end: str, step: str) -> ParamRange:
        return ParamRange(start=Decimal(start), end=Decimal(end), step=Decimal(step))

    return {
        "SubBot-A.strategy_params.sl_ratio": rng("1.0", "3.0", "0.5"),
        "SubBot-A.strategy_params.tp_ratio": rng("2.0", "4.0", "1.0"),
        "SubBot-B.strategy_params.sl_ratio": rng("0.5", "2.0", "0.25"),
        "SubBot-B.dynamic_sizing.atr_period": rng("10", "30", "10"),
        "SubBot-C.strategy_params.sl_ratio": rng("0.5", "1.5", "0.25"),
        "SubBot-C.strategy_params.tp_ratio": rng("1.0", "2.0", "0.5"),
    }


def _scheduler_address(value: str) -> str:
    if value:
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("tcp", "tls") and bool(parts.hostname) and bool(parts.port)
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("must be empty (local workers) or a Dask address like tcp://host:8786")
    return value


def _cron(value: str) -> str:
    try:
        parse_cron(value)
    except CronError as exc:
        raise ValueError(f"invalid cron schedule: {exc}") from None
    return value


class OptimizerSettings(Model):
    auto_tuning_enabled: bool = True
    schedule: Annotated[str, AfterValidator(_cron)] = "0 1 1 * *"
    backtest_period_months: Int = Field(default=6, ge=1, le=120)
    target_metric: Literal["sharpe_ratio", "profit", "max_drawdown"] = "sharpe_ratio"
    walk_forward_folds: Int = Field(default=3, ge=1, le=50)
    min_improvement: Rate = 0.05
    min_trades: Int = Field(default=10, ge=0)
    workers: Int = Field(default=0, ge=0)
    scheduler: Annotated[str, AfterValidator(_scheduler_address)] = ""
    param_ranges: dict[str, ParamRange] = Field(
        default_factory=_default_param_ranges, validate_default=True
    )

    @field_validator("param_ranges")
    @classmethod
    def _real_parameters(
        cls, value: dict[str, ParamRange], info: ValidationInfo
    ) -> dict[str, ParamRange]:
        known = from_context(info, CTX_BOTS)
        problems: list[tuple[KeyPath, str]] = []
        for key, rng in value.items():
            problems += range_problems(key, rng, known)
        raise_if(problems)
        return value

    @property
    def cron(self) -> CronSchedule:
        """The parsed schedule, for the scheduler's ``next_after``."""
        return parse_cron(self.schedule)
