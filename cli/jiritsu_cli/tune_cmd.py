"""``jiritsu tune``: the monthly walk-forward re-tuning (timer at ``optimizer.schedule``)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, progress_bar, state


@handle_errors
def tune(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask scheduler tcp://HOST:PORT (default: config)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", help="Local processes (0: all cores).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Re-tune the bots' parameters by walk-forward backtesting; apply winners that beat the
    current parameters out of sample."""
    from jiritsu.runtime import build_runtime
    from jiritsu.usecases.tune import tune as run
    from jiritsu_cli.backtest_cmd import open_engine

    loaded = state(ctx).loaded()
    with (
        open_engine(loaded) as engine,
        build_runtime(loaded, db=engine, require_keys=False) as rt,
        progress_bar("tuning", not as_json) as update,
    ):

        def progress(bot: str, done: int, total: int) -> None:
            update(done, total)

        report = run(rt, dry_run=dry_run, workers=workers, scheduler=scheduler, progress=progress)
    if report is None:
        console().print("optimizer.auto_tuning_enabled is false: nothing to do (try --dry-run)")
        return
    if as_json:
        typer.echo(json.dumps(_doc(report), indent=2, default=str))
        return
    out = console()
    for o in report.outcomes:
        verdict = "would apply" if dry_run and o.apply else "applied" if o.apply else "kept"
        out.print(f"[bold]{o.bot}[/]: {verdict} ({o.candidates} candidates, {o.eligible} eligible)")
        out.print(f"  {o.reason}", markup=False)
        if "current" in o.runs and o.runs["current"].portfolio:
            out.print(f"  assumed: {o.runs['current'].portfolio}", markup=False)
        for which in ("current", "best"):
            if which in o.runs:
                for note in o.runs[which].stopped_notes():
                    out.print(f"  breaker ({which} parameters): {note}", markup=False)
        label = "" if o.apply else "best candidate, not applied: "
        for k, (a, b) in o.changes().items():
            out.print(f"  {label}{k}: {a} -> {b}", markup=False)
    if not report.outcomes:
        out.print("optimizer.param_ranges names no enabled bot: nothing to tune")
    if report.applied:
        out.print(f"overlay: {report.overlay}\ngit: {report.git}\nreload: {report.reload}")
    elif dry_run:
        out.print("dry run: nothing written")


def _doc(report: Any) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "applied": report.applied,
        "overlay": report.overlay,
        "git": report.git,
        "reload": report.reload,
        "bots": [
            {
                "bot": o.bot,
                "apply": o.apply,
                "reason": o.reason,
                "current": {k: float(v) for k, v in o.current.items()},
                "best": {k: float(v) for k, v in (o.best or {}).items()},
                "current_out_of_sample": o.current_oos,
                "best_in_sample": o.best_is,
                "best_out_of_sample": o.best_oos,
                "improvement": o.improvement,
                "candidates": o.candidates,
                "eligible": o.eligible,
                "tuning_run_id": o.tuning_run_id,
                "portfolio": o.runs["current"].portfolio if "current" in o.runs else None,
                "breaker_trips": {
                    run: o.runs[run].stopped_notes() for run in ("current", "best") if run in o.runs
                },
            }
            for o in report.outcomes
        ],
    }
