"""The configuration as validated pydantic models: one class per ``config.toml`` section.

Every model forbids unknown keys (a typo must not silently fall back to a default when real money
rides on it) and the defaults here are exactly the values written in the shipped ``config.toml``.
Checks that involve several keys report each problem under its own key path by raising
:class:`Problems`, which the loader unpacks into ``(dotted key, message)`` pairs.

Money-like values (lots, balances, fees, shares of capital) are ``Decimal``; TOML floats are
converted through their text so that ``0.1`` stays ``0.1``.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import tzinfo
from decimal import Decimal
from functools import cache
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from jiritsu.config.cron import CronError, CronSchedule, parse_cron

PathSeg = str | int
KeyPath = tuple[PathSeg, ...]

ENVIRONMENTS = ("paper", "testnet", "demo", "production")
PHASES = ("strong_bull", "weak_bull", "ranging", "weak_bear", "strong_bear")
BYBIT_INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
OVERLAY_FILENAME = "tuned.toml"
MAX_RANGE_VALUES = 10_000  # a grid axis longer than this is a typo in ``step``, not a plan
SHARE_TOLERANCE = Decimal("1e-9")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_BOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_NOT_TUNABLE = frozenset({"member_id"})  # numeric, but an identity rather than a parameter


# --------------------------------------------------------------------------- key paths, errors


def format_path(path: Iterable[PathSeg]) -> str:
    """``("sub_bots", 1, "name")`` -> ``sub_bots[1].name``; keys with dots are TOML-quoted."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
            continue
        text = seg if _BARE_KEY.fullmatch(seg) else json.dumps(seg)
        out = f"{out}.{text}" if out else text
    return out


class Problems(ValueError):
    """Several problems found by one validator, each under its own path relative to the model."""

    def __init__(self, problems: list[tuple[KeyPath, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{format_path(p)}: {m}" for p, m in problems))


def _raise_if(problems: list[tuple[KeyPath, str]]) -> None:
    if problems:
        raise Problems(problems)


# --------------------------------------------------------------------------- reusable types


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def _to_decimal(value: Any) -> Any:
    _no_bool(value)
    if isinstance(value, float):
        return Decimal(repr(value))  # via the text: 0.1 stays 0.1
    return value


def _env_name(value: str) -> str:
    if not ENV_NAME_RE.fullmatch(value):
        raise ValueError(
            "holds the NAME of an environment variable, not a value: use upper-case letters, "
            "digits and '_' (e.g. BYBIT_MASTER_API_KEY) and put the secret itself in the "
            "environment or .env"
        )
    if value.startswith("JIRITSU_") and "__" in value:
        raise ValueError(
            "names like JIRITSU_<SECTION>__<KEY> are configuration overrides; choose another name"
        )
    return value


def _optional_env_name(value: str) -> str:
    return value if value == "" else _env_name(value)


def _interval_in(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip().upper() if isinstance(value, str) else value


def _interval(value: str) -> str:
    if value not in BYBIT_INTERVALS:
        raise ValueError(f"must be a Bybit interval: one of {', '.join(BYBIT_INTERVALS)}")
    return value


def _symbol(value: str) -> str:
    text = value.strip().upper()
    base, slash, quote = text.partition("/")
    if slash:
        if not (base.isalnum() and quote.isalnum()):
            raise ValueError("must look like BTCUSDT or BTC/USDT")
        text = base + quote
    if not (re.fullmatch(r"[A-Z0-9]{4,30}", text)):
        raise ValueError("must look like BTCUSDT or BTC/USDT")
    return text


def _bot_name(value: str) -> str:
    if not _BOT_NAME.fullmatch(value):
        raise ValueError(
            "must start with a letter or digit and contain only letters, digits, '-' and '_' "
            "(at most 40 characters)"
        )
    return value


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]
Dec = Annotated[Decimal, BeforeValidator(_to_decimal)]
Rate = Annotated[float, BeforeValidator(_no_bool), Field(ge=0, le=1)]
DecRate = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0, le=1)]
EnvName = Annotated[str, AfterValidator(_env_name)]
OptionalEnvName = Annotated[str, AfterValidator(_optional_env_name)]
Interval = Annotated[str, BeforeValidator(_interval_in), AfterValidator(_interval)]
Symbol = Annotated[str, AfterValidator(_symbol)]
BotName = Annotated[str, AfterValidator(_bot_name)]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
]
Hour = Annotated[int, BeforeValidator(_no_bool), Field(ge=0, le=23)]


def env_stem(bot_name: str) -> str:
    """``SubBot-A`` -> ``SUBBOT_A``: the bot's part of env-var names (defaults and overrides)."""
    return re.sub(r"[^A-Z0-9]+", "_", bot_name.upper()).strip("_")


def resolve_path(value: str | Path, base: Path) -> Path:
    """Absolute, normalised path; relative paths count from ``base`` (the config file's dir)."""
    path = Path(os.path.expanduser(str(value)))
    if not path.is_absolute():
        path = base / path
    return Path(os.path.normpath(path))


def _config_dir(info: ValidationInfo) -> Path:
    ctx = info.context
    if isinstance(ctx, dict) and ctx.get("config_dir"):
        return Path(ctx["config_dir"])
    return Path.cwd()


_CTX_BOTS = "_raw_bot_names"
_CTX_ENVIRONMENT = "_raw_environment"


def _from_context(info: ValidationInfo, key: str) -> Any:
    """Facts the root validator stashed from the raw data (see ``Settings._stash_context``).

    They let a section check references to bots and the environment even when another section
    is invalid, so that every problem is reported in one go.
    """
    ctx = info.context
    return ctx.get(key) if isinstance(ctx, dict) else None


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, environment: str) -> str | None:
    """Why ``url`` may not be used in ``environment`` (None if fine). Never echoes the URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "must be an http(s) URL such as https://host/path"
    if parts.scheme == "http" and environment != "paper" and not is_loopback_host(host):
        return (
            "must use https outside paper mode (plain http is allowed only for loopback "
            "addresses such as 127.0.0.1)"
        )
    return None


def is_url(text: str) -> bool:
    return "://" in text


def _checked_url(value: str, info: ValidationInfo) -> str:
    environment = _from_context(info, _CTX_ENVIRONMENT)
    problem = url_problem(value, environment) if value and environment else None
    if problem:
        raise ValueError(problem)
    return value


def _checked_ca_file(value: str) -> str:
    """A CA bundle (PEM file, or a hashed directory) that exists; empty = the system store."""
    if value and not Path(value).expanduser().exists():
        raise ValueError(f"no such CA file or directory: {value}")
    return str(Path(value).expanduser()) if value else value


def _unknown_bots(
    names: Iterable[str], known: set[str] | None, prefix: KeyPath = ()
) -> list[tuple[KeyPath, str]]:
    if known is None:
        return []
    return [((*prefix, n), f"no sub-bot named {n!r}") for n in names if n not in known]


# --------------------------------------------------------------------------- sections


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class GeneralSettings(_Model):
    environment: Literal["paper", "testnet", "demo", "production"] = "paper"
    debug_mode: bool = False
    timezone: str = "UTC"
    data_dir: Path = Field(default=Path("var"), validate_default=True)
    log_level: LogLevel = "INFO"
    log_retention_days: Int = Field(default=30, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value != "UTC":
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(
                    f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')"
                ) from None
        return value

    @field_validator("data_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path, info: ValidationInfo) -> Path:
        return resolve_path(value, _config_dir(info))

    @property
    def tzinfo(self) -> tzinfo:
        """Display time zone (everything is stored in UTC)."""
        from datetime import timezone
        from zoneinfo import ZoneInfo

        return timezone.utc if self.timezone == "UTC" else ZoneInfo(self.timezone)


def check_db_url(db_type: str, url: str) -> tuple[str, str | None]:
    """(normalised URL, problem or None); ``postgresql://`` becomes ``postgresql+psycopg://``.

    The problem text never contains the URL, which may embed a password.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or not scheme:
        return url, "must be a URL such as sqlite:///path/to/file.db or postgresql://host/db"
    scheme = scheme.lower()
    if scheme in ("postgres", "postgresql"):
        scheme = "postgresql+psycopg"
    family, _, driver = scheme.partition("+")
    if family not in ("sqlite", "postgresql"):
        return url, f"unsupported database scheme {family!r} (use sqlite or postgresql)"
    if family != db_type:
        return url, f"db_type is {db_type!r} but the URL is a {family} URL"
    if family == "postgresql" and driver != "psycopg":
        return url, "use the psycopg driver (postgresql:// or postgresql+psycopg://)"
    if family == "sqlite" and driver not in ("", "pysqlite"):
        return url, "use the built-in sqlite driver (sqlite:///path)"
    return f"{scheme}://{rest}", None


class DatabaseSettings(_Model):
    db_type: Literal["sqlite", "postgresql"] = "sqlite"
    db_url: str = Field(default="", repr=False)
    db_url_env: OptionalEnvName = ""
    connect_timeout_seconds: Float = Field(default=5, gt=0)
    reconnect_attempts: Int = Field(default=5, ge=0)
    reconnect_base_delay_seconds: Float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _url_matches_type(self) -> DatabaseSettings:
        problems: list[tuple[KeyPath, str]] = []
        if self.db_url and self.db_url_env:
            problems.append((("db_url_env",), "set either db_url or db_url_env, not both"))
        elif self.db_url:
            _, problem = check_db_url(self.db_type, self.db_url)
            if problem:
                problems.append((("db_url",), problem))
        elif self.db_type == "postgresql" and not self.db_url_env:
            problems.append((("db_url",), "db_type 'postgresql' needs db_url or db_url_env"))
        _raise_if(problems)
        return self


class ApiKeysSettings(_Model):
    bybit_master_key_env: EnvName = "BYBIT_MASTER_API_KEY"
    bybit_master_secret_env: EnvName = "BYBIT_MASTER_API_SECRET"  # noqa: S105 - a name
    gemini_keys_env: EnvName = "GEMINI_API_KEYS"
    discord_webhook_env: EnvName = "DISCORD_WEBHOOK_URL"


class ExchangeSettings(_Model):
    maker_fee: DecRate = Decimal("0.0002")
    taker_fee: DecRate = Decimal("0.00055")
    slippage_bps: Dec = Field(default=Decimal("2"), ge=0, le=10_000)
    slippage_volatility_factor: Dec = Field(default=Decimal("0"), ge=0)
    leverage: Int = Field(default=1, ge=1, le=100)
    request_timeout_seconds: Float = Field(default=10, gt=0)
    max_retries: Int = Field(default=3, ge=0)
    base_url: str = ""
    # A CA bundle for the exchange's TLS certificate (a TLS-inspecting proxy, or the tests'
    # loopback fake). pybit ignores REQUESTS_CA_BUNDLE, so it has to be passed explicitly.
    ca_file: str = ""
    recv_window_ms: Int = Field(default=5000, ge=1, le=60_000)

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str, info: ValidationInfo) -> str:
        return _checked_url(value, info)

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str) -> str:
        return _checked_ca_file(value)


class GeminiSettings(_Model):
    model: str = Field(default="gemini-2.5-flash", min_length=1)
    request_timeout_seconds: Float = Field(default=20, gt=0)
    retry_attempts: Int = Field(default=3, ge=0)
    daily_request_budget: Int = Field(default=1000, ge=0)
    daily_token_budget: Int = Field(default=2_000_000, ge=0)
    base_url: str = ""
    # A CA bundle for Gemini's TLS certificate (a TLS-inspecting proxy, the tests' fake);
    # google-genai's HTTP client is given it explicitly, as pybit is given exchange.ca_file.
    ca_file: str = ""
    temperature: Float = Field(default=0.2, ge=0, le=2)

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str, info: ValidationInfo) -> str:
        return _checked_url(value, info)

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str) -> str:
        return _checked_ca_file(value)


class VolatilityThresholds(_Model):
    low: Float = Field(default=0.005, gt=0, lt=1)
    medium: Float = Field(default=0.015, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered(self) -> VolatilityThresholds:
        if not self.low < self.medium:
            raise Problems([(("medium",), f"must be greater than low ({self.low})")])
        return self


class SizingMultipliers(_Model):
    low: Dec = Field(default=Decimal("1.2"), gt=0, le=10)
    medium: Dec = Field(default=Decimal("1.0"), gt=0, le=10)
    high: Dec = Field(default=Decimal("0.6"), gt=0, le=10)


class DynamicSizing(_Model):
    enabled: bool = True
    volatility_indicator: Literal["ATR"] = "ATR"
    atr_period: Int = Field(default=14, ge=2, le=500)
    volatility_thresholds: VolatilityThresholds = Field(default_factory=VolatilityThresholds)
    sizing_multipliers: SizingMultipliers = Field(default_factory=SizingMultipliers)


class SplitEntry(_Model):
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


class StrategyParams(_Model):
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


class StrategiesSettings(_Model):
    """Where user strategies live: ``*.py`` files in these directories (relative to the config
    file; a missing directory is no error)."""

    paths: list[str] = Field(default_factory=lambda: ["strategies"], validate_default=True)

    @field_validator("paths")
    @classmethod
    def _absolute(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return [str(resolve_path(v, _config_dir(info))) for v in value]


class SubBot(_Model):
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


def _default_sub_bots() -> list[SubBot]:
    return [SubBot.model_validate(raw) for raw in DEFAULT_SUB_BOTS]


class PaperSettings(_Model):
    quote_coin: Annotated[str, BeforeValidator(_upper), Field(pattern=r"^[A-Z0-9]{2,10}$")] = "USDT"
    starting_balances: dict[str, Annotated[Dec, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "SubBot-A": Decimal("3000"),
            "SubBot-B": Decimal("4000"),
            "SubBot-C": Decimal("3000"),
        },
        validate_default=True,  # the defaults name bots too: check them against the real ones
    )
    main_balance: Dec = Field(default=Decimal("0"), ge=0)
    # Where paper trading gets its prices: "replay" the stored candles (offline; demos, tests)
    # or "bybit": Bybit's public klines, polled as time passes (no key needed).
    price_source: Literal["replay", "bybit"] = "replay"

    @field_validator("starting_balances")
    @classmethod
    def _known_bots(cls, value: dict[str, Decimal], info: ValidationInfo) -> dict[str, Decimal]:
        _raise_if(_unknown_bots(value, _from_context(info, _CTX_BOTS)))
        return value


class PhaseThresholds(_Model):
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
        _raise_if(problems)
        return self


def _indicator_in(value: Any) -> Any:
    if isinstance(value, str):
        return {"ema_cross": "EMA_Cross", "adx": "ADX"}.get(value.strip().lower(), value)
    return value


class MarketPhaseSettings(_Model):
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


Share = Annotated[Decimal, BeforeValidator(_to_decimal), Field(ge=0, le=1)]


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


class Allocations(_Model):
    strong_bull: dict[str, Share] = _shares("0.2", "0.3", "0.5")
    weak_bull: dict[str, Share] = _shares("0.3", "0.4", "0.3")
    ranging: dict[str, Share] = _shares("0.4", "0.4", "0.2")
    weak_bear: dict[str, Share] = _shares("0.5", "0.3", "0.2")
    strong_bear: dict[str, Share] = _shares("0.6", "0.2", "0.2")

    @field_validator(*PHASES)
    @classmethod
    def _known_bots(cls, value: dict[str, Decimal], info: ValidationInfo) -> dict[str, Decimal]:
        _raise_if(_unknown_bots(value, _from_context(info, _CTX_BOTS)))
        return value

    @model_validator(mode="after")
    def _sum_to_one(self) -> Allocations:
        problems: list[tuple[KeyPath, str]] = []
        for phase in PHASES:
            total = sum(self.phase(phase).values(), Decimal(0))
            if abs(total - 1) > SHARE_TOLERANCE:
                problems.append(((phase,), f"shares add up to {total}, they must add up to 1"))
        _raise_if(problems)
        return self

    def phase(self, name: str) -> dict[str, Decimal]:
        """The {bot: share} table of one market phase."""
        if name not in PHASES:
            raise KeyError(name)
        shares: dict[str, Decimal] = getattr(self, name)
        return shares


class MasterBotSettings(_Model):
    index_symbol: Symbol = "BTCUSDT"
    rebalance_interval_hours: Int = Field(default=4, ge=1, le=24 * 31)
    profit_save_day: Annotated[
        Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
        BeforeValidator(_lower),
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


class RiskSettings(_Model):
    max_drawdown_pct: Rate = 0.15
    daily_loss_pct: Rate = 0.05
    crash_move_pct: Rate = 0.08
    crash_window_minutes: Int = Field(default=60, ge=1)
    max_consecutive_losses: Int = Field(default=5, ge=1)
    exchange_failure_limit: Int = Field(default=5, ge=1)
    cooldown_minutes: Int = Field(default=0, ge=0)
    loss_streak_cooldown_minutes: Int = Field(default=1440, ge=0)


def _shipped_file(relative: str) -> str:
    """A file shipped next to config.toml, as its relative path there resolves to."""
    from jiritsu.resources import default_config_path

    return str(resolve_path(relative, default_config_path().parent))


class NewsSentimentSettings(_Model):
    enabled: bool = True
    fetch_interval_minutes: Int = Field(default=15, ge=1)
    keywords: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: ["bitcoin", "btc", "crypto", "ethereum"]
    )
    sources: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: [
            "https://www.coindesk.com/arc/outboundfeeds/rss/",
            "https://cointelegraph.com/rss",
            _shipped_file("examples/news/sample_feed.xml"),  # offline demo feed, dated 2025
        ]
    )
    moving_average_period_hours: Int = Field(default=24, ge=1)
    scorer: Literal["gemini", "lexicon"] = "lexicon"
    request_timeout_seconds: Float = Field(default=10, gt=0)
    max_bytes: Int = Field(default=2_000_000, ge=1024)
    max_text_chars: Int = Field(default=2000, ge=1)
    use_page_text: bool = False

    @field_validator("sources")
    @classmethod
    def _local_paths_absolute(cls, value: list[str], info: ValidationInfo) -> list[str]:
        environment = _from_context(info, _CTX_ENVIRONMENT)
        problems: list[tuple[KeyPath, str]] = []
        for i, source in enumerate(value):
            problem = url_problem(source, environment) if environment and is_url(source) else None
            if problem:
                problems.append(((i,), problem))
        _raise_if(problems)
        base = _config_dir(info)
        return [s if is_url(s) else str(resolve_path(s, base)) for s in value]

    @model_validator(mode="after")
    def _keywords_when_enabled(self) -> NewsSentimentSettings:
        if self.enabled and not self.keywords:
            raise Problems([(("keywords",), "needs at least one keyword when enabled")])
        return self


class ParamRange(_Model):
    start: Dec
    end: Dec
    step: Dec

    @model_validator(mode="after")
    def _sane(self) -> ParamRange:
        problems: list[tuple[KeyPath, str]] = []
        if not self.start < self.end:
            problems.append((("end",), f"must be greater than start ({self.start})"))
        if not self.step > 0:
            problems.append((("step",), "must be greater than 0"))
        elif self.start < self.end and self.count() > MAX_RANGE_VALUES:
            problems.append(
                (("step",), f"gives {self.count()} values (more than {MAX_RANGE_VALUES})")
            )
        _raise_if(problems)
        return self

    def count(self) -> int:
        """How many values the range expands to."""
        return int((self.end - self.start) // self.step) + 1

    def values(self, *, integer: bool = False) -> list[Decimal] | list[int]:
        """Every value from start to end inclusive, by step, in exact decimal arithmetic."""
        return expand_range(self, integer=integer)


def expand_range(rng: ParamRange, *, integer: bool = False) -> list[Decimal] | list[int]:
    """``{start=0.5, end=2.0, step=0.1}`` -> 16 values, no float drift; ints for int params."""
    values = [rng.start + i * rng.step for i in range(rng.count())]
    if integer:
        return [int(v) for v in values]
    return values


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


class OptimizerSettings(_Model):
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
        known = _from_context(info, _CTX_BOTS)
        problems: list[tuple[KeyPath, str]] = []
        for key, rng in value.items():
            problems += _range_problems(key, rng, known)
        _raise_if(problems)
        return value

    @property
    def cron(self) -> CronSchedule:
        """The parsed schedule, for the scheduler's ``next_after``."""
        return parse_cron(self.schedule)


class NotificationSettings(_Model):
    enabled: bool = True
    min_level: LogLevel = "WARNING"
    timeout_seconds: Float = Field(default=10, gt=0)
    username: str = Field(default="Jiritsu", min_length=1, max_length=80)
    daily_report_hour: Hour = 0
    mention_on_critical: str = ""


class HealthSettings(_Model):
    check_interval_minutes: Int = Field(default=5, ge=1)
    cpu_pct: Float = Field(default=90, gt=0, le=100)
    memory_pct: Float = Field(default=90, gt=0, le=100)
    disk_pct: Float = Field(default=90, gt=0, le=100)
    heartbeat_max_age_seconds: Int = Field(default=180, ge=1)
    candle_max_age_minutes: Int = Field(default=10, ge=1)
    tick_max_age_minutes: Int = Field(default=30, ge=1)
    max_errors_per_hour: Int = Field(default=10, ge=1)
    db_latency_ms: Int = Field(default=500, ge=1)


class DashboardUser(_Model):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    password_hash_env: EnvName
    # May press halt/resume/flatten; unset means yes for the first user, no for the others.
    can_control: bool | None = None


class DashboardSettings(_Model):
    host: str = Field(default="127.0.0.1", min_length=1)
    port: Int = Field(default=8001, ge=1, le=65535)
    allowed_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    users: list[DashboardUser] = Field(
        default_factory=lambda: [
            DashboardUser(
                username="operator",
                password_hash_env="JIRITSU_DASHBOARD_PASSWORD_HASH",  # noqa: S106 - a name
                can_control=True,
            )
        ]
    )
    mirror_path: str = ""
    controls_enabled: bool = True  # false removes the dashboard's halt/resume/flatten route

    @field_validator("allowed_ips")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        problems: list[tuple[KeyPath, str]] = []
        for i, item in enumerate(value):
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                problems.append(((i,), "is not an IP address or network such as 10.0.0.0/8"))
        _raise_if(problems)
        return [item.strip() for item in value]

    @field_validator("users")
    @classmethod
    def _unique_users(cls, value: list[DashboardUser]) -> list[DashboardUser]:
        seen: set[str] = set()
        problems: list[tuple[KeyPath, str]] = []
        for i, user in enumerate(value):
            if user.username in seen:
                problems.append(((i, "username"), f"duplicate user {user.username!r}"))
            seen.add(user.username)
        _raise_if(problems)
        return value

    @field_validator("mirror_path")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return str(resolve_path(value, _config_dir(info))) if value else value

    def controllers(self) -> list[str]:
        """The users who may press the control buttons (none when controls are disabled)."""
        if not self.controls_enabled:
            return []
        return [
            user.username
            for i, user in enumerate(self.users)
            if (user.can_control if user.can_control is not None else i == 0)
        ]

    def network_list(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """``allowed_ips`` as networks (a single address is a /32 or /128)."""
        return [ipaddress.ip_network(item, strict=False) for item in self.allowed_ips]


class BackupSettings(_Model):
    retention_days: Int = Field(default=14, ge=1)
    dir: str = ""

    @field_validator("dir")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return str(resolve_path(value, _config_dir(info))) if value else value


# --------------------------------------------------------------------------- tunable parameters


def split_param_key(key: str) -> tuple[str, tuple[str, ...]]:
    """``"SubBot-B.strategy_params.sl_ratio"`` -> ``("SubBot-B", ("strategy_params", ...))``."""
    bot, _, rest = key.partition(".")
    path = tuple(rest.split(".")) if rest else ()
    if not bot or not path or any(not p for p in path):
        raise ValueError(
            "must look like BOTNAME.section.key, e.g. SubBot-B.strategy_params.sl_ratio"
        )
    return bot, path


@cache
def _tunable_field(path: tuple[str, ...]) -> FieldInfo | None:
    model: Any = SubBot
    info: FieldInfo | None = None
    for seg in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        info = model.model_fields.get(seg)
        if info is None:
            return None
        model = unwrap_annotation(info.annotation)
    if info is None or path[-1] in _NOT_TUNABLE or model not in (int, float, Decimal):
        return None
    return info


def tunable_kind(path: Sequence[str]) -> Literal["int", "float", "decimal"] | None:
    """The numeric kind of a sub-bot field (path below the bot), None if not tunable."""
    info = _tunable_field(tuple(path))
    if info is None:
        return None
    kind = unwrap_annotation(info.annotation)
    return "int" if kind is int else "float" if kind is float else "decimal"


@cache
def _field_adapter(path: tuple[str, ...]) -> TypeAdapter[Any]:
    info = _tunable_field(path)
    assert info is not None
    base = unwrap_annotation(info.annotation)
    args: tuple[Any, ...] = (base, *info.metadata)
    annotated: Any = Annotated[args] if info.metadata else base  # Annotated[base, *metadata]
    return TypeAdapter(annotated)


def param_key_problem(key: str, bot_names: Iterable[str] | None) -> str | None:
    """Why ``key`` does not name a tunable numeric sub-bot parameter (None if it does)."""
    try:
        bot, path = split_param_key(key)
    except ValueError as exc:
        return str(exc)
    if bot_names is not None and bot not in set(bot_names):
        return f"no sub-bot named {bot!r}"
    if is_strategy_key(path):
        return None  # the bot's strategy decides (Settings._param_bots)
    if _tunable_field(path) is None:
        dotted = ".".join(path)
        if _field_exists(path):
            return f"{dotted!r} is not a numeric parameter and cannot be tuned"
        return f"sub-bots have no parameter {dotted!r}"
    return None


def is_strategy_key(path: Sequence[str]) -> bool:
    """``strategy_params.X`` where X is the strategy's own parameter, not a kernel key."""
    return (
        len(path) == 2
        and path[0] == "strategy_params"
        and path[1] not in StrategyParams.model_fields
    )


def _field_exists(path: tuple[str, ...]) -> bool:
    model: Any = SubBot
    for seg in path:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return False
        info = model.model_fields.get(seg)
        if info is None:
            return False
        model = unwrap_annotation(info.annotation)
    return True


def param_value_problem(path: Sequence[str], value: Any) -> str | None:
    """Why ``value`` is not allowed for the sub-bot field at ``path`` (None if it is)."""
    try:
        _field_adapter(tuple(path)).validate_python(value)
    except ValidationError as exc:
        return "; ".join(clean_message(e) for e in exc.errors(include_url=False))
    return None


def _range_problems(
    key: str, rng: ParamRange, bot_names: Iterable[str] | None
) -> list[tuple[KeyPath, str]]:
    problem = param_key_problem(key, bot_names)
    if problem:
        return [((key,), problem)]
    _, path = split_param_key(key)
    if is_strategy_key(path):
        return []  # checked against the bot's strategy by Settings._param_bots
    problems: list[tuple[KeyPath, str]] = []
    if tunable_kind(path) == "int":
        for name in ("start", "end", "step"):
            if getattr(rng, name) != getattr(rng, name).to_integral_value():
                problems.append(((key, name), "must be a whole number for an integer parameter"))
    if not problems:
        for name in ("start", "end"):
            value = getattr(rng, name)
            value = int(value) if tunable_kind(path) == "int" else value
            msg = param_value_problem(path, value)
            if msg:
                problems.append(((key, name), f"{value} is not allowed for this parameter: {msg}"))
    return problems


def set_bot_param(data: dict[str, Any], key: str, value: Any) -> KeyPath:
    """Set ``BOT.section.key`` in raw (unvalidated) settings data; returns the full key path.

    Raises ``ValueError`` when the bot or the field does not exist.
    """
    bots = data.get("sub_bots")
    if bots is None:
        bots = data["sub_bots"] = copy.deepcopy(DEFAULT_SUB_BOTS)
    problem = param_key_problem(key, None)
    if problem:
        raise ValueError(problem)
    bot, path = split_param_key(key)
    index = next(
        (i for i, b in enumerate(bots) if isinstance(b, dict) and b.get("name") == bot), None
    )
    if index is None:
        raise ValueError(f"no sub-bot named {bot!r}")
    node = bots[index]
    for seg in path[:-1]:
        child = node.get(seg)
        if not isinstance(child, dict):
            child = node[seg] = {}
        node = child
    node[path[-1]] = value
    return ("sub_bots", index, *path)


def _strategy_range_problems(
    key: str, rng: ParamRange, data: Mapping[str, Any]
) -> list[tuple[KeyPath, str]]:
    """A range over a strategy's own parameter: numeric in the bot's strategy, ends allowed."""
    from jiritsu.strategy.registry import numeric_kind, params_problems, registry

    bot_name, path = split_param_key(key)
    if not is_strategy_key(path):
        return []
    bot = next((b for b in data["sub_bots"] if b.name == bot_name), None)
    strategy = _bot_strategy(bot, data) if bot is not None else None
    if bot is None or strategy is None:
        return []
    kind = numeric_kind(strategy, path[1])
    where = ("param_ranges", key)
    if kind is None:
        has = "is not a numeric parameter" if path[1] in strategy.Params.model_fields else (
            "has no parameter")  # fmt: skip
        return [(where, f"strategy {strategy.name!r} {has} {path[1]!r}")]
    reg = registry(tuple((data.get("strategies") or StrategiesSettings()).paths))
    problems: list[tuple[KeyPath, str]] = []
    for name in ("start", "end", "step"):
        v = getattr(rng, name)
        if kind == "int" and v != v.to_integral_value():
            problems.append(((*where, name), "must be a whole number for an integer parameter"))
    if problems:
        return problems
    for name in ("start", "end"):
        v = getattr(rng, name)
        values = {**bot.strategy_params.strategy_values, path[1]: int(v) if kind == "int" else v}
        for _loc, msg in params_problems(reg, strategy, values):
            problems.append(((*where, name), f"{v} is not allowed for this parameter: {msg}"))
    return problems


def _bot_strategy(bot: SubBot, data: Mapping[str, Any]) -> Any:
    """The bot's strategy object (None when it cannot be found: reported elsewhere)."""
    from jiritsu.errors import UsageError
    from jiritsu.strategy.registry import registry

    strategies = data.get("strategies") or StrategiesSettings()
    try:
        return registry(tuple(strategies.paths)).get(bot.strategy_params.rule).strategy
    except UsageError:
        return None


# --------------------------------------------------------------------------- root


def _fallback_bots(info: ValidationInfo) -> set[str] | None:
    """Bot names for the root's own checks, only when no context did them already."""
    if _from_context(info, _CTX_BOTS) is not None or info.data.get("sub_bots") is None:
        return None
    return {bot.name for bot in info.data["sub_bots"]}


def _fallback_environment(info: ValidationInfo) -> str | None:
    general = info.data.get("general")
    if _from_context(info, _CTX_ENVIRONMENT) is not None or general is None:
        return None
    return str(general.environment)


class Settings(_Model):
    """The whole validated configuration (root of ``config.toml``)."""

    # Field order matters: later validators look at ``general`` and ``sub_bots``.
    general: GeneralSettings = Field(default_factory=GeneralSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api_keys: ApiKeysSettings = Field(default_factory=ApiKeysSettings)
    exchange: ExchangeSettings = Field(default_factory=ExchangeSettings)
    gemini: GeminiSettings = Field(default_factory=GeminiSettings)
    strategies: StrategiesSettings = Field(default_factory=StrategiesSettings)
    sub_bots: list[SubBot] = Field(default_factory=_default_sub_bots, min_length=1)
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
            info.context[_CTX_BOTS] = names
            general = data.get("general", {})
            environment = general.get("environment", "paper") if isinstance(general, dict) else None
            if environment in ENVIRONMENTS:
                info.context[_CTX_ENVIRONMENT] = environment
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
        _raise_if(problems)
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
        _raise_if(problems)
        return value

    @field_validator("paper")
    @classmethod
    def _paper_bots(cls, value: PaperSettings, info: ValidationInfo) -> PaperSettings:
        known = _fallback_bots(info)
        _raise_if(_unknown_bots(value.starting_balances, known, ("starting_balances",)))
        return value

    @field_validator("master_bot")
    @classmethod
    def _allocation_bots(cls, value: MasterBotSettings, info: ValidationInfo) -> Any:
        known = _fallback_bots(info)
        problems: list[tuple[KeyPath, str]] = []
        for phase in PHASES:
            shares = value.allocations.phase(phase)
            problems += _unknown_bots(shares, known, ("allocations", phase))
        _raise_if(problems)
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
        _raise_if(problems)
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
                problems += _strategy_range_problems(key, rng, info.data)
        _raise_if(problems)
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

            strategy = _bot_strategy(self.bot(bot), {"strategies": self.strategies})
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
            raise ConfigError([(format_path(p), m) for p, m in validation_problems(exc)]) from None


# --------------------------------------------------------------------------- schema walking


def unwrap_annotation(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``Optional[...]`` down to the underlying type."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return unwrap_annotation(get_args(annotation)[0])
    if origin in (Union, UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return unwrap_annotation(args[0])
    return annotation


def is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def child_annotation(annotation: Any, seg: PathSeg) -> Any:
    """Annotation of ``seg`` inside a value of type ``annotation`` (None if there is none)."""
    kind = unwrap_annotation(annotation)
    if is_model(kind):
        info = kind.model_fields.get(seg) if isinstance(seg, str) else None
        return info.annotation if info is not None else None
    origin = get_origin(kind)
    if origin is list and isinstance(seg, int):
        return get_args(kind)[0]
    if origin is dict and isinstance(seg, str):
        return get_args(kind)[1]
    return None


def annotation_at(path: Sequence[PathSeg]) -> Any:
    """The annotation of the value at ``path`` below :class:`Settings` (None if unknown)."""
    annotation: Any = Settings
    for seg in path:
        annotation = child_annotation(annotation, seg)
        if annotation is None:
            return None
    return annotation


# --------------------------------------------------------------------------- error messages

_TABLE_TYPES = {"model_type", "model_attributes_type", "dict_type"}
_ECHO_TYPES = {
    "int_parsing", "int_type", "int_from_float", "float_parsing", "float_type", "bool_parsing",
    "bool_type", "string_type", "decimal_parsing", "decimal_type", "literal_error",
    "greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number",
    "string_pattern_mismatch", "string_too_short", "string_too_long", "list_type",
}  # fmt: skip


def clean_message(error: Mapping[str, Any]) -> str:
    """A pydantic error message without the 'Value error, ' noise."""
    msg = str(error.get("msg", ""))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix) :]
    kind = error.get("type")
    if kind == "missing":
        return "required key is missing"
    if kind in _TABLE_TYPES:
        return "must be a table"
    if kind == "list_type":
        return "must be a list"
    return msg


def _echo(path: KeyPath, value: Any) -> str:
    last = next((s for s in reversed(path) if isinstance(s, str)), "")
    if last.endswith("_env") or last == "db_url":
        return ""  # may hold a pasted secret or a password
    if isinstance(value, bool):
        return f" (got {str(value).lower()})"
    if isinstance(value, (int, float, Decimal)):
        return f" (got {value})"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return f" (got {json.dumps(text)})"
    return ""


def _unknown_key_message(path: KeyPath) -> str:
    import difflib

    parent = annotation_at(path[:-1])
    kind = unwrap_annotation(parent)
    msg = "unknown key"
    if is_model(kind) and isinstance(path[-1], str):
        close = difflib.get_close_matches(path[-1], list(kind.model_fields), n=1, cutoff=0.6)
        if close:
            msg += f"; did you mean {close[0]!r}?"
    return msg


def validation_problems(exc: ValidationError) -> list[tuple[KeyPath, str]]:
    """One (key path, human message) per pydantic error, :class:`Problems` unpacked."""
    out: list[tuple[KeyPath, str]] = []
    for error in exc.errors(include_url=False):
        loc: KeyPath = tuple(error["loc"])
        inner = (error.get("ctx") or {}).get("error")
        if isinstance(inner, Problems):
            out.extend(((*loc, *rel), msg) for rel, msg in inner.problems)
            continue
        if error["type"] == "extra_forbidden":
            out.append((loc, _unknown_key_message(loc)))
            continue
        msg = clean_message(error)
        if error["type"] in _ECHO_TYPES:
            msg += _echo(loc, error.get("input"))
        out.append((loc, msg))
    return out
