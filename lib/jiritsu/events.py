"""System events: one call writes the ``system_events`` row, the log line and (optionally) an
alert, so that what the operator sees in the dashboard, the log and Discord never disagree.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from jiritsu.redact import redact, redact_obj

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.events")

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class EventType(str, Enum):
    STARTUP = "STARTUP"
    SHUTDOWN = "SHUTDOWN"
    CONFIG = "CONFIG"
    MIGRATION = "MIGRATION"
    REBALANCE = "REBALANCE"
    PROFIT_SAVE = "PROFIT_SAVE"
    PARAM_UPDATE = "PARAM_UPDATE"
    CIRCUIT_BREAKER = "CIRCUIT_BREAKER"
    HALT = "HALT"
    RESUME = "RESUME"
    ORDER = "ORDER"
    ORDER_ERROR = "ORDER_ERROR"
    RECONCILE = "RECONCILE"
    EXCHANGE_ERROR = "EXCHANGE_ERROR"
    ADVISOR_ERROR = "ADVISOR_ERROR"
    NEWS = "NEWS"
    HEALTH = "HEALTH"
    DATABASE = "DATABASE"


def _jsonable(value: Any) -> Any:
    """Event details go into a JSON column: make Decimal, datetimes and enums portable."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def record_event(
    engine: Engine | None,
    level: str,
    event_type: str | EventType,
    message: str,
    details: Mapping[str, Any] | None = None,
    *,
    bot: str | None = None,
    notifier: Notifier | None = None,
    now: datetime,
) -> bool:
    """Log an event, store it in ``system_events`` stamped ``now`` (the caller's clock: the
    runtime's, so a replay's events carry the replayed time) and optionally alert.

    Returns True when the row was stored. The log line is written first, so a database outage
    never loses the event; a failed insert is itself logged. Never raises.
    """
    level = level.upper()
    if level not in LEVELS:
        raise ValueError(f"unknown event level {level!r}")
    kind = event_type.value if isinstance(event_type, EventType) else str(event_type)
    text = redact(message)
    clean = redact_obj(_jsonable(dict(details or {})))
    suffix = f" {json.dumps(clean, sort_keys=True)}" if clean else ""
    who = f"[{bot}] " if bot else ""
    log.log(getattr(logging, level), "%s%s: %s%s", who, kind, text, suffix)

    stored = False
    if engine is not None:
        try:
            row = {
                "timestamp": now,
                "level": level,
                "event_type": kind,
                "message": text,
                "details": clean or None,
                "bot": bot,
            }
            from jiritsu.db.models import SystemEvent
            from jiritsu.db.statements import insert_into

            with engine.begin() as conn:  # a plain INSERT, not an ORM unit of work per event
                conn.execute(insert_into(SystemEvent), row)
            stored = True
        except Exception as exc:  # noqa: BLE001 - an event must never break its caller
            log.warning("event %s not stored in the database: %s", kind, redact(str(exc)))

    if notifier is not None:
        fields = {k: v for k, v in clean.items()} if clean else {}
        if bot:
            fields = {"bot": bot, **fields}
        notifier.notify(level, kind, text, fields)
    return stored
