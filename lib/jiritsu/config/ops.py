"""``[notifications]``, ``[health]``, ``[dashboard]`` and ``[backup]``: running it."""

from __future__ import annotations

import ipaddress

from pydantic import Field, ValidationInfo, field_validator

from jiritsu.config.base import (
    EnvName,
    Float,
    Hour,
    Int,
    KeyPath,
    LogLevel,
    Model,
    config_dir,
    raise_if,
    resolve_path,
)


class NotificationSettings(Model):
    enabled: bool = True
    min_level: LogLevel = "WARNING"
    timeout_seconds: Float = Field(default=10, gt=0)
    username: str = Field(default="Jiritsu", min_length=1, max_length=80)
    daily_report_hour: Hour = 0
    mention_on_critical: str = ""


class HealthSettings(Model):
    check_interval_minutes: Int = Field(default=5, ge=1)
    cpu_pct: Float = Field(default=90, gt=0, le=100)
    memory_pct: Float = Field(default=90, gt=0, le=100)
    disk_pct: Float = Field(default=90, gt=0, le=100)
    heartbeat_max_age_seconds: Int = Field(default=180, ge=1)
    candle_max_age_minutes: Int = Field(default=10, ge=1)
    tick_max_age_minutes: Int = Field(default=30, ge=1)
    max_errors_per_hour: Int = Field(default=10, ge=1)
    db_latency_ms: Int = Field(default=500, ge=1)


class DashboardUser(Model):
    username: str = Field(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")
    password_hash_env: EnvName
    # May press halt/resume/flatten; unset means yes for the first user, no for the others.
    can_control: bool | None = None


class DashboardSettings(Model):
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
        raise_if(problems)
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
        raise_if(problems)
        return value

    @field_validator("mirror_path")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return str(resolve_path(value, config_dir(info))) if value else value

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


class BackupSettings(Model):
    retention_days: Int = Field(default=14, ge=1)
    dir: str = ""

    @field_validator("dir")
    @classmethod
    def _absolute(cls, value: str, info: ValidationInfo) -> str:
        return str(resolve_path(value, config_dir(info))) if value else value
