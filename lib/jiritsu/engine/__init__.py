"""The trading engine: one sub-bot step (:mod:`.bot`), the trade loop and the one-shot tick
(:mod:`.loop`), circuit breakers (:mod:`.risk`), split-entry plans (:mod:`.plans`), the advisor's
snapshot (:mod:`.snapshot`), market data feeds (:mod:`.market`), flatten (:mod:`.flatten`) and
the per-bot performance summary (:mod:`.performance`). The position book and trade PnL live
with the journal (:mod:`jiritsu.exchange.book`): reconciliation prices the fills it adopts.

The trading logic itself lives in :mod:`jiritsu.strategy` (shared with the backtester); this
package reads the state, calls it and carries out its orders.
"""
