"""The market phase: the index symbol's trend as one of five phases, from closed bars only.

Input is the canonical candle frame of the index symbol (normally its stored 1-minute bars),
resampled to ``master_bot.market_phase.timeframe``. Only CLOSED bars are read: a bar that opens
at ``ts`` is closed at ``now`` when ``ts + interval <= now`` and the source data reaches its end
(the newest source bar that has itself closed ends at or after ``ts + interval``). So the bar in
progress, and a bar whose last minutes have not been stored yet, never influence a reading:
appending or changing them leaves the result unchanged.

The rules (thresholds from ``[master_bot.market_phase.thresholds]``, periods from
``short_period`` / ``long_period``; indicators from :mod:`jiritsu.indicators`):

``EMA_Cross``
    ``spread = (EMA_short - EMA_long) / EMA_long`` and
    ``slope = (EMA_short[i] - EMA_short[i - 3]) / EMA_short[i - 3]`` (3 = :data:`SLOPE_BARS`),
    both at the last closed bar ``i``.

    - ``|spread| < weak_pct``: ranging;
    - otherwise the sign of the spread gives bull (+) or bear (-), and the phase is STRONG when
      ``|spread| >= strong_pct`` and the short EMA still moves the same way (``slope`` has the
      spread's sign, strictly), else WEAK: a wide spread whose short EMA has turned is a trend
      that is fading.

    ``value`` is the spread.

``ADX``
    ``ADX(long_period)`` measures trend strength; ``+DI`` / ``-DI`` of ``short_period`` give the
    direction (as the shipped ``config.toml`` documents).

    - ``ADX < adx_trend`` or ``+DI == -DI``: ranging;
    - ``+DI > -DI``: bull, ``+DI < -DI``: bear; STRONG when ``ADX >= adx_strong``, else WEAK.

    ``value`` is the ADX.

A reading needs enough closed bars for its indicator (EMA_Cross: ``long_period`` bars and
``SLOPE_BARS`` more than ``short_period``; ADX: ``2 * long_period``), else
:class:`PhaseUnavailable`. Live readings load :data:`LOOKBACK_FACTOR` x ``long_period`` bars so
that the averages have warmed up.

A reading is recorded in ``market_phases`` with ``ts`` = the close of the bar it describes
(``close_ts``), ``value`` as above and every number behind it in ``details``. Recording is
idempotent per (symbol, indicator, ts): running ``jiritsu phase`` twice within one bar keeps one
row, so the dashboard's "phase over time" counts each bar once.

A reading is STALE when its bar closed more than ``max(2 x interval, 10 minutes)`` before
``now`` (the candles stopped arriving); the rebalancer refuses a stale phase outside paper mode.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cache
from typing import TYPE_CHECKING, Any

from jiritsu.config.master import PHASES
from jiritsu.db.writes import WriteCount
from jiritsu.errors import JiritsuError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    from sqlalchemy.engine import Engine

    from jiritsu.config.master import MarketPhaseSettings, PhaseThresholds
    from jiritsu.config.settings import Settings
    from jiritsu.market.data import MarketData

log = logging.getLogger("jiritsu.master.phase")

SLOPE_BARS = 3  # the short EMA's slope is measured over this many closed bars
LOOKBACK_FACTOR = 4  # live readings load this many x long_period bars (EMA/ADX warm-up)
STALE_FLOOR = timedelta(minutes=10)
_WRITES = WriteCount()  # reading writes this process attempted (see :func:`writes`)


def writes(engine: Engine) -> int:
    """How many times this process has stored readings through ``engine``: while it stands
    still, the newest phase of a database no other process writes has not moved."""
    return _WRITES(engine)


BULLISH = ("strong_bull", "weak_bull")
BEARISH = ("strong_bear", "weak_bear")


class PhaseUnavailable(UsageError):
    """Not enough closed bars to classify: import or backfill candles first."""


class StalePhase(JiritsuError):
    """The newest closed bar is too old to move real money on."""


@dataclass(frozen=True)
class PhaseReading:
    """One classification: the phase, the indicator value and the bar it describes."""

    symbol: str
    phase: str
    indicator: str
    value: float
    timeframe: str
    bar_ts: datetime  # open of the last closed bar used
    close_ts: datetime  # its close: the moment this reading describes
    as_of: datetime  # the "now" it was computed for
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def age(self) -> timedelta:
        return self.as_of - self.close_ts

    @property
    def stale(self) -> bool:
        return self.age > stale_after(self.timeframe)

    def summary(self) -> str:
        """One line for logs, events and Discord."""
        if self.indicator == "EMA_Cross":
            numbers = (
                f"spread {self.details['spread'] * 100:+.2f} %, "
                f"slope {self.details['slope'] * 100:+.2f} %"
            )
        else:
            numbers = (
                f"ADX {self.details['adx']:.1f}, +DI {self.details['plus_di']:.1f}, "
                f"-DI {self.details['minus_di']:.1f}"
            )
        return (
            f"{self.phase} ({self.symbol} {self.indicator} on {self.timeframe} bars: {numbers}; "
            f"bar closed {self.close_ts:%Y-%m-%d %H:%M} UTC)"
        )


# --------------------------------------------------------------------------- the rules


def ema_cross_phase(spread: float, slope: float, th: PhaseThresholds) -> str:
    """The EMA_Cross rule for one bar (see the module docstring)."""
    size = abs(spread)
    if size < th.weak_pct:
        return "ranging"
    bull = spread > 0
    agrees = slope > 0 if bull else slope < 0
    if size >= th.strong_pct and agrees:
        return "strong_bull" if bull else "strong_bear"
    return "weak_bull" if bull else "weak_bear"


def adx_phase(adx: float, plus_di: float, minus_di: float, th: PhaseThresholds) -> str:
    """The ADX rule for one bar (see the module docstring)."""
    if adx < th.adx_trend or plus_di == minus_di:
        return "ranging"
    bull = plus_di > minus_di
    if adx >= th.adx_strong:
        return "strong_bull" if bull else "strong_bear"
    return "weak_bull" if bull else "weak_bear"


def stale_after(timeframe: str) -> timedelta:
    """How old a reading's bar may be before it counts as stale."""
    from jiritsu.market.frames import interval_ms

    return max(timedelta(milliseconds=2 * interval_ms(timeframe)), STALE_FLOOR)


def min_bars(settings: MarketPhaseSettings) -> int:
    """Closed bars a first reading needs."""
    if settings.indicator == "ADX":
        return 2 * settings.long_period
    return max(settings.long_period, settings.short_period + SLOPE_BARS)


def lookback_bars(settings: MarketPhaseSettings) -> int:
    """Bars a live reading loads (warm-up included)."""
    return max(LOOKBACK_FACTOR * settings.long_period, min_bars(settings)) + SLOPE_BARS + 1


# --------------------------------------------------------------------------- closed bars


def _ms(when: datetime) -> int:
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"naive datetime refused (use UTC): {when!r}")
    return round(when.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=int(ms))


def closed_bars(
    frame: pl.DataFrame, timeframe: str, *, now: datetime, source_interval: str = "1"
) -> pl.DataFrame:
    """The bars of ``timeframe`` that have closed by ``now`` (see the module docstring)."""
    import polars as pl

    from jiritsu.market.frames import interval_ms, resample

    now_ms = _ms(now)
    src_step = interval_ms(source_interval)
    source = frame.filter(pl.col("ts") + src_step <= now_ms)  # source bars closed by now
    if source.height == 0:
        return source
    covered_to = int(source["ts"][-1]) + src_step  # the stored data reaches this far
    step = interval_ms(timeframe)
    bars = source if step == src_step else resample(source, timeframe)
    return bars.filter(pl.col("ts") + step <= min(now_ms, covered_to))


# --------------------------------------------------------------------------- classification


def _evaluate(
    bars: pl.DataFrame, settings: MarketPhaseSettings
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Indicator arrays for every bar and a mask of the bars that have a reading."""
    import numpy as np

    from jiritsu import indicators as ind
    from jiritsu.market.frames import to_numpy

    cols = to_numpy(bars)
    close = np.ascontiguousarray(cols["close"], dtype=np.float64)
    if settings.indicator == "ADX":
        high = np.ascontiguousarray(cols["high"], dtype=np.float64)
        low = np.ascontiguousarray(cols["low"], dtype=np.float64)
        adx_long, _, _ = ind.adx(high, low, close, settings.long_period)
        _, plus_di, minus_di = ind.adx(high, low, close, settings.short_period)
        arrays = {"adx": adx_long, "plus_di": plus_di, "minus_di": minus_di, "close": close}
    else:
        ema_s = ind.ema(close, settings.short_period)
        ema_l = ind.ema(close, settings.long_period)
        earlier = np.full(close.shape[0], np.nan)
        earlier[SLOPE_BARS:] = ema_s[:-SLOPE_BARS]
        with np.errstate(invalid="ignore", divide="ignore"):
            spread = (ema_s - ema_l) / ema_l
            slope = (ema_s - earlier) / earlier
        arrays = {
            "ema_short": ema_s,
            "ema_long": ema_l,
            "spread": spread,
            "slope": slope,
            "close": close,
        }
    valid = np.ones(close.shape[0], dtype=bool)
    for values in arrays.values():
        valid &= np.isfinite(values)
    return valid, arrays


def _reading(
    i: int,
    bars_ts: np.ndarray,
    arrays: dict[str, np.ndarray],
    settings: MarketPhaseSettings,
    *,
    symbol: str,
    step_ms: int,
    as_of: datetime | None,
) -> PhaseReading:
    th = settings.thresholds
    numbers = {name: float(values[i]) for name, values in arrays.items()}
    if settings.indicator == "ADX":
        phase = adx_phase(numbers["adx"], numbers["plus_di"], numbers["minus_di"], th)
        value = numbers["adx"]
        limits = {"adx_trend": th.adx_trend, "adx_strong": th.adx_strong}
    else:
        phase = ema_cross_phase(numbers["spread"], numbers["slope"], th)
        value = numbers["spread"]
        limits = {"weak_pct": th.weak_pct, "strong_pct": th.strong_pct}
    bar_ts = _dt(int(bars_ts[i]))
    close_ts = _dt(int(bars_ts[i]) + step_ms)
    details: dict[str, Any] = {
        **numbers,
        **limits,
        "short_period": settings.short_period,
        "long_period": settings.long_period,
        "bars": i + 1,
    }
    if settings.indicator == "EMA_Cross":
        details["slope_bars"] = SLOPE_BARS
    return PhaseReading(
        symbol=symbol,
        phase=phase,
        indicator=settings.indicator,
        value=value,
        timeframe=settings.timeframe,
        bar_ts=bar_ts,
        close_ts=close_ts,
        as_of=as_of or close_ts,
        details=details,
    )


def classify(
    frame: pl.DataFrame,
    settings: MarketPhaseSettings,
    *,
    now: datetime,
    symbol: str = "",
    source_interval: str = "1",
) -> PhaseReading:
    """The phase at ``now`` from the closed bars of ``frame`` (1-minute bars by default, or bars
    of ``source_interval``); raises :class:`PhaseUnavailable` without enough of them."""
    bars = closed_bars(frame, settings.timeframe, now=now, source_interval=source_interval)
    return _classify_closed(bars, settings, now=now, symbol=symbol)


def _classify_closed(
    bars: pl.DataFrame, settings: MarketPhaseSettings, *, now: datetime, symbol: str
) -> PhaseReading:
    """:func:`classify` of the bars :func:`closed_bars` gave."""
    from jiritsu.market.frames import interval_ms

    need = min_bars(settings)
    if bars.height < need:
        raise PhaseUnavailable(
            f"{symbol or 'the index'}: {bars.height} closed {settings.timeframe} bars before "
            f"{now:%Y-%m-%d %H:%M} UTC, {settings.indicator} needs at least {need}; import or "
            "backfill candles (jiritsu data import / data backfill / data synth)"
        )
    valid, arrays = _evaluate(bars, settings)
    last = bars.height - 1
    if not valid[last]:
        raise PhaseUnavailable(f"{symbol or 'the index'}: the indicators are undefined at {now}")
    return _reading(
        last,
        bars["ts"].to_numpy(),
        arrays,
        settings,
        symbol=symbol,
        step_ms=interval_ms(settings.timeframe),
        as_of=now,
    )


def classify_series(
    frame: pl.DataFrame,
    settings: MarketPhaseSettings,
    *,
    symbol: str = "",
    source_interval: str = "1",
    now: datetime | None = None,
) -> list[PhaseReading]:
    """One reading per closed bar (from the first bar with enough history), each as of its bar's
    close: the reading for bar ``i`` equals ``classify(frame, now=close of bar i)`` on complete
    data, because the indicators at ``i`` use bars up to ``i`` only. One pass over the frame, so a
    year of history costs one indicator run, not one per bar."""
    from jiritsu.market.frames import interval_ms

    if frame.height == 0:
        return []
    step = interval_ms(settings.timeframe)
    src_step = interval_ms(source_interval)
    end = now or _dt(int(frame["ts"][-1]) + max(step, src_step))
    bars = closed_bars(frame, settings.timeframe, now=end, source_interval=source_interval)
    if bars.height == 0:
        return []
    valid, arrays = _evaluate(bars, settings)
    ts = bars["ts"].to_numpy()
    return [
        _reading(i, ts, arrays, settings, symbol=symbol, step_ms=step, as_of=None)
        for i in range(bars.height)
        if valid[i]
    ]


def phase_shares(readings: Sequence[PhaseReading]) -> dict[str, float]:
    """Share of readings per phase (every phase present, in PHASES order)."""
    total = len(readings) or 1
    return {p: sum(r.phase == p for r in readings) / total for p in PHASES}


# --------------------------------------------------------------------------- live readings


def _load_source(
    market: MarketData, settings: Settings, start_ms: int, end_ms: int
) -> tuple[pl.DataFrame, str]:
    """The index symbol's stored bars with ``start_ms <= ts < end_ms`` and their interval.

    Candidates: the 1-minute series and bars of the phase timeframe itself (``jiritsu data
    backfill --interval 60``, :func:`refresh_index_candles`). A series that yields enough closed
    bars for a reading wins over one that does not (a trade loop may have stored only a few
    hours of minutes); among those, the one that reaches further; ties go to the minutes.
    """
    from jiritsu.market.frames import interval_ms

    mp = settings.master_bot.market_phase
    symbol = settings.master_bot.index_symbol
    candidates = [("1", market.stored(symbol, "1", start_ms, end_ms))]
    if mp.timeframe != "1":
        candidates.append((mp.timeframe, market.stored(symbol, mp.timeframe, start_ms, end_ms)))
    end = _dt(end_ms)
    need = min_bars(mp)

    def rank(item: tuple[str, pl.DataFrame]) -> tuple[bool, int, int]:
        interval, frame = item
        if frame.height == 0:
            return (False, -1, 0)
        closed = closed_bars(frame, mp.timeframe, now=end, source_interval=interval).height
        reach = int(frame["ts"][-1]) + interval_ms(interval)
        return (closed >= need, reach, closed)

    held = [item for item in candidates if item[1].height]
    if len(held) <= 1:  # nothing to weigh (an empty series never wins over one with bars)
        best = held[0] if held else candidates[0]
        return best[1], best[0]
    best = candidates[0]
    for item in candidates[1:]:
        if rank(item) > rank(best):
            best = item
    return best[1], best[0]


def load_index_frame(
    market: MarketData, settings: Settings, *, now: datetime
) -> tuple[pl.DataFrame, str]:
    """The stored bars a live reading at ``now`` reads (the lookback window; nothing at or after
    ``now``) and their interval."""
    return _load_source(market, settings, _window_start(market, settings, now), _ms(now))


def _window_start(market: MarketData, settings: Settings, now: datetime) -> int:
    """Where a live reading's window starts: the lookback before the newest stored bar (so
    that candles that stopped arriving still give a (stale) reading instead of none)."""
    from jiritsu.market.frames import interval_ms

    mp = settings.master_bot.market_phase
    now_ms = _ms(now)
    symbol = settings.master_bot.index_symbol
    newest = market.newest_stored_ts(symbol, (mp.timeframe, "1"), now_ms)
    anchor = now_ms if newest is None else min(now_ms, newest + interval_ms(mp.timeframe))
    return anchor - (lookback_bars(mp) + 1) * interval_ms(mp.timeframe)


def _held_closed_bars(market: MarketData, settings: Settings, now: datetime) -> pl.DataFrame | None:
    """The closed bars a live reading at ``now`` classifies, sliced from the market's bars of
    the phase timeframe resampled once, where that is the same as resampling the window's
    minutes: the market holds the whole history (a replay, a simulation), the window has no
    stored bars of the timeframe itself (the minutes are its only source) and starts at a bar
    open (so its first bar is whole). A bar closed by ``now`` and by the window's newest
    minute (:func:`closed_bars`) holds exactly the minutes it holds in the whole series. None
    when that does not hold: the reading then resamples its window."""
    import numpy as np

    from jiritsu.market.frames import bucket_offset_ms, interval_ms
    from jiritsu.market.symbols import normalize_symbol

    mp = settings.master_bot.market_phase
    symbol = normalize_symbol(settings.master_bot.index_symbol)
    if not market.holds_history or mp.timeframe == "1" or symbol not in market.symbols:
        return None
    step, now_ms = interval_ms(mp.timeframe), _ms(now)
    start = _window_start(market, settings, now)
    if (start - bucket_offset_ms(mp.timeframe)) % step:
        return None
    if market.stored(symbol, mp.timeframe, start, now_ms).height:
        return None
    minutes = market.stored(symbol, "1", start, now_ms)
    if minutes.height == 0:
        return None
    covered_to = int(minutes["ts"][-1]) + 60_000  # the window's minutes reach this far
    bars, opens = market.resampled(symbol, mp.timeframe)
    lo = int(np.searchsorted(opens, start, side="left"))
    hi = int(np.searchsorted(opens, min(now_ms, covered_to) - step, side="right"))
    return bars.slice(lo, max(hi - lo, 0))


def history(
    market: MarketData, settings: Settings, *, start: datetime, end: datetime
) -> list[PhaseReading]:
    """The readings of every bar that closed in ``[start, end]``, from stored candles (with the
    warm-up before ``start`` loaded too)."""
    from jiritsu.market.frames import interval_ms

    if end <= start:
        raise UsageError("the history range must end after it starts")
    mp = settings.master_bot.market_phase
    step = interval_ms(mp.timeframe)
    frame, source = _load_source(
        market, settings, _ms(start) - (lookback_bars(mp) + 1) * step, _ms(end)
    )
    readings = classify_series(
        frame, mp, symbol=settings.master_bot.index_symbol, source_interval=source, now=end
    )
    return [r for r in readings if start <= r.close_ts <= end]


def refresh_index_candles(market: MarketData, settings: Settings) -> int:
    """Store the index symbol's closed bars of the phase timeframe for the lookback window from
    the market's live client (none offline: 0); returns the bars inserted."""
    from jiritsu.market.frames import interval_ms

    mp = settings.master_bot.market_phase
    days = lookback_bars(mp) * interval_ms(mp.timeframe) / 86_400_000
    return market.top_up(settings.master_bot.index_symbol, mp.timeframe, days=days)


def current_phase(
    market: MarketData,
    settings: Settings,
    *,
    now: datetime,
    refresh: bool = False,
) -> PhaseReading:
    """The phase at ``now`` from stored candles, first topped up from the market's live client
    with ``refresh`` (offline there is none).

    A failed refresh is logged and the stored candles are used; whether they are too old is the
    caller's decision (:attr:`PhaseReading.stale`).
    """
    if refresh:
        try:
            refresh_index_candles(market, settings)
        except JiritsuError as exc:
            log.warning("could not refresh the index candles (%s); using the stored ones", exc)
    bars = _held_closed_bars(market, settings, now)
    if bars is not None:
        mp = settings.master_bot.market_phase
        return _classify_closed(bars, mp, now=now, symbol=settings.master_bot.index_symbol)
    frame, source = load_index_frame(market, settings, now=now)
    return classify(
        frame,
        settings.master_bot.market_phase,
        now=now,
        symbol=settings.master_bot.index_symbol,
        source_interval=source,
    )


# --------------------------------------------------------------------------- the record


def _row_details(reading: PhaseReading) -> dict[str, Any]:
    return {
        **reading.details,
        "timeframe": reading.timeframe,
        "bar_ts": reading.bar_ts.isoformat(),
        "as_of": reading.as_of.isoformat(),
    }


def record_readings(engine: Engine, readings: Iterable[PhaseReading]) -> int:
    """Store readings in ``market_phases``, skipping (symbol, indicator, ts) already stored;
    returns how many rows were added.

    The database's unique key decides (INSERT ... ON CONFLICT DO NOTHING, migration 0008), not
    a read before the write: two ``phase`` runs at the same time store a reading once. One
    statement built once per dialect, run for each row in one transaction (a simulation stores
    a reading every 4 hours, and building the statement cost more than running it)."""
    rows = [
        {
            "ts": r.close_ts,
            "symbol": r.symbol,
            "phase": r.phase,
            "indicator": r.indicator,
            "value": r.value,
            "details": _row_details(r),
        }
        for r in readings
    ]
    stmt = _insert(engine.dialect.name)
    added = 0
    _WRITES.add(engine)
    with engine.begin() as conn:
        for row in rows:  # a returned row was inserted (rowcount varies by driver)
            added += len(conn.execute(stmt, row).all())
    return added


@cache
def _insert(dialect: str) -> Any:
    from jiritsu.db.models import MarketPhase
    from jiritsu.db.upsert import conflict_insert

    table = MarketPhase.__table__
    return (
        conflict_insert(dialect, table)
        .on_conflict_do_nothing(index_elements=["symbol", "indicator", "ts"])
        .returning(table.c.id)
    )


def record_reading(engine: Engine, reading: PhaseReading) -> bool:
    """Store one reading (see :func:`record_readings`); False when its bar is already stored."""
    return record_readings(engine, [reading]) == 1


def latest_phase(engine: Engine, symbol: str | None = None) -> str | None:
    """The newest recorded phase (of ``symbol``, when given), None before the first reading."""
    import sqlalchemy as sa
    from sqlalchemy.orm import Session

    from jiritsu.db.models import MarketPhase

    query = sa.select(MarketPhase.phase).order_by(MarketPhase.ts.desc(), MarketPhase.id.desc())
    if symbol:
        query = query.where(MarketPhase.symbol == symbol)
    with Session(engine) as session:
        return session.scalars(query.limit(1)).first()
