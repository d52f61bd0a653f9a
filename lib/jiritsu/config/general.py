"""``[general]``, ``[database]`` and ``[api_keys]``: where Jiritsu runs, what it stores in, and the
NAMES of the variables holding its secrets."""

from __future__ import annotations

from datetime import tzinfo
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from jiritsu.config.base import (
    EnvName,
    Float,
    Int,
    KeyPath,
    LogLevel,
    Model,
    OptionalEnvName,
    config_dir,
    raise_if,
    resolve_path,
)


class GeneralSettings(Model):
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
        return resolve_path(value, config_dir(info))

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


class DatabaseSettings(Model):
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
        raise_if(problems)
        return self


class ApiKeysSettings(Model):
    bybit_master_key_env: EnvName = "BYBIT_MASTER_API_KEY"
    bybit_master_secret_env: EnvName = "BYBIT_MASTER_API_SECRET"  # noqa: S105 - a name
    gemini_keys_env: EnvName = "GEMINI_API_KEYS"
    discord_webhook_env: EnvName = "DISCORD_WEBHOOK_URL"
