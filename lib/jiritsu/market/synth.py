"""A deterministic synthetic market for the offline demo and for tests that need regimes.

Real data cannot be shipped with the project and a paper demo must work offline, so this
generates bars that look and behave enough like BTC for strategies, market-phase detection and
circuit breakers to have something to react to:

* regimes follow a semi-Markov chain: ``up`` and ``down`` trends, ``range`` (mean-reverting
  around the price where it began) and ``crash`` (a 12-25% fall, most of it in the first hour);
* volatility clusters (GARCH(1,1) on Student-t shocks) and rises with the regime;
* highs and lows extend beyond the body by an amount that scales with the bar's volatility;
* volume rises with the absolute return;
* prices are positive and rounded to a tick, and every bar's OHLC is consistent.

The same seed always gives the same bars (numpy ``Generator(PCG64(seed))``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import polars as pl

from jiritsu.errors import UsageError
from jiritsu.market.frames import CANDLE_SCHEMA, INTERVALS, MINUTE_MS, validate_frame

REGIMES: tuple[str, ...] = ("up", "down", "range", "crash")
DEFAULT_SEED = 42  # the demo's market: 30 days with all four regimes and three crashes (tested)
DEFAULT_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# Segment lengths in hours (uniform between the bounds).
_DURATION_HOURS: dict[str, tuple[float, float]] = {
    "up": (12.0, 60.0),
    "down": (12.0, 48.0),
    "range": (8.0, 36.0),
    "crash": (1.5, 4.0),
}
# Which regime follows which. Crashes come most often after a run-up, as blow-offs do.
_NEXT: dict[str, dict[str, float]] = {
    "up": {"range": 0.45, "down": 0.40, "crash": 0.15},
    "down": {"range": 0.50, "up": 0.42, "crash": 0.08},
    "range": {"up": 0.45, "down": 0.45, "crash": 0.10},
    "crash": {"range": 0.55, "down": 0.25, "up": 0.20},
}
_MINUTE_VOL = 0.0008  # log-return sd of one minute, about 58% a year, BTC-like
_LEVEL_PULL = 3.0  # how strongly the price level tilts the next trend's direction
_VOL_MULT = {"up": 1.0, "down": 1.2, "range": 0.7, "crash": 2.5}
_TREND_PER_DAY = (0.02, 0.06)  # log drift of a trend per day
_RANGE_PULL_MINUTES = 120.0  # mean-reversion time of a range
_CRASH_DROP = (0.12, 0.25)  # total fall of a crash
_CRASH_DECAY_MINUTES = (15.0, 35.0)  # most of the fall happens within a few of these
_T_DOF = 5.0  # Student-t shocks: fat tails
_GARCH_ALPHA = 0.05
_GARCH_PERSISTENCE_PER_MINUTE = 0.995
_AFTERSHOCK = 3.0  # variance multiplier left behind by a crash, decaying with GARCH persistence
_MAX_VARIANCE_MULT = 25.0  # keeps one extreme shock from blowing the variance up
_WICK = 0.6  # wick length in units of the bar's sd
_VOLUME_PER_MINUTE = 8.0


def synth_candles(
    *,
    days: int,
    seed: int,
    start: datetime | None = None,
    start_price: float = 30000.0,
    interval_minutes: int = 1,
) -> pl.DataFrame:
    """``days`` of synthetic bars as a canonical candle frame (see the module docstring)."""
    frame, _ = synth_candles_with_regimes(
        days=days,
        seed=seed,
        start=start,
        start_price=start_price,
        interval_minutes=interval_minutes,
    )
    return frame


def synth_candles_with_regimes(
    *,
    days: int,
    seed: int,
    start: datetime | None = None,
    start_price: float = 30000.0,
    interval_minutes: int = 1,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Like :func:`synth_candles`, plus each bar's regime label (one of :data:`REGIMES`), so
    tests and demos can check what the market was doing."""
    start_ms, n = _check_args(days, seed, start, start_price, interval_minutes)
    rng = np.random.Generator(np.random.PCG64(seed))
    m = interval_minutes
    codes, log_close, sigma = _simulate(rng, n, m, math.log(start_price))

    close = np.exp(log_close)
    prev = np.concatenate(([start_price], close[:-1]))
    wick_up = np.abs(rng.standard_normal(n)) * sigma * _WICK
    wick_dn = np.abs(rng.standard_normal(n)) * sigma * _WICK
    # a tick of about a millionth of the price: 0.01 for a price in the tens of thousands
    decimals = 6 - math.floor(math.log10(start_price))
    tick = 10.0**-decimals
    close_r = np.maximum(np.round(close, decimals), tick)
    open_r = np.concatenate(([max(round(start_price, decimals), tick)], close_r[:-1]))
    high_r = np.round(np.maximum(prev, close) * np.exp(wick_up), decimals)
    high_r = np.maximum(np.maximum(high_r, open_r), close_r)
    low_r = np.round(np.minimum(prev, close) * np.exp(-wick_dn), decimals)
    low_r = np.maximum(np.minimum(np.minimum(low_r, open_r), close_r), tick)

    log_ret = np.diff(np.concatenate(([math.log(start_price)], log_close)))
    base_sd = _MINUTE_VOL * math.sqrt(m)
    noise = np.exp(0.35 * rng.standard_normal(n))
    volume = _VOLUME_PER_MINUTE * m * noise * (0.3 + np.abs(log_ret) / base_sd)
    volume = np.round(volume, 6)

    ts = start_ms + np.arange(n, dtype=np.int64) * (m * MINUTE_MS)
    frame = pl.DataFrame(
        {
            "ts": ts,
            "open": open_r,
            "high": high_r,
            "low": low_r,
            "close": close_r,
            "volume": volume,
        },
        schema=CANDLE_SCHEMA,
    )
    validate_frame(frame)
    labels = np.asarray(REGIMES)[codes]
    return frame, labels


def _check_args(
    days: int, seed: int, start: datetime | None, start_price: float, interval_minutes: int
) -> tuple[int, int]:
    """Validate the arguments; return the first bar's open (ms) and the number of bars."""
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise UsageError(f"days must be a positive whole number, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise UsageError(f"seed must be a non-negative whole number, got {seed!r}")
    if not (isinstance(start_price, (int, float)) and math.isfinite(start_price)) or not (
        start_price > 0
    ):
        raise UsageError(f"start_price must be a positive number, got {start_price!r}")
    minutes = {v // MINUTE_MS for v in INTERVALS.values() if v <= 1440 * MINUTE_MS}
    if interval_minutes not in minutes:
        raise UsageError(
            f"interval_minutes must be one of {sorted(minutes)}, got {interval_minutes!r}"
        )
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None or start.utcoffset() is None:
        raise UsageError(f"start must be timezone-aware (UTC), got naive {start.isoformat()}")
    start_ms = (start - _EPOCH) // timedelta(milliseconds=1)  # exact, unlike float seconds
    if start_ms % (interval_minutes * MINUTE_MS):
        raise UsageError(
            f"start {start.isoformat()} is not on a {interval_minutes}-minute bar boundary"
        )
    return start_ms, days * 1440 // interval_minutes


def _next_regime(rng: np.random.Generator, regime: str, level: float) -> str:
    """Draw the regime after ``regime``. ``level`` is log(price / start price): far below the
    start, up-trends become likelier than down-trends (and vice versa) and crashes rarer, so long
    runs wander like a market instead of drifting to zero under the one-sided crashes."""
    choices = dict(_NEXT[regime])
    if "crash" in choices and level < 0:
        choices["crash"] *= math.exp(_LEVEL_PULL * level)
    if "up" in choices and "down" in choices:
        both = choices["up"] + choices["down"]
        tilt = math.log(choices["up"] / choices["down"]) - _LEVEL_PULL * level
        share = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, tilt))))
        choices["up"], choices["down"] = both * share, both * (1.0 - share)
    names = list(choices)
    weights = np.asarray(list(choices.values()))
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _segment_drift(rng: np.random.Generator, regime: str, bars: int, m: int) -> np.ndarray:
    """Per-bar log drift of one segment: constant for trends, front-loaded for a crash."""
    if regime in ("up", "down"):
        per_day = rng.uniform(*_TREND_PER_DAY)
        return np.full(bars, (per_day if regime == "up" else -per_day) * m / 1440)
    if regime == "crash":
        fall = -math.log(1.0 - rng.uniform(*_CRASH_DROP))
        decay = rng.uniform(*_CRASH_DECAY_MINUTES)
        weights = np.exp(-(np.arange(bars) + 0.5) * m / decay)
        return -fall * weights / weights.sum()
    return np.zeros(bars)


def _simulate(
    rng: np.random.Generator, n: int, m: int, x0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Regime code, log close and return sd of every bar.

    Segment by segment: draw the regime's length and drift, then walk bar by bar with GARCH(1,1)
    variance on Student-t shocks (scaled by the regime's volatility) and, in a range, an
    Ornstein-Uhlenbeck pull towards the price where the range began. A crash leaves raised
    variance behind that decays with the GARCH persistence.
    """
    codes = np.empty(n, dtype=np.int8)
    log_close = np.empty(n)
    sigma = np.empty(n)
    base = _MINUTE_VOL * math.sqrt(m)
    persistence = _GARCH_PERSISTENCE_PER_MINUTE**m
    alpha = min(_GARCH_ALPHA, persistence)
    beta = persistence - alpha
    omega = 1.0 - persistence
    pull = min(1.0, m / _RANGE_PULL_MINUTES)
    t_scale = math.sqrt((_T_DOF - 2) / _T_DOF)

    x, g, pos = x0, 1.0, 0
    regime = ("up", "down", "range")[int(rng.integers(3))]
    while pos < n:
        low, high = _DURATION_HOURS[regime]
        length = max(1, round(rng.uniform(low, high) * 60 / m))
        drift = _segment_drift(rng, regime, length, m)[: n - pos]
        shocks = rng.standard_t(_T_DOF, drift.size) * t_scale
        scale = base * _VOL_MULT[regime]
        mean_reverting = regime == "range"
        anchor = x
        for i, (d, z) in enumerate(zip(drift.tolist(), shocks.tolist(), strict=True)):
            sd = scale * math.sqrt(g)
            x += d + sd * z - (pull * (x - anchor) if mean_reverting else 0.0)
            log_close[pos + i] = x
            sigma[pos + i] = sd
            g = min(omega + alpha * g * z * z + beta * g, _MAX_VARIANCE_MULT)
        codes[pos : pos + drift.size] = REGIMES.index(regime)
        pos += drift.size
        if regime == "crash":
            g = max(g, _AFTERSHOCK)
        regime = _next_regime(rng, regime, x - x0)
    return codes, log_close, sigma
