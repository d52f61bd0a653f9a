"""``jiritsu fetch-news``: fetch feeds, store and score new items; ``--show`` prints the latest.

Exit codes: 0 when the run completed (sources that failed are WARNING events), 1 when every
source failed, 3 when the database is unreachable.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from jiritsu_cli.common import console, handle_errors, state

if TYPE_CHECKING:
    from jiritsu.news.sentiment import ScoreRow, SentimentAverage
    from jiritsu.news.service import NewsRunReport


@handle_errors
def fetch_news(
    ctx: typer.Context,
    show: Annotated[
        bool, typer.Option("--show", help="Print the latest scores and the average; no fetching.")
    ] = False,
    sources: Annotated[
        list[str] | None,
        typer.Option(
            "--source",
            "-s",
            help="Fetch only this feed URL or file (repeatable) instead of the configured ones.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows for --show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Fetch news feeds and score their sentiment."""
    from jiritsu.db.migrate import open_database

    loaded = state(ctx).loaded()
    settings = loaded.settings
    with open_database(loaded) as engine:
        if show:
            _show(engine, settings, limit, as_json)
            return
        report = _run(loaded, engine, sources)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), default=str, indent=2))
    else:
        _render(report)
    if report.exit_code:
        raise typer.Exit(int(report.exit_code))


def _run(loaded: Any, engine: Any, sources: list[str] | None) -> NewsRunReport:
    from jiritsu.news.service import fetch_news as run_job
    from jiritsu.notify import build_notifier

    notifications = loaded.settings.notifications
    notifier = build_notifier(
        loaded.secrets.discord_webhook(),
        enabled=notifications.enabled,
        timeout=notifications.timeout_seconds,
        username=notifications.username,
        min_level=notifications.min_level,
    )
    return run_job(loaded, engine, sources=sources or None, notifier=notifier)


def _average_text(avg: SentimentAverage) -> str:
    if avg.value is None:
        return f"average: n/a (no scored item in the last {avg.period_hours} h)"
    return f"average: {avg.value:+.3f} over {avg.count} item(s) in the last {avg.period_hours} h"


def _render(report: NewsRunReport) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    if report.disabled:
        out.print("news sentiment is disabled (news_sentiment.enabled = false)", markup=False)
        return
    table = Table(title="News sources", title_justify="left")
    for col in ("source", "fetched", "matched", "new", "scored", "errors"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for src in report.sources:
        table.add_row(
            escape(src.label),
            str(src.fetched),
            str(src.matched),
            str(src.new),
            str(src.scored),
            f"[red]{src.errors}[/]" if src.errors else "0",
        )
    out.print(table)
    for src in report.sources:
        if src.error:
            out.print(
                f"[yellow]warning:[/] {escape(src.label)}: {escape(src.error_kind or '')}: "
                f"{escape(src.error)}",
                markup=True,
            )
    out.print(
        f"scorer {report.scorer}: {report.scored} scored, {report.pending} waiting",
        markup=False,
    )
    if report.scoring_error:
        out.print(f"[yellow]warning:[/] scoring: {escape(report.scoring_error)}", markup=True)
    if report.average is not None:
        out.print(_average_text(report.average), markup=False)
    if report.all_sources_failed:
        out.print("[bold red]error:[/] every news source failed", markup=True)


def _show(engine: Any, settings: Any, limit: int, as_json: bool) -> None:
    from jiritsu.clock import wall_now
    from jiritsu.news.sentiment import latest_scores, sentiment_average

    now = wall_now()
    rows = latest_scores(engine, limit=limit)
    avg = sentiment_average(
        engine, now=now, period_hours=settings.news_sentiment.moving_average_period_hours
    )
    if as_json:
        payload = {"average": avg.as_dict(), "latest": [_row_dict(r) for r in rows]}
        typer.echo(json.dumps(payload, default=str, indent=2))
        return
    _render_rows(rows, avg)


def _row_dict(row: ScoreRow) -> dict[str, Any]:
    return {
        "time": row.timestamp.isoformat(),
        "source": row.source,
        "keyword": row.keyword,
        "score": row.score,
        "label": row.label,
        "scorer": row.scorer,
        "model": row.model,
        "headline": row.headline,
    }


def _render_rows(rows: list[ScoreRow], avg: SentimentAverage) -> None:
    from rich.markup import escape
    from rich.table import Table

    out = console()
    table = Table(title="Latest news scores", title_justify="left")
    for col in ("time (UTC)", "source", "keyword", "score", "headline"):
        table.add_column(col, justify="right" if col == "score" else "left")
    for row in rows:
        score = "unscored" if row.score is None else f"{row.score:+.2f}"
        table.add_row(
            row.timestamp.strftime("%Y-%m-%d %H:%M"),
            escape(row.source),
            escape(row.keyword or ""),
            score,
            escape(row.headline),
        )
    if rows:
        out.print(table)
    else:
        out.print("no news items stored yet: run `jiritsu fetch-news`", markup=False)
    out.print(_average_text(avg), markup=False)
