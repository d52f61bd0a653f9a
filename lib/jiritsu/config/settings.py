"""The root of ``config.toml``: :class:`Settings` holds one model per section and runs the checks
that span sections (bot names referenced elsewhere, each bot's strategy parameters, URLs against
the environment), each problem under its own dotted key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from jiritsu.config.base import (
    CTX_BOTS,
    CTX_ENVIRONMENT,
    ENVIRONMENTS,
    KeyPath,
    Model,
    Problems,
    env_stem,
    format_path,
    from_context,
    is_url,
    raise_if,
    unknown_bots,
    url_problem,
)
from jiritsu.config.bots import DEFAULT_SUB_BOTS, StrategiesSettings, SubBot, default_sub_bots
from jiritsu.config.exchange import ExchangeSettings
from jiritsu.config.general import ApiKeysSettings, DatabaseSettings, GeneralSettings
from jiritsu.config.master import PHASES, MasterBotSettings
from jiritsu.config.news import GeminiSettings, NewsSentimentSettings
from jiritsu.config.ops import (
    BackupSettings,
    DashboardSettings,
    HealthSettings,
    NotificationSettings,
)
from jiritsu.config.optimizer import OptimizerSettings
from jiritsu.config.paper import PaperSettings
from jiritsu.config.params import (
    bot_strategy,
    is_strategy_key,
    param_key_problem,
    set_bot_param,
    split_param_key,
    strategy_range_problems,
    tunable_kind,
)
from jiritsu.config.risk import RiskSettings
from jiritsu.config.schema import validation_problems

OVERLAY_FILENAME = "tuned.toml"


def _fallback_bots(info: ValidationInfo) -> set[str] | None:
    """Bot names for the root's own checks, only when no context did them already."""
    if from_context(info, CTX_BOTS) is not None or info.data.get("sub_bots") is None:
        return None
    return {bot.name for bot in info.data["sub_bots"]}


def _fallback_environment(info: ValidationInfo) -> str | None:
    general = info.data.get("general")
    if from_context(info, CTX_ENVIRONMENT) is not None or general is None:
        return None
    return str(general.environment)


class Settings(Model):
    """The whole validated configuration (root of ``config.toml``)."""

    # Field order matters: later validators look at ``general`` and ``sub_bots``.
    general: GeneralSettings = Field(default_factory=GeneralSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api_keys: ApiKeysSettings = Field(default_factory=ApiKeysSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    strategies: StrategiesSettings = Field(default_factory=StrategiesSettings)
    sub_bots: list[SubBot] = Field(default_factory=default_sub_bots, min_length=1)
    paper: PaperSettings = Field(default_factory=PaperSettings)
    master_bot: MasterBotSettings = Field(default_factory=MasterBotSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    news_sentiment: NewsSentimentSettings = Field(default_factory=NewsSentimentSettings)
    optimizer: OptimizerSettings = Field(default_factory=OptimizerSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    health: HealthSettings = Field(default_factory=HealthSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)

    @model_validator(mode="before")
    @classmethod
    def _stash_context(cls, data: Any, info: ValidationInfo) -> Any:
        """Record bot names and environment from the raw data, for the sections' checks."""
        if isinstance(data, dict) and isinstance(info.context, dict):
            raw = data.get("sub_bots", DEFAULT_SUB_BOTS)
            items = raw if isinstance(raw, list) else []
            names = {
                b["name"] for b in items if isinstance(b, dict) and isinstance(b.get("name"), str)
            }
            info.context[CTX_BOTS] = names
            general = data.get("general", {})
            environment = general.get("environment", "paper") if isinstance(general, dict) else None
            if environment in ENVIRONMENTS:
                info.context[CTX_ENVIRONMENT] = environment
        return data

    # The checks below repeat the sections' own checks for Settings built without a validation
    # context (``Settings(...)`` in code); with a context the sections already did them.

    @field_validator("exchange", "gemini")
    @classmethod
    def _base_url(cls, value: Any, info: ValidationInfo) -> Any:
        environment = _fallback_environment(info)
        problem = (
            url_problem(value.base_url, environment) if environment and value.base_url else None
        )
        if problem:
            raise Problems([(("base_url",), problem)])
        return value

    @field_validator("sub_bots")
    @classmethod
    def _unique_names(cls, value: list[SubBot]) -> list[SubBot]:
        seen: dict[str, str] = {}
        problems: list[tuple[KeyPath, str]] = []
        for i, bot in enumerate(value):
            stem = env_stem(bot.name)
            if stem in seen:
                msg = f"{bot.name!r} clashes with {seen[stem]!r} (names must differ "
                problems.append(((i, "name"), msg + "ignoring case and punctuation)"))
            seen.setdefault(stem, bot.name)
        raise_if(problems)
        return value

    @field_validator("sub_bots")
    @classmethod
    def _strategy_params(cls, value: list[SubBot], info: ValidationInfo) -> list[SubBot]:
        """Each bot's strategy exists and its own parameters satisfy the strategy's ``Params``."""
        from jiritsu.errors import UsageError
        from jiritsu.strategy.registry import params_problems, registry

        strategies = info.data.get("strategies") or StrategiesSettings()
        reg = registry(tuple(strategies.paths))
        problems: list[tuple[KeyPath, str]] = []
        for i, bot in enumerate(value):
            sp = bot.strategy_params
            try:
                strategy = reg.get(sp.rule).strategy
            except UsageError as exc:
                problems.append(((i, "strategy_params", "rule"), str(exc)))
                continue
            for loc, msg in params_problems(reg, strategy, sp.strategy_values):
                problems.append(((i, "strategy_params", *loc), msg))
        raise_if(problems)
        return value

    @field_validator("paper")
    @classmethod
    def _paper_bots(cls, value: PaperSettings, info: ValidationInfo) -> PaperSettings:
        known = _fallback_bots(info)
        raise_if(unknown_bots(value.starting_balances, known, ("starting_balances",)))
        return value

    @field_validator("master_bot")
    @classmethod
    def _allocation_bots(cls, value: MasterBotSettings, info: ValidationInfo) -> Any:
        known = _fallback_bots(info)
        problems: list[tuple[KeyPath, str]] = []
        for phase in PHASES:
            shares = value.allocations.phase(phase)
            problems += unknown_bots(shares, known, ("allocations", phase))
        raise_if(problems)
        return value

    @field_validator("news_sentiment")
    @classmethod
    def _source_urls(cls, value: NewsSentimentSettings, info: ValidationInfo) -> Any:
        environment = _fallback_environment(info)
        problems: list[tuple[KeyPath, str]] = []
        for i, source in enumerate(value.sources):
            problem = url_problem(source, environment) if environment and is_url(source) else None
            if problem:
                problems.append((("sources", i), problem))
        raise_if(problems)
        return value

    @field_validator("optimizer")
    @classmethod
    def _param_bots(cls, value: OptimizerSettings, info: ValidationInfo) -> Any:
        known = _fallback_bots(info)
        problems: list[tuple[KeyPath, str]] = []
        for key, rng in value.param_ranges.items():
            problem = param_key_problem(key, known) if known is not None else None
            if problem:
                problems.append((("param_ranges", key), problem))
            elif info.data.get("sub_bots") is not None:
                problems += strategy_range_problems(key, rng, info.data)
        raise_if(problems)
        return value

    # ---- conveniences for the rest of the system

    @property
    def is_paper(self) -> bool:
        return self.general.environment == "paper"

    @property
    def bot_names(self) -> list[str]:
        return [bot.name for bot in self.sub_bots]

    @property
    def enabled_bots(self) -> list[SubBot]:
        return [bot for bot in self.sub_bots if bot.enabled]

    def bot(self, name: str) -> SubBot:
        """The sub-bot called ``name`` (KeyError if there is none)."""
        for bot in self.sub_bots:
            if bot.name == name:
                return bot
        raise KeyError(name)

    @property
    def overlay_path(self) -> Path:
        """Where the tuner's winning parameters live: ``<data_dir>/tuned.toml``."""
        return self.general.data_dir / OVERLAY_FILENAME

    @property
    def backup_dir(self) -> Path:
        """``backup.dir`` or ``<data_dir>/backups``."""
        return Path(self.backup.dir) if self.backup.dir else self.general.data_dir / "backups"

    @property
    def dashboard_mirror_path(self) -> Path:
        """``dashboard.mirror_path`` or ``<data_dir>/dashboard.db``."""
        path = self.dashboard.mirror_path
        return Path(path) if path else self.general.data_dir / "dashboard.db"

    def get_param(self, key: str) -> Any:
        """Current value of a tunable parameter ``BOT.section.key``."""
        problem = param_key_problem(key, self.bot_names)
        if problem:
            raise KeyError(f"{key}: {problem}")
        bot, path = split_param_key(key)
        node: Any = self.bot(bot)
        if is_strategy_key(path):
            from jiritsu.strategy.registry import resolve

            return getattr(resolve(self, node)[1], path[1])
        for seg in path:
            node = getattr(node, seg)
        return node

    def param_kind(self, key: str) -> str | None:
        """ "int" / "float" / "decimal" of a tunable ``BOT.section.key`` (None if not tunable)."""
        bot, path = split_param_key(key)
        if is_strategy_key(path):
            from jiritsu.strategy.registry import numeric_kind

            strategy = bot_strategy(self.bot(bot), {"strategies": self.strategies})
            return numeric_kind(strategy, path[1]) if strategy is not None else None
        return tunable_kind(path)

    def param_grid(self) -> dict[str, list[Any]]:
        """``optimizer.param_ranges`` expanded: key -> values (ints for integer parameters)."""
        grid: dict[str, list[Any]] = {}
        for key, rng in self.optimizer.param_ranges.items():
            grid[key] = rng.values(integer=self.param_kind(key) == "int")
        return grid

    def with_params(self, params: Mapping[str, Any]) -> Settings:
        """A re-validated copy with ``{BOT.section.key: value}`` applied (ConfigError if bad)."""
        from jiritsu.errors import ConfigError

        data = self.model_dump(mode="python")
        problems: list[tuple[str, str]] = []
        for key, value in params.items():
            try:
                set_bot_param(data, key, value)
            except ValueError as exc:
                problems.append((format_path(("params", key)), str(exc)))
        if problems:
            raise ConfigError(problems)
        try:
            return Settings.model_validate(data, context={"config_dir": self.general.data_dir})
        except ValidationError as exc:
            raise ConfigError(
                [(format_path(p), m) for p, m in validation_problems(exc, Settings)]
            ) from None
