"""Reconcile the database with the exchange (``jiritsu reconcile``; the trade loop does the same
at start)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jiritsu.exchange.reconcile import ReconcileReport
    from jiritsu.runtime import Runtime


def reconcile(rt: Runtime, *, bot: str | None = None) -> ReconcileReport:
    """Orders, fills and positions of every enabled bot (or ``bot``) brought in line; a bot a
    running trade loop holds is skipped (the loop reconciles it itself)."""
    from jiritsu.exchange.reconcile import bot_accounts
    from jiritsu.exchange.reconcile import reconcile as run

    return run(
        rt.db, rt.exchange, bot_accounts(rt.settings, bot), environment=rt.environment,
        notifier=rt.notifier, clock=rt.clock, data_dir=rt.settings.general.data_dir,
    )  # fmt: skip
