"""What every section of the configuration is built from: key paths and the :class:`Problems`
they report, the reusable field types (no true/false for numbers, Decimals through their text,
environment-variable NAMES, Bybit intervals, symbols), and the checks that need facts from other
sections (bot names, the environment), which the root stashes in the validation context."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo

PathSeg = str | int
KeyPath = tuple[PathSeg, ...]

ENVIRONMENTS = ("paper", "testnet", "demo", "production")
BYBIT_INTERVALS = ("1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_BOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")

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


def raise_if(problems: list[tuple[KeyPath, str]]) -> None:
    if problems:
        raise Problems(problems)


# --------------------------------------------------------------------------- reusable types


def no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true/false")
    return value


def to_decimal(value: Any) -> Any:
    no_bool(value)
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


def upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


Int = Annotated[int, BeforeValidator(no_bool)]
Float = Annotated[float, BeforeValidator(no_bool)]
Dec = Annotated[Decimal, BeforeValidator(to_decimal)]
Rate = Annotated[float, BeforeValidator(no_bool), Field(ge=0, le=1)]
DecRate = Annotated[Decimal, BeforeValidator(to_decimal), Field(ge=0, le=1)]
EnvName = Annotated[str, AfterValidator(_env_name)]
OptionalEnvName = Annotated[str, AfterValidator(_optional_env_name)]
Interval = Annotated[str, BeforeValidator(_interval_in), AfterValidator(_interval)]
Symbol = Annotated[str, AfterValidator(_symbol)]
BotName = Annotated[str, AfterValidator(_bot_name)]
LogLevel = Annotated[
    Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(upper)
]
Hour = Annotated[int, BeforeValidator(no_bool), Field(ge=0, le=23)]


def env_stem(bot_name: str) -> str:
    """``SubBot-A`` -> ``SUBBOT_A``: the bot's part of env-var names (defaults and overrides)."""
    return re.sub(r"[^A-Z0-9]+", "_", bot_name.upper()).strip("_")


def resolve_path(value: str | Path, base: Path) -> Path:
    """Absolute, normalised path; relative paths count from ``base`` (the config file's dir)."""
    path = Path(os.path.expanduser(str(value)))
    if not path.is_absolute():
        path = base / path
    return Path(os.path.normpath(path))


def config_dir(info: ValidationInfo) -> Path:
    ctx = info.context
    if isinstance(ctx, dict) and ctx.get("config_dir"):
        return Path(ctx["config_dir"])
    return Path.cwd()


CTX_BOTS = "_raw_bot_names"
CTX_ENVIRONMENT = "_raw_environment"


def from_context(info: ValidationInfo, key: str) -> Any:
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


def checked_url(value: str, info: ValidationInfo) -> str:
    environment = from_context(info, CTX_ENVIRONMENT)
    problem = url_problem(value, environment) if value and environment else None
    if problem:
        raise ValueError(problem)
    return value


def checked_ca_file(value: str) -> str:
    """A CA bundle (PEM file, or a hashed directory) that exists; empty = the system store."""
    if value and not Path(value).expanduser().exists():
        raise ValueError(f"no such CA file or directory: {value}")
    return str(Path(value).expanduser()) if value else value


def unknown_bots(
    names: Iterable[str], known: set[str] | None, prefix: KeyPath = ()
) -> list[tuple[KeyPath, str]]:
    if known is None:
        return []
    return [((*prefix, n), f"no sub-bot named {n!r}") for n in names if n not in known]


class Model(BaseModel):
    """A section: unknown keys are errors (a typo must never fall back to a default), and
    neither NaN nor infinity is a number."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
