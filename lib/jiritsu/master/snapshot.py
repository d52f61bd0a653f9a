"""Portfolio snapshots: ``portfolio_history`` plus one ``portfolio_bot_balances`` row per bot.

What one snapshot holds:

- per ENABLED bot: its equity (wallet plus unrealised PnL plus spot holdings at market, as
  ``Exchange.balance`` reports it) and its available balance;
- ``total_balance_usdt``: the sum of those equities, i.e. the capital the bots trade. It does
  NOT include the savings: those are ``profit_saved_balance``, the main account's FUND wallet
  (``Exchange.balance(MAIN)``), which the bots never trade. Capital = total + saved. (So a
  weekly saving lowers the total by what it moved into the savings.)
- ``phase``: the phase given, else the newest recorded reading of the index symbol (NULL before
  the first one).

The balances are read under the master lock (:func:`jiritsu.locks.master_lock`), the one every
transfer is made under, so no transfer is half-way while they are read: a snapshot never sees
money in two accounts or in none (which would be a false jump or drop in the equity curves and
the drawdown breaker). The rows are written in one transaction afterwards; if any balance cannot
be read, nothing is written (a snapshot with a bot missing would draw a false drop too).

The trading engine calls :func:`take_snapshot` from its loop; ``jiritsu snapshot`` runs it from
a timer; profit saving takes one right after moving money.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from jiritsu.db.writes import WriteCount
from jiritsu.locks import LOCK_WAIT_SECONDS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.config.settings import Settings
    from jiritsu.exchange.base import Exchange

_WRITES = WriteCount()  # snapshot writes this process attempted (see :func:`writes`)


def writes(engine: Engine) -> int:
    """How many snapshot writes this process has attempted through ``engine`` (every attempt
    of a retried write counts): a reader whose database no other process writes (a
    simulation's) knows the snapshots it holds are all there are while this stands still."""
    return _WRITES(engine)


@dataclass(frozen=True)
class BotBalance:
    bot: str
    equity: Decimal
    available: Decimal


@dataclass(frozen=True)
class PortfolioSnapshot:
    """A stored snapshot (``id`` is its ``portfolio_history`` row)."""

    id: int
    timestamp: datetime
    total_balance_usdt: Decimal
    profit_saved_balance: Decimal
    phase: str | None
    environment: str
    bots: tuple[BotBalance, ...]


def take_snapshot(
    engine: Engine,
    exchange: Exchange,
    settings: Settings,
    *,
    now: datetime,
    phase: str | None = None,
    locked: bool = False,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> PortfolioSnapshot:
    """Read every enabled bot's balance and the savings under the master lock (``locked``: the
    caller holds it; else wait up to ``lock_wait`` seconds, then
    :class:`~jiritsu.locks.MasterBusy`), store and return the snapshot."""
    from jiritsu.locks import master_lock

    if locked:
        return _take(engine, exchange, settings, now=now, phase=phase)
    with master_lock(engine, settings.general.data_dir, wait_seconds=lock_wait):
        return _take(engine, exchange, settings, now=now, phase=phase)


def _take(
    engine: Engine,
    exchange: Exchange,
    settings: Settings,
    *,
    now: datetime,
    phase: str | None,
) -> PortfolioSnapshot:
    import sqlalchemy as sa

    from jiritsu.db.engine import retry_db
    from jiritsu.db.models import PortfolioBotBalance
    from jiritsu.db.models import PortfolioSnapshot as SnapshotRow
    from jiritsu.exchange.types import MAIN
    from jiritsu.master.phase import latest_phase
    from jiritsu.master.transfers import quote_coin

    coin = quote_coin(settings)
    names = [b.name for b in settings.enabled_bots]
    read = exchange.balances([*names, MAIN], coin)
    bots = tuple(
        BotBalance(name, Decimal(read[name].equity), Decimal(read[name].available))
        for name in names
    )
    saved = Decimal(read[MAIN].equity)
    total = sum((b.equity for b in bots), Decimal(0))
    if phase is None:
        phase = latest_phase(engine, settings.master_bot.index_symbol)
    environment = settings.general.environment

    def write() -> int:  # plain INSERTs (one snapshot an hour in a loop: no unit of work)
        _WRITES.add(engine)
        with engine.begin() as conn:
            key = conn.execute(
                sa.insert(SnapshotRow),
                {
                    "timestamp": now,
                    "total_balance_usdt": total,
                    "profit_saved_balance": saved,
                    "phase": phase,
                    "environment": environment,
                },
            ).inserted_primary_key
            assert key is not None  # a single-row INSERT always reports its key
            row_id = int(key[0])
            if bots:
                conn.execute(
                    sa.insert(PortfolioBotBalance),
                    [{"snapshot_id": row_id, "bot_name": b.bot, "balance": b.equity,
                      "available_balance": b.available} for b in bots],
                )  # fmt: skip
            return row_id

    row_id = retry_db(write, what="writing a portfolio snapshot")
    return PortfolioSnapshot(row_id, now, total, saved, phase, environment, bots)
