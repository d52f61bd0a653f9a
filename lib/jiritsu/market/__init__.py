"""Market data for candles: symbols, the canonical frame, file import, gaps, a synthetic market
and the columnar cache.

Names are imported lazily (PEP 562), so ``import jiritsu.market`` costs nothing until a name is
used: timers start the CLI every minute and most commands never touch polars.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "KNOWN_QUOTES": "symbols",
    "normalize_symbol": "symbols",
    "split_symbol": "symbols",
    "CANDLE_COLUMNS": "frames",
    "CANDLE_SCHEMA": "frames",
    "INTERVALS": "frames",
    "FrameError": "frames",
    "empty_frame": "frames",
    "interval_ms": "frames",
    "normalize_interval": "frames",
    "resample": "frames",
    "to_numpy": "frames",
    "validate_frame": "frames",
    "BadRow": "importer",
    "CandleFileError": "importer",
    "ImportResult": "importer",
    "read_candle_file": "importer",
    "Gap": "gaps",
    "GapReport": "gaps",
    "find_gaps": "gaps",
    "DEFAULT_SEED": "synth",
    "REGIMES": "synth",
    "synth_candles": "synth",
    "synth_candles_with_regimes": "synth",
    "CacheEntry": "cache",
    "CandleCache": "cache",
    "WriteStats": "cache",
}

__all__ = [
    "CANDLE_COLUMNS",
    "CANDLE_SCHEMA",
    "DEFAULT_SEED",
    "INTERVALS",
    "KNOWN_QUOTES",
    "REGIMES",
    "BadRow",
    "CacheEntry",
    "CandleCache",
    "CandleFileError",
    "FrameError",
    "Gap",
    "GapReport",
    "ImportResult",
    "WriteStats",
    "empty_frame",
    "find_gaps",
    "interval_ms",
    "normalize_interval",
    "normalize_symbol",
    "read_candle_file",
    "resample",
    "split_symbol",
    "synth_candles",
    "synth_candles_with_regimes",
    "to_numpy",
    "validate_frame",
]

if TYPE_CHECKING:
    from jiritsu.market.cache import CacheEntry, CandleCache, WriteStats
    from jiritsu.market.frames import (
        CANDLE_COLUMNS,
        CANDLE_SCHEMA,
        INTERVALS,
        FrameError,
        empty_frame,
        interval_ms,
        normalize_interval,
        resample,
        to_numpy,
        validate_frame,
    )
    from jiritsu.market.gaps import Gap, GapReport, find_gaps
    from jiritsu.market.importer import BadRow, CandleFileError, ImportResult, read_candle_file
    from jiritsu.market.symbols import KNOWN_QUOTES, normalize_symbol, split_symbol
    from jiritsu.market.synth import (
        DEFAULT_SEED,
        REGIMES,
        synth_candles,
        synth_candles_with_regimes,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jiritsu.market' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"jiritsu.market.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
