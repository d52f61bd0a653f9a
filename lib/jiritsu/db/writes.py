"""Counts of the writes this process made to a table, per database engine.

A reader whose database no other process writes (a simulation's) keeps what it read while the
count it read at stands still: the halt states (:func:`jiritsu.controls.writes`), the portfolio
snapshots (:func:`jiritsu.master.snapshot.writes`), the phase readings
(:func:`jiritsu.master.phase.writes`)."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class WriteCount:
    """How many writes this process made through each engine (an attempt counts)."""

    def __init__(self) -> None:
        self._counts: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()

    def __call__(self, engine: Engine) -> int:
        return self._counts.get(engine, 0)

    def add(self, engine: Engine) -> None:
        self._counts[engine] = self(engine) + 1
