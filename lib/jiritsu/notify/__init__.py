"""Alerts and reports for the operator: Discord when a webhook is configured, else the log.

Importing this package is cheap (``requests`` is loaded only when a Discord notifier is built).
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from jiritsu.notify.base import LogNotifier, Notifier
from jiritsu.notify.discord import DiscordNotifier
from jiritsu.notify.limits import Message

__all__ = [
    "DiscordNotifier",
    "LogNotifier",
    "Message",
    "Notifier",
    "build_notifier",
    "notifier_from_config",
]

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig

log = logging.getLogger("jiritsu.notify")


def build_notifier(
    webhook_url: str | None,
    *,
    enabled: bool = True,
    timeout: float = 10,
    username: str = "Jiritsu",
    min_level: str = "WARNING",
    footer: str | None = None,
) -> Notifier:
    """The notifier the configuration asks for; no webhook or ``enabled=False`` means log only.

    A malformed URL or level raises :class:`jiritsu.errors.UsageError` at start-up rather than
    silently dropping every alert later.
    """
    if not enabled or not webhook_url or not webhook_url.strip():
        log.debug("discord notifications off; alerts go to the log only")
        return LogNotifier()
    return DiscordNotifier(
        webhook_url, timeout=timeout, username=username, min_level=min_level, footer=footer
    )


def notifier_from_config(loaded: LoadedConfig) -> Notifier:
    """The notifier of ``[notifications]`` and the webhook secret; every command uses this."""
    settings = loaded.settings
    cfg = settings.notifications
    return build_notifier(
        loaded.secrets.discord_webhook(),
        enabled=cfg.enabled,
        timeout=cfg.timeout_seconds,
        username=cfg.username,
        min_level=cfg.min_level,
        footer=f"{settings.general.environment} @ {socket.gethostname()}",
    )
