"""Every advisor answer -- skips and errors included -- becomes one ``decisions`` row.

The row is what makes a decision replayable: what the advisor saw (``input_summary``: the whole
snapshot as JSON), what it said (action, outcome, confidence, reason, error), what it cost
(latency, tokens) and, under ``input_summary["engine"]``, what the engine did with it (acted or
why not, the size and the split-entry plan). Orders carry the row's id (``orders.decision_id``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.redact import redact, redact_obj

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.advisors.base import Decision, MarketSnapshot

_PROVIDERS = ("rules", "gemini", "hybrid")


def jsonable(value: Any) -> Any:
    """A JSON-able copy of ``value`` (dataclasses, Decimal, datetimes, numpy scalars; NaN and
    infinities become null, which JSON has no spelling for)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def snapshot_summary(snapshot: MarketSnapshot) -> dict[str, Any]:
    """The snapshot as a JSON-able dict (NaN and infinities become null)."""
    data: dict[str, Any] = jsonable(snapshot)
    return data


def record_decision(
    engine: Engine,
    bot: str,
    snapshot: MarketSnapshot,
    decision: Decision,
    *,
    engine_view: Mapping[str, Any] | None = None,
    now: datetime,
) -> int:
    """Write the decision's row and return its id. ``engine_view`` (what the engine did with
    the answer) is stored under ``input_summary["engine"]``; ``now`` is the step's time (a
    replay's simulated clock)."""
    import sqlalchemy as sa

    from jiritsu.db.models import Decision as DecisionRow

    summary = snapshot_summary(snapshot)
    if engine_view is not None:
        summary["engine"] = jsonable(dict(engine_view))
    tokens = None
    if decision.prompt_tokens is not None or decision.output_tokens is not None:
        tokens = (decision.prompt_tokens or 0) + (decision.output_tokens or 0)
    provider = decision.provider if decision.provider in _PROVIDERS else "rules"
    row = dict(
        bot=bot,
        created_at=now,
        bar_ts=snapshot.bar_ts,
        symbol=snapshot.symbol,
        provider=provider,
        model=decision.model,
        prompt_hash=(decision.extra or {}).get("prompt_hash"),
        input_summary=redact_obj(summary),
        action=decision.action,
        outcome=decision.outcome,
        confidence=float(decision.confidence) if decision.confidence is not None else None,
        reason=redact(decision.reason) if decision.reason else None,
        latency_ms=decision.latency_ms,
        prompt_tokens=decision.prompt_tokens,
        output_tokens=decision.output_tokens,
        total_tokens=tokens,
        error=redact(decision.error) if decision.error else None,
    )
    # one plain INSERT (a bot writes one at every bar it decides: no ORM unit of work)
    with engine.begin() as conn:
        key = conn.execute(sa.insert(DecisionRow), row).inserted_primary_key
    assert key is not None  # a single-row INSERT always reports its key
    return int(key[0])
