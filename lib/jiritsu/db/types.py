"""Column types that behave the same on SQLite and PostgreSQL.

Real money rides on these columns, so the types refuse the two classic silent losses:

``Money`` (money and quantities, always :class:`~decimal.Decimal`)
    PostgreSQL stores ``NUMERIC(38, 18)``. SQLite has no decimal type: a column with NUMERIC
    affinity converts ``'0.000000012345678901'`` to a float (15 significant digits), so on SQLite
    the value is stored as canonical decimal TEXT (``VARCHAR(40)``, TEXT affinity: never
    converted), e.g. ``'65432.1'``, ``'-0.000000012345678901'``. The text is exact and reads well
    in Datasette; numeric ordering or range filters in raw SQLite SQL need
    ``CAST(col AS REAL)`` (``SUM()`` converts by itself). Through SQLAlchemy, comparisons bind the
    same canonical text, so use Python-side comparison or ``CAST`` for ranges on SQLite, and
    sum money in Python (``func.sum`` on SQLite returns a float).

    On write the value must be a ``Decimal``, ``int`` or decimal ``str``; ``float`` is refused
    (``TypeError``) because it is already inexact. It is rounded half-even to 18 decimal places
    (what ``NUMERIC(38, 18)`` does) and must be finite with fewer than 21 integer digits
    (``ValueError``), so both backends accept and return exactly the same values. On read both
    backends return the same canonical ``Decimal`` (trailing zeros stripped; render it with
    ``format(d, "f")``, as ``str()`` uses exponent notation below 1e-6).

``UTCDateTime`` (every timestamp)
    Naive datetimes are refused on write (``ValueError``); aware ones are converted to UTC.
    PostgreSQL stores ``TIMESTAMP WITH TIME ZONE``; SQLite stores fixed-width ISO-8601 text
    ``'2026-01-01 00:00:00.000000+00:00'`` (``VARCHAR(32)``) that sorts chronologically and
    that SQLite's date functions and Datasette understand. Reads return aware UTC datetimes.

``JSONDoc`` (details, params, metrics)
    ``JSON`` on SQLite, ``JSONB`` on PostgreSQL; Python ``None`` is SQL NULL.

Changing how any of these types stores values needs a migration: 0001 uses them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeEngine

MONEY_PRECISION = 38
MONEY_SCALE = 18
_MAX_INT_DIGITS = MONEY_PRECISION - MONEY_SCALE
_LIMIT = Decimal(10) ** _MAX_INT_DIGITS
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
_CTX = Context(prec=MONEY_PRECISION + 20, rounding=ROUND_HALF_EVEN)
_SQLITE_TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f+00:00"


def to_decimal(value: Decimal | int | str) -> Decimal:
    """Validate and canonicalise a money value exactly as the ``Money`` column stores it."""
    if isinstance(value, bool) or isinstance(value, float):
        raise TypeError(f"money values must be Decimal, int or str, not {type(value).__name__}")
    if isinstance(value, Decimal):
        dec = value
    elif isinstance(value, (int, str)):
        try:
            dec = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    else:
        raise TypeError(f"money values must be Decimal, int or str, not {type(value).__name__}")
    if not dec.is_finite():
        raise ValueError(f"money value must be finite, got {dec}")
    dec = dec.quantize(_QUANTUM, context=_CTX)
    if dec.copy_abs() >= _LIMIT:  # abs() would round to the default 28 digits
        raise ValueError(f"money value {dec} has more than {_MAX_INT_DIGITS} integer digits")
    return _canonical(dec)


def _canonical(dec: Decimal) -> Decimal:
    """Strip trailing zeros, but keep integers integral (Decimal('10'), not Decimal('1E+1'))."""
    if dec.is_zero():
        return Decimal(0)
    dec = dec.normalize(_CTX)
    exponent = dec.as_tuple().exponent  # a letter for NaN and infinity
    if isinstance(exponent, int) and exponent > 0:
        dec = dec.quantize(Decimal(1), context=_CTX)
    return dec


_TEXT_CACHE = 1 << 16  # distinct stored texts remembered per type (~10 MB at most)


@lru_cache(maxsize=_TEXT_CACHE)
def _money_from_text(text: str) -> Decimal:
    """A stored money text as its canonical Decimal. Cached because a run reads the same
    balances, prices and quantities over and over, and the value depends on the text alone
    (a Decimal is immutable, so one instance can serve every reader)."""
    return _canonical(Decimal(text))


class Money(sa.types.TypeDecorator[Decimal]):
    """Exact decimal: NUMERIC(38, 18) on PostgreSQL, canonical decimal text on SQLite."""

    impl = sa.Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(40))
        return dialect.type_descriptor(sa.Numeric(MONEY_PRECISION, MONEY_SCALE, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        dec = to_decimal(value)
        if dialect.name == "sqlite":
            return format(dec, "f")
        return dec

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite
            return _money_from_text(value)
        if isinstance(value, float):  # a row written by something other than this type
            return _money_from_text(repr(value))
        return _canonical(Decimal(value))

    @property
    def python_type(self) -> type[Decimal]:
        return Decimal


def utc_now() -> datetime:
    """The wall clock (:func:`jiritsu.clock.wall_now`): the default of the timestamp columns,
    for a row whose writer has no clock of its own to stamp it with (a test's hand-made row, an
    installation fact). Everything a job records is stamped from the runtime's clock."""
    from jiritsu.clock import wall_now

    return wall_now()


def _to_utc(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime refused (attach a timezone, e.g. UTC): {value!r}")
    return value.astimezone(timezone.utc)


@lru_cache(maxsize=_TEXT_CACHE)
def _time_from_text(value: str) -> datetime:
    """A stored timestamp text as an aware UTC datetime (cached like :func:`_money_from_text`:
    a datetime is immutable and the text alone decides it)."""
    text = value.strip().replace("T", " ", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    return _aware_utc(datetime.fromisoformat(text))


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None:  # e.g. SQLite CURRENT_TIMESTAMP, which is UTC
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps; naive datetimes are an error, never guessed."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.String(32))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        utc = _to_utc(value)
        if dialect.name == "sqlite":
            return utc.strftime(_SQLITE_TS_FORMAT)
        return utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite
            return _time_from_text(value)
        return _aware_utc(value)

    @property
    def python_type(self) -> type[datetime]:
        return datetime


class JSONDoc(sa.types.TypeDecorator[Any]):
    """JSON document: JSON on SQLite, JSONB on PostgreSQL; ``None`` is stored as SQL NULL."""

    impl = sa.JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB(none_as_null=True))
        return dialect.type_descriptor(sa.JSON(none_as_null=True))
