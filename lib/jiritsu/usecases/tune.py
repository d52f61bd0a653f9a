"""The walk-forward re-tuning (``jiritsu tune``, monthly timer) on a runtime."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jiritsu.runtime import Runtime
    from jiritsu.tune import BotOutcome, TuneReport


def tune(
    rt: Runtime,
    *,
    dry_run: bool = False,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    outcomes: list[BotOutcome] | None = None,
) -> TuneReport | None:
    """Tune every bot of ``optimizer.param_ranges`` over the stored candles up to the runtime's
    "now" (a simulation's tuner never sees a candle of its future, and its overlay is not
    committed) and apply the winners unless ``dry_run``; None when auto-tuning is off and this
    is no dry run. ``outcomes``: computed ahead for this time and these settings (a
    simulation's worker, :mod:`jiritsu.simulate.ahead`), only recorded and applied here."""
    from jiritsu.runtime import OFFLINE_MODES
    from jiritsu.tune import run_tuning

    if not rt.settings.optimizer.auto_tuning_enabled and not dry_run:
        return None
    offline = rt.mode in OFFLINE_MODES
    return run_tuning(
        rt.loaded, rt.db, rt.market, dry_run=dry_run, workers=workers, scheduler=scheduler,
        notifier=None if dry_run else rt.notifier, progress=progress,
        clock=rt.clock, git=not offline, outcomes=outcomes,
    )  # fmt: skip
