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
_INF, _NEG_INF = float("inf"), float("-inf")
_PLAIN = frozenset({str, int, bool, type(None)})
_FIELDS: dict[type, tuple[str, ...]] = {}  # a dataclass's field names, in their order


def jsonable(value: Any) -> Any:
    """A JSON-able copy of ``value`` (dataclasses, Decimal, datetimes, numpy scalars; NaN and
    infinities become null, which JSON has no spelling for)."""
    # A decision's snapshot is mostly plain floats, strings, dicts and lists: those exact types
    # are answered first, by their type alone (what the checks below answer for them), and a
    # container's finite floats and plain scalars are kept without a call (``x - x`` is 0 for a
    # finite float only)
    cls = type(value)
    if cls is float:
        return value if value - value == 0 else None
    if cls in _PLAIN:
        return value
    if cls is dict:
        return {
            (k if type(k) is str else str(k)): (
                v if (type(v) is float and v - v == 0) or type(v) in _PLAIN else jsonable(v)
            )
            for k, v in value.items()
        }
    if cls is list or cls is tuple:
        return [
            v if (type(v) is float and v - v == 0) or type(v) in _PLAIN else jsonable(v)
            for v in value
        ]
    names = _FIELDS.get(cls)
    if names is not None:
        return {name: jsonable(getattr(value, name)) for name in names}
    if isinstance(value, float):
        return value if value == value and value not in (_INF, _NEG_INF) else None
    if isinstance(value, (str, int, bool)):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(value))
        return {name: jsonable(getattr(value, name)) for name in names}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return jsonable(value.item())
    return str(value)


def snapshot_summary(snapshot: MarketSnapshot) -> dict[str, Any]:
    """The snapshot as a JSON-able dict (NaN and infinities become null)."""
    data: dict[str, Any] = jsonable(snapshot)
    return data


class DecisionBatch:
    """Decision rows held back and written together, in their order, so they get the ids one
    row at a time would have given them: for a replay or a simulation, whose database is its
    own and can be run again (a crash loses the rows not yet written, and no order: a decision
    that leads to one is written at once, after the rows before it). The owner flushes before
    anything reads decisions and at the end; a live loop writes every row at once."""

    def __init__(self, engine: Engine, size: int = 500) -> None:
        self.engine = engine
        self.size = size
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.size:
            self.flush()

    def flush(self) -> None:
        """Write the held rows in one transaction (kept for the next try if it fails)."""
        import sqlalchemy as sa

        from jiritsu.db.models import Decision as DecisionRow

        if not self.rows:
            return
        with self.engine.begin() as conn:
            conn.execute(sa.insert(DecisionRow), self.rows)
        self.rows.clear()


def decision_row(
    bot: str,
    snapshot: MarketSnapshot,
    decision: Decision,
    *,
    engine_view: Mapping[str, Any] | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The ``decisions`` row of an answer (see :func:`record_decision`)."""
    summary = snapshot_summary(snapshot)
    if engine_view is not None:
        summary["engine"] = jsonable(dict(engine_view))
    tokens = None
    if decision.prompt_tokens is not None or decision.output_tokens is not None:
        tokens = (decision.prompt_tokens or 0) + (decision.output_tokens or 0)
    provider = decision.provider if decision.provider in _PROVIDERS else "rules"
    return dict(
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


def record_decision(
    engine: Engine,
    bot: str,
    snapshot: MarketSnapshot,
    decision: Decision,
    *,
    engine_view: Mapping[str, Any] | None = None,
    now: datetime,
    batch: DecisionBatch | None = None,
) -> int:
    """Write the decision's row and return its id. ``engine_view`` (what the engine did with
    the answer) is stored under ``input_summary["engine"]``; ``now`` is the step's time (a
    replay's simulated clock). The rows a ``batch`` (of the same database) holds are written
    first, in the same transaction."""
    import sqlalchemy as sa

    from jiritsu.db.models import Decision as DecisionRow

    row = decision_row(bot, snapshot, decision, engine_view=engine_view, now=now)
    held = batch.rows if batch is not None else []
    # plain INSERTs (a bot writes one at every bar it decides: no ORM unit of work)
    with engine.begin() as conn:
        if held:
            conn.execute(sa.insert(DecisionRow), held)
        key = conn.execute(sa.insert(DecisionRow), row).inserted_primary_key
    held.clear()  # written (kept for the next try if the transaction failed)
    assert key is not None  # a single-row INSERT always reports its key
    return int(key[0])
