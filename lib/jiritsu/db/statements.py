"""Statements built once and reused.

On the one-row writes of a hot path (an event, an order row, a transfer row) building a
statement and its cache key cost about as much as running it, so the plain INSERT of each
table is built once per process."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Insert


@functools.cache
def insert_into(model: Any) -> Insert:
    """``INSERT INTO`` the table of ``model`` (a mapped class), built once."""
    import sqlalchemy as sa

    return sa.insert(model)
