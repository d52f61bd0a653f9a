"""Import candle files (CSV, CSV.gz, Parquet) into the canonical frame, validating every row.

A wrong bar in a backtest's input silently moves every metric, so a file is imported whole or
not at all: each bad row is reported with its line number and a reason, and only an explicit
``skip_bad`` keeps the good rows. All checks are vectorised polars expressions; a year of
1-minute bars (about 520,000 rows) imports in well under a second.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from jiritsu.errors import UsageError
from jiritsu.market.frames import (
    CANDLE_COLUMNS,
    CANDLE_SCHEMA,
    MINUTE_MS,
    PRICE_COLUMNS,
    validate_frame,
)

VALUE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
MAX_LISTED_BAD_ROWS = 10

# Plausible bar times: a ts outside 2000..2100 is almost always seconds (or microseconds)
# where milliseconds were meant, which would otherwise import as 1970 (or the far future).
TS_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
TS_MAX_MS = 4_102_444_800_000  # 2100-01-01T00:00:00Z (exclusive)

# ISO-8601 after normalisation (upper case, "T" separator, explicit numeric offset).
_ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z")
_OFFSET_RE = r"[+-]\d{2}:?\d{2}$"
_INT_PATTERN = r"^[+-]?\d+$"


@dataclass(frozen=True, slots=True)
class BadRow:
    """A rejected row. ``line`` is the 1-based line in a CSV file (the header is line 1, so the
    first data row is line 2) and the 1-based row number in a Parquet file."""

    line: int
    reason: str


@dataclass(frozen=True)
class ImportResult:
    """What a file yielded: the canonical frame of good rows, the bad rows (only non-empty with
    ``skip_bad``), how many exact duplicate rows were dropped, and where it came from."""

    frame: pl.DataFrame
    bad_rows: list[BadRow] = field(default_factory=list)
    duplicates_dropped: int = 0
    source: Path = field(default_factory=Path)


class CandleFileError(UsageError):
    """A candle file cannot be imported; ``bad_rows`` lists the rejected rows, if that was why."""

    def __init__(
        self, message: str, *, path: Path | None = None, bad_rows: list[BadRow] | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.bad_rows: list[BadRow] = list(bad_rows or [])


def read_candle_file(
    path: Path, *, skip_bad: bool = False, bar_ms: int = MINUTE_MS, offset_ms: int = 0
) -> ImportResult:
    """Read and validate a candle file with columns ``ts,open,high,low,close,volume``.

    ``ts`` is the bar open, either integer epoch milliseconds or ISO-8601 text (``Z`` or an
    offset; no offset means UTC); which one is decided per file by what most rows use. A row is
    bad when a field is missing or not a number, a value is NaN/inf, a price is not positive, the
    volume is negative, high < max(open, close) or low > min(open, close), its ts is not a bar
    open of the interval (``ts - offset_ms`` a multiple of ``bar_ms``; 1 minute by default), is
    out of order, or repeats a ts with different values. Exact duplicate rows are dropped and
    counted. Blank lines are ignored.

    Without ``skip_bad`` any bad row raises :class:`CandleFileError` (nothing is imported);
    with it the good rows are returned together with the bad ones.
    """
    path = Path(path)
    kind = _file_kind(path)
    if not path.exists():
        raise CandleFileError(f"{path}: no such file", path=path)
    if not path.is_file():
        raise CandleFileError(f"{path}: not a file", path=path)
    if path.stat().st_size == 0:
        raise CandleFileError(f"{path}: the file is empty", path=path)

    raw = _read_parquet(path) if kind == "parquet" else _read_csv(path)
    if raw.height == 0:
        raise CandleFileError(f"{path}: the file has no data rows", path=path)
    unit = "row" if kind == "parquet" else "line"

    parsed = _parse(raw, path)
    ok, value_bad = _check_values(parsed, bar_ms, offset_ms)
    ok, conflict_bad, dropped = _dedupe(ok, unit)
    ok, order_bad = _order(ok, unit)

    bad_frame = pl.concat(
        [
            value_bad.select("line", "reason"),
            conflict_bad.select("line", "reason"),
            order_bad.select("line", "reason"),
        ]
    ).sort("line")
    bad_rows = [BadRow(int(line), str(reason)) for line, reason in bad_frame.iter_rows()]
    if bad_rows and not skip_bad:
        raise CandleFileError(_bad_message(path, bad_rows, unit), path=path, bad_rows=bad_rows)

    frame = ok.select(CANDLE_COLUMNS).cast(CANDLE_SCHEMA)
    validate_frame(frame)
    return ImportResult(frame=frame, bad_rows=bad_rows, duplicates_dropped=dropped, source=path)


# --- reading -------------------------------------------------------------------------------


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    raise CandleFileError(
        f"{path}: unknown file type; expected .csv, .csv.gz or .parquet", path=path
    )


def _header_map(names: list[str], path: Path, where: str) -> list[str]:
    """Check the column names (any order, any case) and return them normalised."""
    wanted = set(CANDLE_COLUMNS)
    seen = [n.lstrip("\ufeff").strip().strip('"').strip().lower() for n in names]
    expected = ",".join(CANDLE_COLUMNS)
    if seen and all(_looks_numeric(n) for n in seen):
        raise CandleFileError(f"{path}: {where} has no header; expected {expected}", path=path)
    repeated = sorted({n for n in seen if seen.count(n) > 1})
    missing = [c for c in CANDLE_COLUMNS if c not in seen]
    extra = [n for n in seen if n not in wanted]
    if repeated or missing or extra:
        problems = []
        if missing:
            problems.append("missing " + ", ".join(missing))
        if extra:
            problems.append("unexpected " + ", ".join(repr(n) for n in extra))
        if repeated:
            problems.append("repeated " + ", ".join(repeated))
        raise CandleFileError(
            f"{path}: wrong columns ({'; '.join(problems)}); expected exactly {expected}",
            path=path,
        )
    return seen


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_csv(path: Path) -> pl.DataFrame:
    """One string column per candle column plus ``line``; blank lines dropped.

    Each physical line is read as one field (a separator that never occurs in text, no quoting),
    so a row's position is its line number even when rows are ragged, and polars still does the
    (gzip-aware) reading at native speed.
    """
    try:
        lines = pl.read_csv(
            path,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            infer_schema=False,
            new_columns=["text"],
            encoding="utf8-lossy",
        )
    except pl.exceptions.NoDataError as exc:
        raise CandleFileError(f"{path}: the file is empty", path=path) from exc
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise CandleFileError(f"{path}: cannot read as CSV: {exc}", path=path) from exc
    if lines.width != 1:
        raise CandleFileError(f"{path}: line 1 contains a control character", path=path)
    header = lines["text"][0] if lines.height else None
    if header is None or not header.strip():
        raise CandleFileError(
            f"{path}: line 1 must be the header {','.join(CANDLE_COLUMNS)}", path=path
        )
    names = _header_map(header.split(","), path, "line 1")
    width = len(names)

    text = pl.col("text")
    data = (
        lines.with_row_index("line", offset=1)
        .slice(1)
        .with_columns(pl.col("line").cast(pl.Int64))
        .filter(text.is_not_null() & ~text.str.contains(r"^\s*$"))
    )
    # stripping costs a pass per column, so only files with padding or quotes pay for it
    padded = bool(
        data.select(
            pl.any_horizontal(text.str.contains(ch, literal=True).any() for ch in ' \t"')
        ).item()
    )
    found = text.str.count_matches(",", literal=True) + 1
    split = data.with_columns(
        pl.when(found != width)
        .then(pl.format("expected {} comma-separated fields, found {}", pl.lit(width), found))
        .alias("shape_error"),
        text.str.split_exact(",", width - 1),
    ).unnest("text")
    renames = {f"field_{i}": name for i, name in enumerate(names)}
    split = split.rename(renames)
    if padded:
        split = split.with_columns(pl.col(names).str.strip_chars(' \t"'))
    return split.select("line", "shape_error", *CANDLE_COLUMNS)


def _read_parquet(path: Path) -> pl.DataFrame:
    try:
        df = pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise CandleFileError(f"{path}: cannot read as Parquet: {exc}", path=path) from exc
    names = _header_map(list(df.columns), path, "the file")
    df = df.rename(dict(zip(df.columns, names, strict=True)))
    df = df.with_columns(pl.col(pl.String).str.strip_chars())
    return df.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("line"),
        pl.lit(None, dtype=pl.String).alias("shape_error"),
        *CANDLE_COLUMNS,
    )


# --- parsing and value checks --------------------------------------------------------------


def _ts_parse(raw: pl.DataFrame, path: Path) -> tuple[pl.Expr, pl.Expr]:
    """Expressions for the parsed ts (Int64 ms, null when unparseable) and the reason text."""
    dtype = raw.schema["ts"]
    col = pl.col("ts")
    shown = pl.col("raw_ts")
    if dtype == pl.String:
        # the file's convention is what most of its rows use, so one garbled first row cannot
        # turn a whole file of milliseconds into "not an ISO time" errors
        sample = raw.filter(pl.col("shape_error").is_null() & (col.str.len_chars() > 0))
        ints = int(sample["ts"].str.contains(_INT_PATTERN).sum()) if sample.height else 0
        if ints * 2 >= max(sample.height, 1):
            parsed = col.cast(pl.Int64, strict=False)
            return parsed, pl.format("ts '{}' is not integer epoch milliseconds", shown)
        text = col.str.to_uppercase().str.replace(" ", "T", literal=True).str.replace(r"Z$", "")
        text = pl.when(text.str.contains(_OFFSET_RE)).then(text).otherwise(text + "+00:00")
        candidates = [
            text.str.to_datetime(f, time_unit="ms", time_zone="UTC", strict=False)
            for f in _ISO_FORMATS
        ]
        parsed = pl.coalesce(candidates).dt.epoch("ms")
        return parsed, pl.format("ts '{}' is not an ISO-8601 time", shown)
    if dtype.is_integer():
        return col.cast(pl.Int64, strict=False), pl.format("ts {} does not fit in 64 bits", shown)
    if dtype.is_float():
        whole = col.is_finite() & (col == col.round(0))
        parsed = pl.when(whole).then(col.cast(pl.Int64, strict=False))
        return parsed, pl.format("ts {} is not whole epoch milliseconds", shown)
    if isinstance(dtype, pl.Datetime):
        stamps = col.dt.replace_time_zone("UTC") if dtype.time_zone is None else col
        return stamps.dt.epoch("ms"), pl.format("ts {} is not a time", shown)
    if dtype == pl.Date:
        return col.cast(pl.Datetime("ms")).dt.epoch("ms"), pl.format("ts {} is not a date", shown)
    raise CandleFileError(f"{path}: column ts has unsupported type {dtype}", path=path)


def _parse(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Typed columns next to their raw text (kept for messages) and parse-failure reasons."""
    raw = raw.with_columns(pl.col(c).cast(pl.String).alias(f"raw_{c}") for c in CANDLE_COLUMNS)
    ts_expr, ts_reason = _ts_parse(raw, path)
    exprs = [ts_expr.alias("ts")]
    for c in VALUE_COLUMNS:
        dtype = raw.schema[c]
        if dtype == pl.String or dtype.is_numeric():
            exprs.append(pl.col(c).cast(pl.Float64, strict=False).alias(c))
        else:
            raise CandleFileError(f"{path}: column {c} has unsupported type {dtype}", path=path)
    parsed = raw.with_columns(exprs)
    # parse failure = a value was there but did not convert; missing = nothing was there
    checks: list[tuple[pl.Expr, pl.Expr]] = []
    for c in CANDLE_COLUMNS:
        present = pl.col(f"raw_{c}").is_not_null() & (pl.col(f"raw_{c}") != "")
        checks.append((~present, pl.lit(f"{c} is missing")))
        unparsed = present & pl.col(c).is_null()
        reason = (
            ts_reason
            if c == "ts"
            else pl.format("{} '{}' is not a number", pl.lit(c), pl.col(f"raw_{c}"))
        )
        checks.append((unparsed, reason))
    return parsed.with_columns(_reasons(checks).alias("parse_error"))


def _reasons(checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.Expr:
    """All failing checks of a row joined with "; " (null when the row passes)."""
    return pl.concat_str(
        [pl.when(cond.fill_null(False)).then(reason) for cond, reason in checks],
        separator="; ",
        ignore_nulls=True,
    ).replace("", None)


def _check_values(
    parsed: pl.DataFrame, bar_ms: int, offset_ms: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into good ones and bad ones with a reason; reason strings are only built for
    the failing rows, which keeps a clean file fast."""
    finite = {c: pl.col(c).is_finite().fill_null(False) for c in VALUE_COLUMNS}
    positive = {c: finite[c] & (pl.col(c) > 0) for c in PRICE_COLUMNS}
    prices_ok = pl.all_horizontal(positive.values())
    top = pl.max_horizontal("open", "close")
    bottom = pl.min_horizontal("open", "close")
    checks: list[tuple[pl.Expr, pl.Expr]] = []
    ts = pl.col("ts")
    checks.append(
        (
            ts.is_not_null() & ((ts < TS_MIN_MS) | (ts >= TS_MAX_MS)),
            pl.format(
                "ts '{}' is outside 2000..2100 (seconds instead of milliseconds?)", pl.col("raw_ts")
            ),
        )
    )
    checks.append(
        (
            ts.is_not_null() & ((ts - offset_ms) % bar_ms != 0),
            pl.format(f"ts '{{}}' is not on the {bar_ms} ms bar grid", pl.col("raw_ts")),
        )
    )
    for c in VALUE_COLUMNS:
        checks.append(
            (pl.col(c).is_not_null() & ~finite[c], pl.format("{} is {}", pl.lit(c), pl.col(c)))
        )
    for c in PRICE_COLUMNS:
        checks.append(
            (
                finite[c] & (pl.col(c) <= 0),
                pl.format("{} {} is not positive", pl.lit(c), pl.col("raw_" + c)),
            )
        )
    checks.append(
        (
            finite["volume"] & (pl.col("volume") < 0),
            pl.format("volume {} is negative", pl.col("raw_volume")),
        )
    )
    checks.append(
        (
            prices_ok & (pl.col("high") < top),
            pl.format("high {} < max(open, close) {}", pl.col("high"), top),
        )
    )
    checks.append(
        (
            prices_ok & (pl.col("low") > bottom),
            pl.format("low {} > min(open, close) {}", pl.col("low"), bottom),
        )
    )
    failed = (
        pl.col("shape_error").is_not_null()
        | pl.col("parse_error").is_not_null()
        | pl.any_horizontal(cond.fill_null(False) for cond, _ in checks)
    )
    flagged = parsed.with_columns(failed.alias("failed"))
    keep = ["line", *CANDLE_COLUMNS, "raw_ts"]
    bad = flagged.filter("failed").select(
        "line",
        pl.coalesce(
            "shape_error",
            pl.concat_str(["parse_error", _reasons(checks)], separator="; ", ignore_nulls=True),
        ).alias("reason"),
    )
    return flagged.filter(~pl.col("failed")).select(keep), bad


# --- duplicates and order ------------------------------------------------------------------


def _dedupe(ok: pl.DataFrame, unit: str) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Drop exact repeats (keep the first); rows sharing a ts with different values are bad,
    every one of them, because nothing tells which is right."""
    steps = ok["ts"].diff().drop_nulls()
    if not (steps <= 0).any():
        return ok, ok.clear().select("line", pl.lit("").alias("reason")), 0
    repeated = ok["ts"].is_duplicated()
    if not repeated.any():
        return ok, ok.clear().select("line", pl.lit("").alias("reason")), 0
    dups = ok.filter(repeated)
    groups = dups.group_by("ts").agg(
        pl.struct(VALUE_COLUMNS).n_unique().alias("variants"),
        pl.len().alias("n"),
        pl.col("line").min().alias("first_line"),
        pl.col("line").sort().head(6).cast(pl.String).str.join(", ").alias("lines"),
    )
    conflicts = groups.filter(pl.col("variants") > 1)
    same = groups.filter(pl.col("variants") == 1)
    dropped = int((same["n"] - 1).sum()) if same.height else 0
    conflict_bad = dups.join(conflicts, on="ts").select(
        "line",
        pl.format(
            "ts '{}' is on {} {}s with different values ({}s {})",
            pl.col("raw_ts"),
            pl.col("n"),
            pl.lit(unit),
            pl.lit(unit),
            pl.when(pl.col("n") > 6).then(pl.col("lines") + ", ...").otherwise(pl.col("lines")),
        ).alias("reason"),
    )
    drop_lines = pl.concat(
        [
            conflict_bad.select("line"),
            dups.join(same, on="ts").filter(pl.col("line") != pl.col("first_line")).select("line"),
        ]
    )
    kept = ok.join(drop_lines, on="line", how="anti").sort("line")
    return kept, conflict_bad, dropped


def _increasing_keep(ts: np.ndarray) -> np.ndarray:
    """Mask of a longest strictly increasing subsequence: the fewest rows to call out of order.

    A row greater than every row before it and smaller than every row after it belongs to every
    longest run, so only the other rows go through the O(k log k) Python loop; a file with a few
    misplaced rows costs almost nothing.
    """
    n = ts.size
    keep = np.ones(n, dtype=bool)
    if n < 2:
        return keep
    before = np.maximum.accumulate(ts)
    after = np.minimum.accumulate(ts[::-1])[::-1]
    anchor = np.ones(n, dtype=bool)
    anchor[1:] &= ts[1:] > before[:-1]
    anchor[:-1] &= ts[:-1] < after[1:]
    rest = np.flatnonzero(~anchor)
    values = ts[rest].tolist()
    tails: list[int] = []
    tail_pos: list[int] = []
    parent = [-1] * len(values)
    for pos, value in enumerate(values):
        k = bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
            tail_pos.append(pos)
        else:
            tails[k] = value
            tail_pos[k] = pos
        parent[pos] = tail_pos[k - 1] if k else -1
    chosen = np.zeros(len(values), dtype=bool)
    pos = tail_pos[-1] if tail_pos else -1
    while pos >= 0:
        chosen[pos] = True
        pos = parent[pos]
    keep[rest] = chosen
    return keep


def _order(ok: pl.DataFrame, unit: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Keep the longest increasing run of ts; the other rows are out of order."""
    ts = ok["ts"].to_numpy()
    if ts.size < 2 or bool(np.all(np.diff(ts) > 0)):
        return ok, ok.clear().select("line", pl.lit("").alias("reason"))
    keep = pl.Series("keep", _increasing_keep(ts))
    marked = ok.with_columns(keep).with_columns(
        pl.when("keep").then(pl.col("ts")).alias("k_ts"),
        pl.when("keep").then(pl.col("line")).alias("k_line"),
        pl.when("keep").then(pl.col("raw_ts")).alias("k_raw"),
    )
    prev = [pl.col(c).forward_fill().shift(1).alias("p_" + c) for c in ("k_ts", "k_line", "k_raw")]
    nxt = [pl.col(c).backward_fill().shift(-1).alias("n_" + c) for c in ("k_ts", "k_line", "k_raw")]
    marked = marked.with_columns(*prev, *nxt)
    after_prev = pl.format(
        "out of order: ts '{}' is not after {} {} (ts '{}')",
        pl.col("raw_ts"),
        pl.lit(unit),
        pl.col("p_k_line"),
        pl.col("p_k_raw"),
    )
    before_next = pl.format(
        "out of order: ts '{}' is not before {} {} (ts '{}')",
        pl.col("raw_ts"),
        pl.lit(unit),
        pl.col("n_k_line"),
        pl.col("n_k_raw"),
    )
    order_bad = marked.filter(~pl.col("keep")).select(
        "line",
        pl.when(pl.col("p_k_ts").is_not_null() & (pl.col("ts") <= pl.col("p_k_ts")))
        .then(after_prev)
        .otherwise(before_next)
        .alias("reason"),
    )
    return ok.filter(keep), order_bad


def _bad_message(path: Path, bad_rows: list[BadRow], unit: str) -> str:
    n = len(bad_rows)
    lines = [f"{path}: {n:,} bad {unit}{'s' if n != 1 else ''}; nothing was imported"]
    lines += [f"  {unit} {b.line}: {b.reason}" for b in bad_rows[:MAX_LISTED_BAD_ROWS]]
    if n > MAX_LISTED_BAD_ROWS:
        lines.append(f"  ... and {n - MAX_LISTED_BAD_ROWS:,} more")
    lines.append("Fix the file, or skip the bad rows to import the rest.")
    return "\n".join(lines)
