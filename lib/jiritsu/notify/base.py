"""The notifier interface every component alerts through, and the log-only implementation.

Alerting must never be the reason a trading loop dies, so every notifier swallows its own
failures and reports them as a ``False`` return value instead of an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from jiritsu.notify.limits import format_value, normalise_level
from jiritsu.redact import redact

log = logging.getLogger("jiritsu.notify")


@runtime_checkable
class Notifier(Protocol):
    """Something that carries alerts and reports to the operator."""

    def notify(
        self, level: str, title: str, message: str, fields: Mapping[str, object] | None = None
    ) -> bool:
        """Send one event; True when delivered (or deliberately skipped). Never raises."""
        ...

    def send_report(self, title: str, sections: Sequence[tuple[str, str]]) -> bool:
        """Send a long report, split across messages as needed. Never raises."""
        ...


def level_number(level: str) -> int:
    """``logging`` number of a level name; unknown names count as WARNING so they stay visible."""
    return int(getattr(logging, normalise_level(level) or "WARNING"))


def format_fields(fields: Mapping[str, object] | None) -> str:
    """``k=v, k2=v2`` for one log line (redacted)."""
    if not fields:
        return ""
    return redact(", ".join(f"{k}={format_value(v)}" for k, v in fields.items()))


class LogNotifier:
    """Notifier used when Discord is off: every alert becomes one log line at its own level."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or log

    def notify(
        self, level: str, title: str, message: str, fields: Mapping[str, object] | None = None
    ) -> bool:
        """Log the event at ``level``; True once logged."""
        try:
            extra = format_fields(fields)
            self._log.log(
                level_number(level),
                "notification [%s] %s: %s%s",
                normalise_level(level) or str(level),
                redact(title),
                redact(message),
                f" | {extra}" if extra else "",
            )
            return True
        except Exception:  # noqa: BLE001 - a notifier never breaks its caller
            return False

    def send_report(self, title: str, sections: Sequence[tuple[str, str]]) -> bool:
        """Log the whole report as one INFO record; True once logged."""
        try:
            body = "\n".join(f"## {heading}\n{text}" for heading, text in sections)
            self._log.info("report %s\n%s", redact(title), redact(body))
            return True
        except Exception:  # noqa: BLE001 - a notifier never breaks its caller
            return False
