"""What ``jiritsu status`` shows, collected as data so that the CLI only renders it.

Later capabilities (equity, positions, open orders, last tick, last decisions) extend
:class:`StatusReport`; the foundation reports the configuration, the schema and halt state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jiritsu.config import LoadedConfig


@dataclass
class BotStatus:
    name: str
    enabled: bool
    symbol: str
    category: str
    advisor: str
    halted: bool = False
    halt_reason: str | None = None


@dataclass
class EventLine:
    timestamp: datetime
    level: str
    event_type: str
    message: str


@dataclass
class StatusReport:
    environment: str
    config_path: str
    database: str
    schema_revision: str | None
    schema_head: str
    global_halt: bool = False
    global_halt_reason: str | None = None
    bots: list[BotStatus] = field(default_factory=list)
    recent_events: list[EventLine] = field(default_factory=list)

    @property
    def schema_ok(self) -> bool:
        return self.schema_revision == self.schema_head

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        data = asdict(self)
        data["schema_ok"] = self.schema_ok
        return data


def masked_url(url: str) -> str:
    """The database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def collect_status(loaded: LoadedConfig, *, events: int = 5) -> StatusReport:
    """Connect (bounded retries; DatabaseUnavailable when down) and gather the report."""
    import sqlalchemy as sa

    from jiritsu.db import migrate
    from jiritsu.db.engine import connect
    from jiritsu.db.models import Control, SystemEvent

    settings = loaded.settings
    engine = connect(
        loaded.db_url,
        attempts=settings.database.reconnect_attempts,
        base_delay=settings.database.reconnect_base_delay_seconds,
    )
    try:
        report = StatusReport(
            environment=settings.general.environment,
            config_path=str(loaded.path),
            database=masked_url(loaded.db_url),
            schema_revision=migrate.current(loaded.db_url),
            schema_head=migrate.head(),
        )
        halts: dict[str, Any] = {}
        if report.schema_ok:
            from sqlalchemy.orm import Session

            with Session(engine) as session:
                halts = {c.scope: c for c in session.scalars(sa.select(Control))}
                rows = session.scalars(
                    sa.select(SystemEvent).order_by(SystemEvent.id.desc()).limit(events)
                ).all()
                report.recent_events = [
                    EventLine(r.timestamp, r.level, r.event_type, r.message) for r in rows
                ]
        glob = halts.get("global")
        if glob is not None and glob.halted:
            report.global_halt, report.global_halt_reason = True, glob.reason
        for bot in settings.sub_bots:
            control = halts.get(bot.name)
            report.bots.append(
                BotStatus(
                    name=bot.name,
                    enabled=bot.enabled,
                    symbol=bot.symbol,
                    category=bot.category,
                    advisor=bot.advisor,
                    halted=bool(control and control.halted),
                    halt_reason=control.reason if control and control.halted else None,
                )
            )
        return report
    finally:
        engine.dispose()
