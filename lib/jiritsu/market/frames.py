"""The canonical candle frame that every market-data function accepts and returns.

One layout (``ts`` Int64 epoch ms UTC of the bar OPEN, then open/high/low/close/volume as
Float64, sorted by ``ts`` with no repeats) means the importer, the synthetic generator, the cache,
the database loader and the backtester never convert between shapes, and a kernel can take
``ts``/``close`` as numpy arrays without copying.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from jiritsu.errors import JiritsuError, UsageError

CANDLE_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume")
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
CANDLE_SCHEMA: pl.Schema = pl.Schema(
    {
        "ts": pl.Int64,
        "open": pl.Float64,
        "high": pl.Float64,
        "low": pl.Float64,
        "close": pl.Float64,
        "volume": pl.Float64,
    }
)

MINUTE_MS = 60_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
# Bybit's weekly bars open on Monday 00:00 UTC; the epoch (1970-01-01) was a Thursday, so weekly
# buckets are shifted by four days from plain epoch multiples.
WEEK_OFFSET_MS = 4 * DAY_MS

# Bybit V5 kline intervals with a fixed length ("M" has none: months are 28..31 days).
INTERVALS: dict[str, int] = {
    "1": MINUTE_MS,
    "3": 3 * MINUTE_MS,
    "5": 5 * MINUTE_MS,
    "15": 15 * MINUTE_MS,
    "30": 30 * MINUTE_MS,
    "60": 60 * MINUTE_MS,
    "120": 120 * MINUTE_MS,
    "240": 240 * MINUTE_MS,
    "360": 360 * MINUTE_MS,
    "720": 720 * MINUTE_MS,
    "D": DAY_MS,
    "W": WEEK_MS,
}


class FrameError(JiritsuError, ValueError):
    """A frame handed to the market library is not a canonical candle frame (a bug, not input)."""


def normalize_interval(interval: str) -> str:
    """Return Bybit's spelling of an interval ("d" -> "D", " 60 " -> "60").

    Raises UsageError for "M" (no fixed length, so bars cannot be bucketed or gap-checked) and
    for anything that is not a Bybit interval.
    """
    text = str(interval).strip().upper()
    if text == "M":
        raise UsageError(
            "interval 'M' (monthly) has no fixed length; use one of " + ", ".join(INTERVALS)
        )
    if text not in INTERVALS:
        raise UsageError(f"unknown interval {interval!r}; use one of " + ", ".join(INTERVALS))
    return text


def interval_ms(interval: str) -> int:
    """Length of one bar of a Bybit interval string in milliseconds ("60" -> 3_600_000)."""
    return INTERVALS[normalize_interval(interval)]


def bucket_offset_ms(interval: str) -> int:
    """Where bars of this interval start relative to epoch multiples (weekly bars: Monday)."""
    return WEEK_OFFSET_MS if normalize_interval(interval) == "W" else 0


def empty_frame() -> pl.DataFrame:
    """A canonical frame with no rows (what a load of a range with no data returns)."""
    return pl.DataFrame(schema=CANDLE_SCHEMA)


def _check_schema(df: pl.DataFrame) -> None:
    if not isinstance(df, pl.DataFrame):
        raise FrameError(f"expected a polars DataFrame, got {type(df).__name__}")
    if df.schema != CANDLE_SCHEMA:
        got = ", ".join(f"{name}: {dtype}" for name, dtype in df.schema.items())
        want = ", ".join(f"{name}: {dtype}" for name, dtype in CANDLE_SCHEMA.items())
        raise FrameError(f"not a candle frame: columns are ({got}), expected ({want})")


def validate_frame(df: pl.DataFrame) -> None:
    """Raise FrameError unless ``df`` is canonical: exact columns and types, no nulls, ``ts``
    strictly increasing, prices finite and positive, volume finite and >= 0, and
    high >= max(open, close) >= min(open, close) >= low.

    Every writer calls this before storing, so a bad frame fails where it was made, not in a
    backtest months later.
    """
    _check_schema(df)
    if df.height == 0:
        return
    nulls = {name: n for name, n in zip(df.columns, df.null_count().row(0), strict=True) if n}
    if nulls:
        raise FrameError(f"candle frame has nulls: {nulls}")
    ts = df["ts"]
    steps = ts.diff().drop_nulls()
    if (steps <= 0).any():
        first = int((steps <= 0).arg_true()[0]) + 1
        raise FrameError(
            f"candle frame ts must be strictly increasing: row {first} has ts {ts[first]} "
            f"after {ts[first - 1]}"
        )
    price_ok = pl.all_horizontal(
        [pl.col(c).is_finite() & (pl.col(c) > 0) for c in PRICE_COLUMNS]
    ) & (pl.col("volume").is_finite() & (pl.col("volume") >= 0))
    ohlc_ok = (pl.col("high") >= pl.max_horizontal("open", "close")) & (
        pl.col("low") <= pl.min_horizontal("open", "close")
    )
    bad = df.with_row_index("row").filter(~(price_ok & ohlc_ok))
    if bad.height:
        sample = bad.row(0, named=True)
        raise FrameError(f"candle frame has {bad.height} inconsistent bar(s); first: {sample}")


def resample(df: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Aggregate finer bars (normally 1-minute) into ``interval`` bars.

    open = first, high = max, low = min, close = last, volume = sum. Bars open at UTC epoch
    multiples of the interval (weekly bars on Monday 00:00 UTC, as on Bybit). A bucket without
    source bars yields no row: a gap stays a gap instead of becoming an invented flat bar. The
    source interval must divide the target (1-minute bars always do).
    """
    validate_frame(df)
    step = interval_ms(interval)
    offset = bucket_offset_ms(interval)
    bucket = pl.col("ts") - (pl.col("ts") - offset) % step
    return (
        df.group_by(bucket.alias("ts"), maintain_order=True)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .select(CANDLE_COLUMNS)
    )


def to_numpy(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Columns of a candle frame as numpy arrays for numeric kernels: ``ts`` int64, the rest
    float64.

    The arrays are read-only views of the frame's memory when the frame is one chunk (a frame
    loaded from the cache is); copy an array before writing into it.
    """
    _check_schema(frame)
    if frame.n_chunks() > 1:
        frame = frame.rechunk()
    return {name: frame[name].to_numpy() for name in CANDLE_COLUMNS}
