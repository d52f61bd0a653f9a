"""Moved to :mod:`jiritsu.clock` (the clock sits below every layer now); this alias keeps the
imports of work in flight running until they follow."""

from jiritsu.clock import Clock, RealClock, SimClock, from_ms, to_ms

__all__ = ["Clock", "RealClock", "SimClock", "from_ms", "to_ms"]
