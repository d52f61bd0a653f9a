"""Alerts and reports for the operator: Discord when a webhook is configured, else the log.

Importing this package is cheap (``requests`` is loaded only when a Discord notifier is built).
"""

from __future__ import annotations

import logging

from jiritsu.notify.base import LogNotifier, Notifier
from jiritsu.notify.discord import DiscordNotifier
from jiritsu.notify.limits import Message

__all__ = ["DiscordNotifier", "LogNotifier", "Message", "Notifier", "build_notifier"]

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
