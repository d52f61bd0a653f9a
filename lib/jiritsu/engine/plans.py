"""Split-entry plans, carried by ``orders`` rows and the decision that started them.

No table of its own: a plan is

- its *spec*, written into the starting decision's ``input_summary["engine"]["plan"]`` (side,
  decision time ``t0``, legs, method, interval, deadline, leg quantity, reference price, ATR);
- its *legs*: ``orders`` rows sharing ``plan_id`` = ``<bot>@<decision bar open ms>``, one per
  leg (``leg_index``), with the deterministic client id
  ``client_order_id(bot, "e<decision bar open ms>", leg)``.

A leg's row is written (by the journal, status "pending") right before it is sent. When a plan
ends early (timeout, halt, an exit) the legs never sent get a row too, status "cancelled", so
their ids can never be sent afterwards and "every leg has a final row" is exactly "the plan is
over" -- which a restarted process reads back without any other memory.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.exchange.ids import client_order_id
from jiritsu.strategy.params import SPLIT_PRICE, SPLIT_TIME
from jiritsu.strategy.split import full_mask

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

FINAL = frozenset({"filled", "cancelled", "rejected"})
OPEN = frozenset({"pending", "sent", "new", "partially_filled", "unknown"})


def entry_key(bar_ts: int) -> str:
    """The decision key of an entry: the decision bar's open time."""
    return f"e{int(bar_ts)}"


def exit_key(t_ms: int) -> str:
    """The decision key of a closing order sent at step ``t_ms``."""
    return f"x{int(t_ms)}"


def plan_id_for(bot: str, bar_ts: int) -> str:
    return f"{bot}@{int(bar_ts)}"


def leg_client_id(bot: str, bar_ts: int, leg: int) -> str:
    return client_order_id(bot, entry_key(bar_ts), leg)


@dataclass
class Leg:
    index: int
    client_order_id: str
    status: str
    filled_qty: Decimal
    order_type: str
    price: Decimal | None
    exchange_order_id: str | None


@dataclass
class Plan:
    plan_id: str
    bot: str
    decision_id: int | None
    bar_ts: int
    side: int
    t0: int
    n: int
    method: int  # SPLIT_TIME / SPLIT_PRICE
    interval_ms: int
    deadline: int  # 0: none
    leg_qty: Decimal
    ref: float
    atr: float
    tp: float = 0.0  # provisional levels of leg 0
    sl: float = 0.0
    reason: str | None = None
    legs: dict[int, Leg] = field(default_factory=dict)

    @property
    def sent_mask(self) -> float:
        return float(sum(1 << i for i in self.legs))

    @property
    def done_mask(self) -> float:
        return float(sum(1 << i for i, leg in self.legs.items() if leg.status in FINAL))

    @property
    def filled_mask(self) -> float:
        return float(sum(1 << i for i, leg in self.legs.items() if leg.filled_qty > 0))

    @property
    def complete(self) -> bool:
        full = full_mask(self.n)
        return self.sent_mask == full and self.done_mask == full

    def open_legs(self) -> list[Leg]:
        return [leg for leg in self.legs.values() if leg.status in OPEN]

    def spec(self) -> dict[str, Any]:
        return {
            "plan_id": self.plan_id,
            "bar_ts": self.bar_ts,
            "side": self.side,
            "t0": self.t0,
            "n": self.n,
            "method": "price" if self.method == SPLIT_PRICE else "time",
            "interval_ms": self.interval_ms,
            "deadline": self.deadline,
            "leg_qty": str(self.leg_qty),
            "ref": self.ref,
            "atr": self.atr,
            "tp": self.tp,
            "sl": self.sl,
        }


def plan_from_spec(
    spec: dict[str, Any], bot: str, decision_id: int | None, reason: str | None
) -> Plan:
    return Plan(
        plan_id=str(spec["plan_id"]),
        bot=bot,
        decision_id=decision_id,
        bar_ts=int(spec["bar_ts"]),
        side=int(spec["side"]),
        t0=int(spec["t0"]),
        n=int(spec["n"]),
        method=SPLIT_PRICE if spec.get("method") == "price" else SPLIT_TIME,
        interval_ms=int(spec["interval_ms"]),
        deadline=int(spec.get("deadline") or 0),
        leg_qty=Decimal(str(spec["leg_qty"])),
        ref=float(spec["ref"]),
        atr=float(spec["atr"]),
        tp=float(spec.get("tp") or 0.0),
        sl=float(spec.get("sl") or 0.0),
        reason=reason,
    )


def _legs(rows: list[Any]) -> dict[int, Leg]:
    legs: dict[int, Leg] = {}
    for row in rows:
        if row.leg_index is None:
            continue
        legs[int(row.leg_index)] = Leg(
            index=int(row.leg_index),
            client_order_id=row.client_order_id,
            status=row.status,
            filled_qty=row.filled_qty or Decimal(0),
            order_type=row.order_type,
            price=row.price,
            exchange_order_id=row.exchange_order_id,
        )
    return legs


# A decision's plan spec and reason by decision id: written with the decision, rewritten only
# when a reused decision starts a plan (BotRunner._store_plan, which forgets it here)
Specs = dict[int, tuple[Any, str | None]]


def _plan(session: Session, bot: str, rows: list[Any], specs: Specs | None) -> Plan | None:
    """The plan of ``rows`` (its legs' rows, by id) with its starting decision's spec."""
    decision_id = next((r.decision_id for r in rows if r.decision_id is not None), None)
    if decision_id is None:
        return None
    found = None if specs is None else specs.get(decision_id)
    if found is None:
        from jiritsu.db.models import Decision

        spec, reason = None, None
        decision = session.get(Decision, decision_id)
        if decision is not None and isinstance(decision.input_summary, dict):
            spec = (decision.input_summary.get("engine") or {}).get("plan")
            reason = decision.reason
        found = (spec, reason)
        if specs is not None:
            specs[decision_id] = found
    spec, reason = found
    if not spec:
        return None
    plan = plan_from_spec(spec, bot, decision_id, reason)
    plan.legs = _legs(rows)
    return plan


def load_plan(engine: Engine, bot: str, plan_id: str) -> Plan | None:
    """A plan with its legs, from the rows and the starting decision (None if unknown)."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from jiritsu.db.models import Order

    with Session(engine) as session:
        rows = list(
            session.scalars(
                sa.select(Order)
                .where(Order.bot == bot, Order.plan_id == plan_id)
                .order_by(Order.id)
            )
        )
        return _plan(session, bot, rows, None)


@functools.cache
def _newest_plan_rows(side: int | None) -> Any:
    """The legs' rows of bot ``:bot``'s newest plan (on ``side``): one statement, built once
    (building it cost about as much as running it, at every re-read of a bot)."""
    import sqlalchemy as sa

    from jiritsu.db.models import Order

    bot: sa.BindParameter[str] = sa.bindparam("bot")
    newest = sa.select(Order.plan_id).where(Order.bot == bot, Order.plan_id.is_not(None))
    if side is not None:
        newest = newest.where(Order.side == ("Buy" if side > 0 else "Sell"), Order.leg_index == 0)
    plan_id = newest.order_by(Order.id.desc()).limit(1).scalar_subquery()
    return sa.select(Order).where(Order.bot == bot, Order.plan_id == plan_id).order_by(Order.id)


def latest_plan(
    engine: Engine, bot: str, *, side: int | None = None, specs: Specs | None = None
) -> Plan | None:
    """The bot's newest plan (optionally the newest on ``side``): its rows in one query.
    ``specs``: the decisions' plan specs read before, kept by the caller (see :data:`Specs`)."""
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        rows = list(session.scalars(_newest_plan_rows(side), {"bot": bot}))
        return _plan(session, bot, rows, specs) if rows else None


def close_unsent_legs(
    engine: Engine,
    plan: Plan,
    *,
    symbol: str,
    category: str,
    environment: str,
    why: str,
) -> int:
    """Give every leg never sent a "cancelled" row, so the plan reads as over; returns how many."""
    import sqlalchemy as sa

    from jiritsu.db.engine import session_scope
    from jiritsu.db.models import Order

    missing = [i for i in range(plan.n) if i not in plan.legs]
    if not missing:
        return 0
    side = "Buy" if plan.side > 0 else "Sell"
    with session_scope(engine) as session:
        for i in missing:
            cid = leg_client_id(plan.bot, plan.bar_ts, i)
            exists = session.scalar(sa.select(Order.id).where(Order.client_order_id == cid))
            if exists is not None:
                continue
            session.add(
                Order(
                    client_order_id=cid,
                    bot=plan.bot,
                    environment=environment,
                    symbol=symbol,
                    category=category,
                    side=side,
                    order_type="Limit" if plan.method == SPLIT_PRICE else "Market",
                    qty=plan.leg_qty,
                    decision_id=plan.decision_id,
                    plan_id=plan.plan_id,
                    leg_index=i,
                    status="cancelled",
                    error=f"never sent: {why}",
                )
            )
    for i in missing:
        plan.legs[i] = Leg(i, leg_client_id(plan.bot, plan.bar_ts, i), "cancelled", Decimal(0),
                           "Market", None, None)  # fmt: skip
    return len(missing)
