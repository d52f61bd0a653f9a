"""The one way the master layer moves money: write-ahead rows, settlement and a run lock.

Every transfer follows the same journal (``transfers`` table, one row per transfer id):

1. ``pending``: the row, with its idempotency key (Bybit's ``transferId``), is committed
   BEFORE anything is sent;
2. ``sent``: committed immediately before the exchange call;
3. the answer: ``success`` / ``failed`` (the exchange or our pre-checks refused it: nothing
   moved), or ``unknown`` (timeout, dropped connection, server error: it may have happened).
   An exchange answer of PENDING is kept as ``unknown`` with ``exchange_status`` PENDING.

A crash can leave a row at any of these steps. :func:`settle_transfers` runs at the start of
every rebalance and profit-saving run and looks each unfinished row up by its transfer id
(``Exchange.get_transfer``):

- found: the row takes the exchange's status (success / failed); a transfer the exchange still
  processes stays unsettled;
- not found and ``pending``: the run stopped before sending it, so it never happened. The row is
  marked ``failed`` ("abandoned") and NOT re-sent: it was planned from balances that are now old,
  and the new run plans afresh from the balances it measures, so the move is neither repeated
  nor forgotten;
- not found and ``sent`` / ``unknown``: if the row is older than :data:`SETTLE_GRACE` (time for
  a request that was already on the wire to land), it never arrived: ``failed``. Younger rows
  stay unsettled.

While any row stays unsettled, no new transfer is planned (money in flight would distort every
balance a plan reads): the run stops with :class:`UnsettledTransfers` (exit 1) and the next run
tries again. Only the master's own kinds (rebalance, profit_save) are settled here.

Master runs hold :func:`jiritsu.locks.master_lock` (the rebalance and profit-saving timers both
fire at Sunday 00:00 UTC, and a snapshot must not read balances while money is half-way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

from jiritsu.errors import JiritsuError, UsageError
from jiritsu.exchange.types import MAIN, TransferRequest, TransferResult, Wallet

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.config.settings import Settings
    from jiritsu.db.models import Transfer
    from jiritsu.exchange.base import Exchange

log = logging.getLogger("jiritsu.master.transfers")

MASTER_KINDS = ("rebalance", "profit_save")
UNSETTLED = ("pending", "sent", "unknown")
FINAL = ("success", "failed")
SETTLE_GRACE = timedelta(minutes=2)
CENT = Decimal("0.01")
_EXCHANGE_STATUS = {
    "success": "SUCCESS",
    "pending": "PENDING",
    "failed": "FAILED",
    "unknown": "STATUS_UNKNOWN",
}


class UnsettledTransfers(JiritsuError):
    """Earlier transfers are still in flight; nothing new is planned until they settle."""

    def __init__(self, rows: Sequence[TransferOutcome]) -> None:
        self.rows = list(rows)
        listed = ", ".join(f"#{r.row_id} {r.key} ({r.status})" for r in self.rows[:5])
        super().__init__(
            f"{len(self.rows)} earlier transfer(s) not settled yet: {listed}; nothing new is "
            "moved until the exchange reports them (the next run retries)"
        )


class DuplicateTransfer(JiritsuError):
    """The idempotency key is already recorded: that transfer exists, nothing new is sent."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"transfer {key} is already recorded; not sending it again")


@dataclass(frozen=True)
class TransferIntent:
    """A recorded (``pending``) transfer: its row and the request that will be sent."""

    row_id: int
    kind: str
    request: TransferRequest


@dataclass(frozen=True)
class TransferOutcome:
    """Where one ``transfers`` row stands."""

    row_id: int
    key: str
    kind: str
    from_account: str
    to_account: str
    amount: Decimal
    status: str
    error: str | None = None
    exchange_status: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def final(self) -> bool:
        return self.status in FINAL


@dataclass
class SettleReport:
    """What :func:`settle_transfers` found: rows it finished, rows still in flight."""

    settled: list[TransferOutcome] = field(default_factory=list)
    unsettled: list[TransferOutcome] = field(default_factory=list)


# --------------------------------------------------------------------------- small helpers


def cents(amount: Decimal) -> Decimal:
    """Round DOWN to whole cents: a transfer never moves more than was planned."""
    return Decimal(amount).quantize(CENT, rounding=ROUND_DOWN)


def quote_coin(settings: Settings) -> str:
    """The coin the bots' capital is held in (paper: ``paper.quote_coin``; Bybit: USDT)."""
    return settings.paper.quote_coin if settings.is_paper else "USDT"


def member_id(settings: Settings, account: str) -> int | None:
    """The configured Bybit UID of an account (None when not configured or unknown)."""
    if account == MAIN:
        return settings.master_bot.main_member_id
    try:
        return settings.bot(account).member_id
    except KeyError:
        return None


def _outcome(row: Transfer) -> TransferOutcome:
    return TransferOutcome(
        row_id=int(row.id),
        key=row.idempotency_key,
        kind=row.kind,
        from_account=row.from_account,
        to_account=row.to_account,
        amount=row.amount,
        status=row.status,
        error=row.error,
        exchange_status=row.exchange_status,
    )


def _is_refusal(exc: BaseException) -> bool:
    """True when the exception proves that nothing moved (a refusal before or by the exchange);
    anything else (timeouts, dropped answers, database trouble mid-call) may have moved money."""
    from jiritsu.exchange.errors import AuthError, NotFound, OrderRejected

    return isinstance(exc, (OrderRejected, AuthError, NotFound, UsageError))


def _retry(fn: Callable[[], Any], what: str) -> Any:
    from jiritsu.db.engine import retry_db

    return retry_db(fn, what=what)


# --------------------------------------------------------------------------- the journal


def record_intent(
    engine: Engine,
    *,
    kind: str,
    from_account: str,
    to_account: str,
    amount: Decimal,
    coin: str,
    from_wallet: Wallet = "UNIFIED",
    to_wallet: Wallet = "UNIFIED",
    environment: str | None = None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    key: str | None = None,
    member_ids: tuple[int | None, int | None] = (None, None),
    now: datetime,
) -> TransferIntent:
    """Step 1: commit a ``pending`` row (a fresh UUID4 key unless ``key`` is given).

    A key that is already recorded raises :class:`DuplicateTransfer` and nothing is sent.
    """
    from sqlalchemy.exc import IntegrityError

    from jiritsu.db.models import Transfer
    from jiritsu.db.statements import insert_into
    from jiritsu.exchange.ids import new_transfer_id

    amount = Decimal(amount)
    if amount <= 0:
        raise ValueError(f"transfer amount must be positive, got {amount}")
    key = key or new_transfer_id()
    row = {
        "idempotency_key": key,
        "kind": kind,
        "environment": environment,
        "from_account": from_account,
        "to_account": to_account,
        "from_member_id": member_ids[0],
        "to_member_id": member_ids[1],
        "from_account_type": from_wallet,
        "to_account_type": to_wallet,
        "coin": coin,
        "amount": amount,
        "status": "pending",
        "reason": reason,
        "details": dict(details or {}) or None,
        "created_at": now,
        "updated_at": now,
    }

    def insert() -> int:
        with engine.begin() as conn:
            inserted = conn.execute(insert_into(Transfer), row).inserted_primary_key
        assert inserted is not None  # a single-row INSERT reports its key
        return int(inserted[0])

    try:
        row_id = _retry(insert, f"recording transfer {key}")
    except IntegrityError:
        raise DuplicateTransfer(key) from None
    request = TransferRequest(
        transfer_id=key,
        coin=coin,
        amount=amount,
        from_account=from_account,
        to_account=to_account,
        from_wallet=from_wallet,
        to_wallet=to_wallet,
    )
    return TransferIntent(row_id, kind, request)


def _update(
    engine: Engine,
    row_id: int,
    *,
    now: datetime,
    settle_note: str | None = None,
    **values: Any,
) -> TransferOutcome:
    import sqlalchemy as sa

    from jiritsu.db.models import Transfer

    t = Transfer.__table__
    names = tuple(sorted(values)) + (("details",) if settle_note is not None else ())
    update = _update_statement(names)

    def apply() -> TransferOutcome:
        params = {f"new_{name}": value for name, value in values.items()}
        with engine.begin() as conn:
            if settle_note is not None:
                found = conn.execute(sa.select(t.c.details).where(t.c.id == row_id)).first()
                if found is None:
                    raise JiritsuError(f"transfer row {row_id} disappeared")
                details = dict(found[0] or {})
                details["settlement"] = {"at": now.isoformat(), "note": settle_note}
                params["new_details"] = details
            row = conn.execute(update, {**params, "row_id": row_id, "new_updated_at": now}).first()
        if row is None:
            raise JiritsuError(f"transfer row {row_id} disappeared")
        return TransferOutcome(int(row[0]), *row[1:])

    result: TransferOutcome = _retry(apply, f"updating transfer row {row_id}")
    return result


def mark_sent(engine: Engine, intent: TransferIntent, *, now: datetime) -> None:
    """Step 2: commit ``sent`` just before the exchange call."""
    _update(engine, intent.row_id, now=now, status="sent")


def record_result(
    engine: Engine,
    intent: TransferIntent,
    *,
    result: TransferResult | None = None,
    error: BaseException | None = None,
    now: datetime,
) -> TransferOutcome:
    """Step 3: the exchange's answer (or the exception instead of one) onto the row."""
    if result is not None:
        status = result.status if result.status in ("success", "failed") else "unknown"
        return _update(
            engine,
            intent.row_id,
            now=now,
            status=status,
            exchange_status=_EXCHANGE_STATUS.get(result.status, result.status.upper())[:32],
            error=(result.detail or "exchange reports FAILED") if status == "failed" else None,
        )
    text = f"{type(error).__name__}: {error}" if error is not None else "no answer"
    from jiritsu.redact import redact

    status = "failed" if error is not None and _is_refusal(error) else "unknown"
    code = getattr(error, "code", None)
    return _update(
        engine,
        intent.row_id,
        now=now,
        status=status,
        exchange_status=str(code)[:32] if code is not None else None,
        error=redact(text)[:2000],
    )


def execute_transfer(
    engine: Engine,
    exchange: Exchange,
    *,
    kind: str,
    from_account: str,
    to_account: str,
    amount: Decimal,
    coin: str,
    from_wallet: Wallet = "UNIFIED",
    to_wallet: Wallet = "UNIFIED",
    environment: str | None = None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
    key: str | None = None,
    member_ids: tuple[int | None, int | None] = (None, None),
    now: datetime,
) -> TransferOutcome:
    """Record, mark sent, call the exchange, record the answer (see the module docstring).

    Never raises for an exchange failure: a refusal is ``failed``, anything ambiguous is
    ``unknown`` (settled by the next run). A database failure propagates, leaving the row for
    settlement.
    """
    intent = record_intent(
        engine,
        kind=kind,
        from_account=from_account,
        to_account=to_account,
        amount=amount,
        coin=coin,
        from_wallet=from_wallet,
        to_wallet=to_wallet,
        environment=environment,
        reason=reason,
        details=details,
        key=key,
        member_ids=member_ids,
        now=now,
    )
    mark_sent(engine, intent, now=now)
    try:
        result = exchange.transfer(intent.request)
    except JiritsuError as exc:
        outcome = record_result(engine, intent, error=exc, now=now)
    except Exception as exc:  # record what we know, then let the bug surface
        record_result(engine, intent, error=exc, now=now)
        raise
    else:
        outcome = record_result(engine, intent, result=result, now=now)
    level = logging.INFO if outcome.ok else logging.ERROR
    log.log(
        level,
        "transfer %s %s %s -> %s: %s%s",
        outcome.key,
        amount,
        from_account,
        to_account,
        outcome.status,
        f" ({outcome.error})" if outcome.error else "",
    )
    return outcome


# --------------------------------------------------------------------------- settlement


def unsettled_rows(engine: Engine, kinds: Sequence[str] = MASTER_KINDS) -> list[TransferOutcome]:
    """Rows of ``kinds`` that are not final yet, oldest first."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from jiritsu.db.models import Transfer

    with Session(engine) as session:
        rows = session.scalars(
            sa.select(Transfer)
            .where(Transfer.status.in_(UNSETTLED), Transfer.kind.in_(tuple(kinds)))
            .order_by(Transfer.id)
        ).all()
        return [_outcome(r) for r in rows]


def settle_transfers(
    engine: Engine,
    exchange: Exchange,
    *,
    now: datetime,
    grace: timedelta = SETTLE_GRACE,
    kinds: Sequence[str] = MASTER_KINDS,
) -> SettleReport:
    """Finish every unfinished row by looking its transfer id up (see the module docstring)."""
    report = SettleReport()
    with engine.connect() as conn:  # (every run asks, and nearly always finds none)
        todo = conn.execute(_unsettled_query(), {"kinds": list(kinds)}).all()
    for row_id, key, status, updated_at in todo:
        try:
            found = exchange.get_transfer(key)
        except JiritsuError as exc:
            log.warning("cannot look transfer %s up yet: %s", key, exc)
            report.unsettled.append(_read(engine, row_id))
            continue
        if found is not None and found.status in FINAL:
            note = f"found on the exchange: {found.status}"
            outcome = _update(
                engine,
                row_id,
                now=now,
                settle_note=note,
                status=found.status,
                exchange_status=_EXCHANGE_STATUS[found.status],
                error=None if found.status == "success" else f"exchange reports {found.status}",
            )
            report.settled.append(outcome)
        elif found is not None:
            outcome = _update(
                engine,
                row_id,
                now=now,
                status="unknown",
                exchange_status=_EXCHANGE_STATUS.get(found.status, "STATUS_UNKNOWN"),
            )
            report.unsettled.append(outcome)
        elif status == "pending":
            note = (
                "abandoned: recorded but never sent (the run stopped before the call); not "
                "re-sent, the next plan decides afresh"
            )
            outcome = _update(
                engine, row_id, now=now, settle_note=note, status="failed", error=note
            )
            report.settled.append(outcome)
        elif now - updated_at >= grace:
            note = (
                f"not found on the exchange {_age(now - updated_at)} after it was sent: it "
                "never arrived"
            )
            outcome = _update(
                engine, row_id, now=now, settle_note=note, status="failed", error=note
            )
            report.settled.append(outcome)
        else:
            report.unsettled.append(_read(engine, row_id))
    for outcome in report.settled:
        log.warning(
            "settled transfer %s (%s %s -> %s %s): %s",
            outcome.key,
            outcome.kind,
            outcome.from_account,
            outcome.to_account,
            outcome.amount,
            outcome.status,
        )
    return report


def record_settlement(
    engine: Engine,
    report: SettleReport,
    event_type: str,
    *,
    notifier: Any = None,
    now: datetime,
) -> None:
    """A WARNING event (and alert) for rows an earlier run left unfinished and this one settled:
    a crash or a lost answer happened, and the operator should know how it ended."""
    if not report.settled:
        return
    from jiritsu.events import record_event

    record_event(
        engine,
        "WARNING",
        event_type,
        f"settled {len(report.settled)} transfer(s) an earlier run left unfinished",
        {
            "settled": [
                {
                    "key": o.key,
                    "kind": o.kind,
                    "from": o.from_account,
                    "to": o.to_account,
                    "amount": str(o.amount),
                    "status": o.status,
                    "error": o.error,
                }
                for o in report.settled
            ]
        },
        notifier=notifier,
        now=now,
    )


@cache
def _update_statement(names: tuple[str, ...]) -> Any:
    """An UPDATE of one row by id setting ``names`` and ``updated_at`` (from the caller's clock:
    an unchanged value would let the column's wall-clock ``onupdate`` stamp it), returning the
    columns of a :class:`TransferOutcome`; built once per set of columns."""
    import sqlalchemy as sa

    from jiritsu.db.models import Transfer

    t: Any = Transfer.__table__
    sets: dict[str, Any] = {name: sa.bindparam(f"new_{name}") for name in (*names, "updated_at")}
    return (
        sa.update(t)
        .where(t.c.id == sa.bindparam("row_id"))
        .values(sets)
        .returning(t.c.id, t.c.idempotency_key, t.c.kind, t.c.from_account, t.c.to_account,
                   t.c.amount, t.c.status, t.c.error, t.c.exchange_status)
    )  # fmt: skip


@cache
def _unsettled_query() -> Any:
    """The id, key, status and last change of the unfinished rows of some kinds, oldest
    first (built once: :func:`settle_transfers` runs at every rebalance)."""
    import sqlalchemy as sa

    from jiritsu.db.models import Transfer

    t = Transfer
    return (
        sa.select(t.id, t.idempotency_key, t.status, t.updated_at)
        .where(t.status.in_(UNSETTLED), t.kind.in_(sa.bindparam("kinds", expanding=True)))
        .order_by(t.id)
    )


def _read(engine: Engine, row_id: int) -> TransferOutcome:
    from sqlalchemy.orm import Session

    from jiritsu.db.models import Transfer

    with Session(engine) as session:
        row = session.get(Transfer, row_id)
        if row is None:
            raise JiritsuError(f"transfer row {row_id} disappeared")
        return _outcome(row)


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"
