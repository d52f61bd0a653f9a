"""Circuit breakers: global halts (drawdown, daily loss, crash) and bot pauses (loss streak,
exchange failures).

Every trip is a halt in ``controls`` (``by="breaker"``, with ``risk.cooldown_minutes``, or
``risk.loss_streak_cooldown_minutes`` for the loss streak: 0 means only ``jiritsu resume`` lifts
it), a CIRCUIT_BREAKER event (CRITICAL for a global halt, ERROR for
a bot) and an alert. A breaker that is already halted does not trip again (no alert storms).

Definitions:

- **Portfolio value** = the enabled bots' equity (``exchange.balance(bot).equity``: wallet plus
  unrealised PnL, spot holdings at market; the snapshots' ``portfolio_bot_balances``) + the
  savings (``profit_saved_balance``) (the main account's FUND wallet,
  ``balance(MAIN)``). Savings are not at risk, but profit saving and rebalancing MOVE money
  between the two, so only their sum is blind to transfers. The breakers therefore measure the
  loss in this sum and divide it by the capital that was actually at risk (the bots' part):

  - drawdown = (peak value - value now) / (peak value - savings at the peak); the peak is the
    highest value among the portfolio snapshots (``portfolio_history``) since the last lift of
    the global halt, and now. Trips above ``risk.max_drawdown_pct``.
  - daily loss = (base value - value now) / (base value - base savings); the base is the last
    snapshot at or before 00:00 UTC (else the day's first), or the first snapshot after a lift of
    the global halt later that day. Trips above ``risk.daily_loss_pct``.
- **Crash**: on the index symbol's 1-minute bars, ``|close_now / close_then - 1|`` where
  ``close_then`` is the close of the newest bar at least ``crash_window_minutes`` older than the
  newest bar. Trips above ``risk.crash_move_pct``.
- **Loss streak** (per bot): the bot's closing trades (``trades.pnl``, see
  :mod:`jiritsu.exchange.book`) since its last halt or resume; ``risk.max_consecutive_losses``
  losing ones in a row pause the bot.
- **Exchange failures** (per bot): failures in a row -- a step cut short by an exchange error
  (an ERROR ``EXCHANGE_ERROR`` event) or an order the exchange refused (an ERROR
  ``ORDER_ERROR`` event) -- since the bot's last step whose every exchange call succeeded (it
  records an INFO ``EXCHANGE_ERROR`` event "... succeed again" when it ends a run of failures)
  and since its last halt/resume; ``risk.exchange_failure_limit`` of them pause it. A decision
  is no success: it is written before the orders it leads to are sent.
"""

from __future__ import annotations

import bisect
import functools
import logging
import weakref
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np

from jiritsu.controls import GLOBAL
from jiritsu.events import EventType, record_event
from jiritsu.strategy.params import MINUTE_MS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from jiritsu.exchange.base import Exchange
    from jiritsu.market.data import CandleFeed
    from jiritsu.master.snapshot import PortfolioSnapshot as MasterSnapshot
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.risk")
ZERO = Decimal(0)


@dataclass(frozen=True)
class Trip:
    scope: str  # GLOBAL or a bot name
    breaker: str  # drawdown | daily_loss | crash | loss_streak | exchange_failures
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PortfolioValue:
    bots: dict[str, Decimal]  # equity per bot
    available: dict[str, Decimal]
    savings: Decimal

    @property
    def bots_total(self) -> Decimal:
        return sum(self.bots.values(), ZERO)

    @property
    def value(self) -> Decimal:
        return self.bots_total + self.savings


def portfolio_value(exchange: Exchange, settings: Any) -> PortfolioValue:
    from jiritsu.exchange.types import MAIN

    quote = settings.paper.quote_coin
    names = [bot.name for bot in settings.enabled_bots]
    read = exchange.balances([*names, MAIN], quote)
    bots = {name: read[name].equity for name in names}
    available = {name: read[name].available for name in names}
    return PortfolioValue(bots, available, read[MAIN].equity)


# --- snapshots ---------------------------------------------------------------------------


def take_snapshot(
    engine: Engine,
    exchange: Exchange,
    settings: Any,
    *,
    now: datetime,
    locked: bool = False,
    history: SnapshotHistory | None = None,
    phase: str | None = None,
) -> PortfolioValue:
    """A ``portfolio_history`` row written by the one snapshot writer
    (:func:`jiritsu.master.snapshot.take_snapshot`, ``phase`` None: the newest recorded) and
    added to ``history``; returns the value it recorded, which the breakers then use."""
    from jiritsu.master.snapshot import take_snapshot as write_snapshot

    snap = write_snapshot(engine, exchange, settings, now=now, locked=locked, phase=phase)
    if history is not None:
        history.wrote(snap)
    return PortfolioValue(
        {b.bot: b.equity for b in snap.bots},
        {b.bot: b.available for b in snap.bots},
        snap.profit_saved_balance,
    )


def _snapshot_values(
    engine: Engine, since: datetime | None = None
) -> list[tuple[datetime, Decimal, Decimal]]:
    """(time, value = bots + savings, savings) of every snapshot since ``since``, oldest first."""
    return [(ts, v, s) for _id, ts, v, s in _snapshot_rows(engine, since)]


def _snapshot_rows(
    engine: Engine, since: datetime | None = None, after_id: int = 0
) -> list[tuple[int, datetime, Decimal, Decimal]]:
    """(id, time, value, savings) of the snapshots since ``since`` with an id above
    ``after_id``, oldest first."""
    import sqlalchemy as sa

    from jiritsu.db.models import PortfolioBotBalance as B
    from jiritsu.db.models import PortfolioSnapshot as S

    query = sa.select(S.id, S.timestamp, S.profit_saved_balance).order_by(S.timestamp, S.id)
    if since is not None:
        query = query.where(S.timestamp >= since)
    if after_id:
        query = query.where(S.id > after_id)
    with engine.connect() as conn:
        snaps = conn.execute(query).all()
        if not snaps:
            return []
        sums: dict[int, Decimal] = {}
        balances = sa.select(B.snapshot_id, B.balance)
        if after_id:  # (an IN list of every id since a lift grows with the run)
            balances = balances.where(B.snapshot_id > after_id)
        else:
            balances = balances.where(B.snapshot_id.in_([s.id for s in snaps]))
        for sid, bal in conn.execute(balances).all():
            sums[sid] = sums.get(sid, ZERO) + bal
    out = []
    for sid, ts, saved in snaps:
        savings = saved or ZERO
        out.append((int(sid), ts, sums.get(sid, ZERO) + savings, savings))
    return out


@dataclass
class _Peak:
    """The highest snapshot since ``lift`` among those with ids up to ``upto_id`` (``count``
    of them): (value, time, id, savings), the earliest of equal values."""

    lift: datetime | None
    upto_id: int = 0
    count: int = 0
    best: tuple[Decimal, datetime, int, Decimal] | None = None


_PEAKS: weakref.WeakKeyDictionary[Engine, _Peak] = weakref.WeakKeyDictionary()


def _peak_since(engine: Engine, lift: datetime | None) -> tuple[Decimal, Decimal] | None:
    """(value, savings) of the highest snapshot since ``lift`` (None: none yet).

    Read at every drawdown check, so over a long run re-reading every snapshot since the lift
    grows without bound; snapshots are only appended, so the peak is carried forward per
    database engine and only newer rows are read. When the number of rows it has seen changed
    (one deleted, or committed late under a lower id) it starts over from all of them."""
    import sqlalchemy as sa

    from jiritsu.db.models import PortfolioSnapshot as S

    memo = _PEAKS.get(engine)
    if memo is not None and memo.lift == lift and memo.upto_id:
        seen = sa.select(sa.func.count()).select_from(S).where(S.id <= memo.upto_id)
        if lift is not None:
            seen = seen.where(S.timestamp >= lift)
        with engine.connect() as conn:
            if conn.execute(seen).scalar_one() != memo.count:
                memo = None
    if memo is None or memo.lift != lift:
        memo = _PEAKS[engine] = _Peak(lift)
    for sid, ts, v, s in _snapshot_rows(engine, lift, memo.upto_id):
        best = memo.best
        if best is None or v > best[0] or (v == best[0] and (ts, sid) < (best[1], best[2])):
            memo.best = (v, ts, sid, s)
        memo.upto_id = max(memo.upto_id, sid)
        memo.count += 1
    return None if memo.best is None else (memo.best[0], memo.best[3])


# The bot breakers' reads are statements built once with the bot (or scope) and the lift time as
# parameters: a decision after every fill asks them, and building a statement with its subquery
# and cache key cost about as much as running it.


@functools.cache
def _lift_select() -> Any:
    import sqlalchemy as sa

    from jiritsu.db.models import Control

    return sa.select(Control.halted_at, Control.resumed_at).where(
        Control.scope == sa.bindparam("scope")
    )


def _lift_time(engine: Engine, scope: str) -> datetime | None:
    """When ``scope`` was last resumed (by hand or by its cool-down), or halted."""
    with engine.connect() as conn:
        row = conn.execute(_lift_select(), {"scope": scope}).first()
    if row is None:
        return None
    times = [t for t in row if t is not None]
    return max(times) if times else None


class SnapshotHistory:
    """The snapshots and the global halt's lift time as the equity breakers read them, held in
    memory for a database that only this process writes (a simulation's; see
    :attr:`jiritsu.engine.loop.TradeLoop.private_db`): every check used to read the day's
    snapshots again, the peak's new rows and the lift time twice.

    The rows are those :func:`_snapshot_rows` reads, kept in its order (time, id). They are read
    once; the caller's own snapshots are added as it writes them (:meth:`wrote`, the values
    canonical as the ``Money`` columns return them). Whenever this process made another
    snapshot write (profit saving's; a retried write counts twice, see
    :func:`jiritsu.master.snapshot.writes`), the rows above the newest id held are read from
    the database. The lift time is read again only after this process changed a halt state
    (:func:`jiritsu.controls.writes`)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: list[tuple[int, datetime, Decimal, Decimal]] = []
        self._mark = -1  # the snapshot writes the rows are complete for (-1: never read)
        self._last_id = 0
        self._lift: tuple[int, datetime | None] | None = None  # (halt-state writes, lift)
        # The peak (value, savings) since _peak_lift over self.rows[:_scanned] (-1: none).
        self._peak_lift: datetime | None = None
        self._scanned = -1
        self._best: tuple[Decimal, Decimal] | None = None

    def _add(self, row: tuple[int, datetime, Decimal, Decimal]) -> None:
        if self.rows and (row[1], row[0]) < (self.rows[-1][1], self.rows[-1][0]):
            bisect.insort(self.rows, row, key=lambda r: (r[1], r[0]))
            self._scanned = -1  # (a row inside the scanned part: scan again)
        else:
            self.rows.append(row)
        self._last_id = max(self._last_id, row[0])

    def _sync(self) -> None:
        from jiritsu.master.snapshot import writes

        mark = writes(self.engine)
        if mark != self._mark:
            for row in _snapshot_rows(self.engine, None, self._last_id):
                self._add(row)
            self._mark = mark

    def wrote(self, snap: MasterSnapshot) -> None:
        """Add the snapshot the caller just wrote, unless another write came between (then it
        is read with the others at the next question)."""
        from jiritsu.db.types import to_decimal
        from jiritsu.master.snapshot import writes

        if writes(self.engine) != self._mark + 1:
            return
        savings = to_decimal(snap.profit_saved_balance)
        total = ZERO
        for bot in snap.bots:  # (the order _snapshot_rows sums them in)
            total += to_decimal(bot.equity)
        self._add((snap.id, snap.timestamp.astimezone(timezone.utc), total + savings, savings))
        self._mark += 1

    def _since(self, since: datetime | None) -> int:
        if since is None:
            return 0
        return bisect.bisect_left(self.rows, since, key=lambda r: r[1])

    def values(self, since: datetime) -> list[tuple[datetime, Decimal, Decimal]]:
        """:func:`_snapshot_values` from memory."""
        self._sync()
        return [(ts, v, s) for _id, ts, v, s in self.rows[self._since(since) :]]

    def peak(self, lift: datetime | None) -> tuple[Decimal, Decimal] | None:
        """:func:`_peak_since` from memory, carried forward over the rows added since."""
        self._sync()
        if self._scanned < 0 or self._peak_lift != lift:
            self._peak_lift, self._scanned, self._best = lift, self._since(lift), None
        for _id, ts, v, s in self.rows[self._scanned :]:  # (in order: the first of equals)
            if lift is not None and ts < lift:  # (written after the lift, stamped before it)
                continue
            if self._best is None or v > self._best[0]:
                self._best = (v, s)
        self._scanned = len(self.rows)
        return self._best

    def lift_time(self) -> datetime | None:
        """:func:`_lift_time` of the global halt, read again after a halt-state change."""
        from jiritsu import controls

        mark = controls.writes(self.engine)
        if self._lift is None or self._lift[0] != mark:
            self._lift = (mark, _lift_time(self.engine, GLOBAL))
        return self._lift[1]


# --- the breakers ------------------------------------------------------------------------


# The rules themselves, on plain numbers (Decimal here, floats in the backtester's portfolio
# model, :mod:`jiritsu.backtest.portfolio`): what the value is measured against is each caller's.


def _loss(base: Any, base_savings: Any, value: Any) -> tuple[Any, Any] | None:
    """(loss fraction, capital at risk) of ``value`` against a base (see the module docstring);
    None when nothing was at risk."""
    capital = base - base_savings
    if capital <= 0:
        return None
    return (base - value) / capital, capital


def _limit(like: Any, limit: float) -> Any:
    return Decimal(str(limit)) if isinstance(like, Decimal) else limit


def drawdown_rule(peak: Any, peak_savings: Any, value: Any, limit: float) -> Trip | None:
    """The drawdown breaker given the peak value (and the savings at the peak) and the value
    now; a Trip when over ``limit`` (``risk.max_drawdown_pct``)."""
    found = _loss(peak, peak_savings, value)
    if found is None or found[0] <= _limit(found[0], limit):
        return None
    dd = found[0]
    return Trip(
        GLOBAL,
        "drawdown",
        f"drawdown {float(dd):.2%} from the peak {peak:.2f} exceeds "
        f"max_drawdown_pct {limit:.2%}",
        {"peak": peak, "value": value, "drawdown": float(dd)},
    )


def daily_loss_rule(base: Any, base_savings: Any, value: Any, limit: float) -> Trip | None:
    """The daily-loss breaker given the day's base value (and its savings) and the value now;
    a Trip when over ``limit`` (``risk.daily_loss_pct``)."""
    found = _loss(base, base_savings, value)
    if found is None or found[0] <= _limit(found[0], limit):
        return None
    loss, capital = found
    return Trip(
        GLOBAL,
        "daily_loss",
        f"today's loss {float(loss):.2%} of {capital:.2f} exceeds daily_loss_pct {limit:.2%}",
        {"base": base, "value": value, "loss": float(loss)},
    )


def cooldown_minutes(breaker: str, risk: Any) -> int:
    """How long a trip of ``breaker`` halts (0: until ``jiritsu resume``). One answer for the
    trade loop, the tick and the backtester: a crash is a burst of volatility that passes, a
    loss streak is usually the market; drawdown and daily loss wait for ``cooldown_minutes``."""
    if breaker == "loss_streak":
        return int(risk.loss_streak_cooldown_minutes)
    if breaker == "crash":
        return int(risk.crash_cooldown_minutes)
    return int(risk.cooldown_minutes)


def crash_moves(ts: np.ndarray, close: np.ndarray, window_minutes: int) -> np.ndarray:
    """For each 1-minute bar taken as the newest: ``close / close_then - 1`` where
    ``close_then`` is the close of the newest bar at least ``window_minutes`` older among the
    ``window_minutes + 2`` bars up to it (what the feed serves the live check); NaN without
    one. Whole series at once: the replay and the backtester find every crash minute with it."""
    n = ts.shape[0]
    i = np.arange(n)
    then = np.searchsorted(ts, ts - window_minutes * MINUTE_MS, side="right") - 1
    ok = (then >= 0) & (then >= i + 1 - (window_minutes + 2))
    ref = close[np.maximum(then, 0)]
    ok &= ref > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, close / np.where(ok, ref, 1.0) - 1.0, np.nan)


def crash_rule(move: float, settings: Any, details: dict[str, Any]) -> Trip | None:
    """The crash breaker given the index symbol's ``move`` over the window (see
    :func:`crash_moves`); a Trip when beyond ``risk.crash_move_pct``."""
    risk = settings.risk
    if not abs(move) > risk.crash_move_pct:  # (NaN: no reference bar, no trip)
        return None
    symbol = settings.master_bot.index_symbol
    return Trip(
        GLOBAL,
        "crash",
        f"{symbol} moved {move:+.2%} in {risk.crash_window_minutes} minutes "
        f"(crash_move_pct {risk.crash_move_pct:.2%})",
        {"symbol": symbol, "move": move, **details},
    )


def drawdown_trip(
    engine: Engine, value: PortfolioValue, settings: Any, history: SnapshotHistory | None = None
) -> Trip | None:
    peak_value, peak_savings = value.value, value.savings
    if history is not None:
        peak = history.peak(history.lift_time())
    else:
        peak = _peak_since(engine, _lift_time(engine, GLOBAL))
    if peak is not None and peak[0] > peak_value:
        peak_value, peak_savings = peak
    return drawdown_rule(peak_value, peak_savings, value.value, settings.risk.max_drawdown_pct)


def daily_base(
    rows: list[tuple[Any, Any, Any]], day: Any, lift: Any | None
) -> tuple[Any, Any, Any] | None:
    """The daily-loss base among snapshot ``rows`` (time, value, savings; oldest first) for the
    day starting at ``day``: the last one at or before 00:00 UTC (else the day's first), or the
    first one after a lift of the global halt later that day (None: nothing yet). Times are
    datetimes here, ms in the backtester's model: only their order matters."""
    base: tuple[Any, Any, Any] | None = None
    for row in rows:
        if row[0] <= day:
            base = row
    if base is None:
        base = next((r for r in rows if r[0] >= day), None)
    if lift is not None and lift > day:
        base = next((r for r in rows if r[0] >= lift), None)
    return base


def daily_loss_trip(
    engine: Engine,
    value: PortfolioValue,
    settings: Any,
    now: datetime,
    history: SnapshotHistory | None = None,
) -> Trip | None:
    day = datetime.combine(now.date(), time(0), tzinfo=timezone.utc)
    if history is not None:
        base = daily_base(history.values(day - timedelta(days=2)), day, history.lift_time())
    else:
        rows = _snapshot_values(engine, day - timedelta(days=2))
        base = daily_base(rows, day, _lift_time(engine, GLOBAL))
    if base is None:
        return None
    _ts, base_value, base_savings = base
    return daily_loss_rule(base_value, base_savings, value.value, settings.risk.daily_loss_pct)


def crash_trip(feed: CandleFeed, settings: Any, now_ms: int) -> Trip | None:
    risk = settings.risk
    symbol = settings.master_bot.index_symbol
    bars = feed.minute_window(symbol, now_ms, risk.crash_window_minutes + 2)
    if not bars or len(bars["ts"]) < 2:
        return None
    ts = np.asarray(bars["ts"], dtype=np.int64)
    close = np.asarray(bars["close"], dtype=np.float64)
    move = float(crash_moves(ts, close, risk.crash_window_minutes)[-1])
    return crash_rule(move, settings, {"to": float(close[-1])})


class CrashMoves:
    """The crash rule's move at every 1-minute bar the feed holds for the index symbol, computed
    once (:func:`crash_moves` over the whole series): a replay's feed holds every bar it will
    serve, and the move of the newest bar closed by a step is the one :func:`crash_trip` finds
    in the window of that bar (the same bars, the same float operations)."""

    def __init__(self, feed: CandleFeed, settings: Any) -> None:
        self.cols = feed.minute_columns(settings.master_bot.index_symbol)
        self.window = settings.risk.crash_window_minutes
        empty = np.zeros(0)
        self.ts = self.cols["ts"] if self.cols is not None else empty.astype(np.int64)
        self.close = self.cols["close"] if self.cols is not None else empty
        self.moves = crash_moves(self.ts, self.close, self.window)

    def serves(self, feed: CandleFeed, settings: Any) -> bool:
        """Still the answer for ``feed``'s bars and the crash window of ``settings``."""
        cols = feed.minute_columns(settings.master_bot.index_symbol)
        return cols is self.cols and settings.risk.crash_window_minutes == self.window

    def minutes(self, settings: Any) -> np.ndarray:
        """The step times (bar closes) at which the crash rule holds."""
        with np.errstate(invalid="ignore"):
            return self.ts[np.abs(self.moves) > settings.risk.crash_move_pct] + MINUTE_MS

    def trip(self, settings: Any, now_ms: int) -> Trip | None:
        """:func:`crash_trip` at ``now_ms``."""
        newest = int(np.searchsorted(self.ts, now_ms - MINUTE_MS, side="right")) - 1
        if newest < 1:  # (fewer than two bars: no window)
            return None
        return crash_rule(float(self.moves[newest]), settings, {"to": float(self.close[newest])})


@functools.cache
def _streak_select(since: bool) -> Any:
    """The newest 200 closing trades' PnL of ``:bot`` (at or after ``:since``)."""
    import sqlalchemy as sa

    from jiritsu.db.models import Trade

    query = sa.select(Trade.pnl).where(
        Trade.sub_bot_name == sa.bindparam("bot"),
        Trade.position_effect == "close",
        Trade.pnl.is_not(None),
    )
    if since:
        query = query.where(Trade.timestamp >= sa.bindparam("since"))
    return query.order_by(Trade.timestamp.desc(), Trade.id.desc()).limit(200)


def _loss_streak(conn: Connection, bot: str, since: datetime | None) -> int:
    """:func:`loss_streak` on an open connection, counted since ``since`` (the lift)."""
    params = {"bot": bot} if since is None else {"bot": bot, "since": since}
    streak = 0
    for (pnl,) in conn.execute(_streak_select(since is not None), params):
        if pnl is not None and pnl < 0:  # (the query excludes None)
            streak += 1
        else:
            break
    return streak


def loss_streak(engine: Engine, bot: str) -> int:
    """Losing closing trades in a row, newest first, since the bot's last halt or resume. A
    fill stamped at that very time counts: it is on the bar that opens then, after the step
    that halted or lifted (paper fills carry their bar's open; the kernel counts alike)."""
    since = _lift_time(engine, bot)
    with engine.connect() as conn:
        return _loss_streak(conn, bot, since)


def _streak_trip(bot: str, streak: int, settings: Any) -> Trip | None:
    limit = settings.risk.max_consecutive_losses
    if streak < limit:
        return None
    return Trip(
        bot,
        "loss_streak",
        f"{streak} losing trades in a row (max_consecutive_losses {limit})",
        {"streak": streak},
    )


def loss_streak_trip(engine: Engine, bot: str, settings: Any) -> Trip | None:
    return _streak_trip(bot, loss_streak(engine, bot), settings)


FAILURE_EVENTS = (EventType.EXCHANGE_ERROR.value, EventType.ORDER_ERROR.value)
RECOVERED = "INFO"  # the level of the EXCHANGE_ERROR event that ends a run of failures


@functools.cache
def _failures_select(since: bool) -> Any:
    """The count of ``:bot``'s failure events after its newest recovery (at or after
    ``:since``)."""
    import sqlalchemy as sa

    from jiritsu.db.models import SystemEvent as E

    bot: sa.BindParameter[str] = sa.bindparam("bot")
    recovered = (
        sa.select(sa.func.max(E.id))
        .where(E.bot == bot, E.event_type == EventType.EXCHANGE_ERROR.value, E.level == RECOVERED)
        .scalar_subquery()
    )
    query = sa.select(sa.func.count()).where(
        E.bot == bot,
        E.event_type.in_(FAILURE_EVENTS),
        E.level == "ERROR",
        sa.or_(recovered.is_(None), E.id > recovered),
    )
    return query.where(E.timestamp >= sa.bindparam("since")) if since else query


def _failures(conn: Connection, bot: str, since: datetime | None) -> int:
    """:func:`exchange_failures` on an open connection since ``since`` (the lift), in one
    query (the newest recovery's id is its subquery)."""
    params = {"bot": bot} if since is None else {"bot": bot, "since": since}
    return int(conn.execute(_failures_select(since is not None), params).scalar_one())


def exchange_failures(engine: Engine, bot: str) -> int:
    """The bot's exchange failures in a row (see the module docstring)."""
    since = _lift_time(engine, bot)
    with engine.connect() as conn:
        return _failures(conn, bot, since)


def record_recovery(
    engine: Engine, bot: str, failures: int, *, now: datetime, notifier: Notifier | None = None
) -> None:
    """End a run of ``failures`` failures: the bot's exchange calls all succeeded again."""
    record_event(
        engine, RECOVERED, EventType.EXCHANGE_ERROR,
        f"exchange calls succeed again after {failures} failure(s) in a row",
        {"failures": failures}, bot=bot, notifier=notifier, now=now,
    )  # fmt: skip


def _failure_trip(bot: str, failures: int, settings: Any) -> Trip | None:
    limit = settings.risk.exchange_failure_limit
    if failures < limit:
        return None
    return Trip(
        bot,
        "exchange_failures",
        f"{failures} exchange failures in a row (exchange_failure_limit {limit}); the bot is "
        "paused",
        {"failures": failures},
    )


def exchange_failure_trip(engine: Engine, bot: str, settings: Any) -> Trip | None:
    return _failure_trip(bot, exchange_failures(engine, bot), settings)


def apply_trip(
    engine: Engine,
    trip: Trip,
    settings: Any,
    *,
    now: datetime,
    notifier: Notifier | None = None,
) -> bool:
    """Halt the trip's scope (with the configured cool-down), record and alert; False when it
    was already halted."""
    from jiritsu import controls

    cooldown = cooldown_minutes(trip.breaker, settings.risk)
    reason = f"circuit breaker {trip.breaker}: {trip.message}"
    if not controls.halt(engine, trip.scope, reason, by="breaker", cooldown_minutes=cooldown,
                         now=now):  # fmt: skip
        return False
    level = "CRITICAL" if trip.scope == GLOBAL else "ERROR"
    details = {"breaker": trip.breaker, "cooldown_minutes": cooldown, **trip.details}
    record_event(
        engine,
        level,
        EventType.CIRCUIT_BREAKER,
        reason,
        details,
        bot=None if trip.scope == GLOBAL else trip.scope,
        notifier=notifier,
        now=now,
    )
    return True


def pause_on_failures(
    engine: Engine, bot: str, settings: Any, *, now: datetime, notifier: Notifier | None = None
) -> Trip | None:
    """After a failed step: pause the bot when its failures reached the limit; the trip if it
    was applied now."""
    trip = exchange_failure_trip(engine, bot, settings)
    if trip and apply_trip(engine, trip, settings, now=now, notifier=notifier):
        return trip
    return None


def check_portfolio(
    engine: Engine,
    exchange: Exchange,
    feed: CandleFeed | None,
    settings: Any,
    *,
    now: datetime,
    value: PortfolioValue | None = None,
    equity: bool = True,
    crash: bool = True,
    history: SnapshotHistory | None = None,
    moves: CrashMoves | None = None,
) -> list[Trip]:
    """The global breakers that are over their limit now (not yet applied); ``history`` and
    ``moves`` answer from memory what the database and the feed would (a simulation's)."""
    trips: list[Trip] = []
    now_ms = round(now.timestamp() * 1000)
    found = None
    if crash and moves is not None:
        found = moves.trip(settings, now_ms)
    elif crash and feed is not None:
        found = crash_trip(feed, settings, now_ms)
    if found:
        trips.append(found)
    if equity:
        value = value or portfolio_value(exchange, settings)
        for check in (drawdown_trip(engine, value, settings, history),
                      daily_loss_trip(engine, value, settings, now, history)):  # fmt: skip
            if check:
                trips.append(check)
    return trips


def check_bot(engine: Engine, bot: str, settings: Any) -> list[Trip]:
    """The bot's breakers that are over their limit now (not yet applied): the lift time read
    once for both, their counts on one connection (a decision after every fill asks)."""
    since = _lift_time(engine, bot)
    with engine.connect() as conn:
        streak = _loss_streak(conn, bot, since)
        failures = _failures(conn, bot, since)
    return [t for t in (_streak_trip(bot, streak, settings),
                        _failure_trip(bot, failures, settings)) if t]  # fmt: skip


def apply_first(
    engine: Engine,
    trips: list[Trip],
    settings: Any,
    *,
    now: datetime,
    notifier: Notifier | None = None,
) -> list[Trip]:
    """Apply ``trips`` in the order of :data:`ORDER`; the ones that halted something now (a
    scope an earlier trip already halted is not tripped again: one alert, the first reason)."""
    applied = []
    for trip in sorted(trips, key=lambda t: ORDER.index(t.breaker)):
        if apply_trip(engine, trip, settings, now=now, notifier=notifier):
            applied.append(trip)
    return applied


# The one order in which the trade loop and the trade tick evaluate the breakers: the global
# ones at the start of a step, then each bot's right before it decides (and the exchange
# failures again after a step that failed). When two would trip, the first one here is the one
# recorded and alerted.
ORDER = ("crash", "drawdown", "daily_loss", "loss_streak", "exchange_failures")
