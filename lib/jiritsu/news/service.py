"""The ``fetch-news`` job: fetch every source, store new items once, score, report.

One run:

1. each source (RSS/Atom URL or local file) is fetched and parsed on its own; a bad source
   (HTTP error, timeout, oversized, undecodable, malformed, missing file) becomes a WARNING
   event of type NEWS and the other sources still run;
2. keyword-matched items are inserted with ``INSERT ... ON CONFLICT (item_key) DO NOTHING``, so
   an item is stored once however often it is fetched and by however many processes at once;
   with ``use_page_text`` the article page is fetched for NEW items only;
3. every item still unscored (this run's and earlier runs') is scored by the configured scorer,
   newest first, at most :data:`MAX_SCORE_PER_RUN` per run. An item the scorer cannot score
   (Gemini gave no valid answer for it) keeps ``score`` NULL, counts an attempt and is retried
   by later runs up to :data:`MAX_SCORE_ATTEMPTS`; when the scorer stops (every key 429, Gemini
   down, budget spent) a WARNING event says so and the items wait for the next run untouched.

Exit-code policy (:attr:`NewsRunReport.exit_code`): 0 when the run completed, even if some
sources failed or scoring was postponed (those are WARNING events); 1 only when every source
failed; a database that stays unreachable raises ``DatabaseUnavailable`` (exit 3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from jiritsu.clock import wall_now
from jiritsu.errors import ExitCode
from jiritsu.events import EventType, record_event
from jiritsu.news.fetch import (
    FeedItem,
    FetchError,
    clip,
    fetch_feed,
    fetch_page_text,
    is_url,
    new_session,
    source_label,
    unique,
)
from jiritsu.news.scoring import LexiconScorer, Scorer, ScoreRequest
from jiritsu.news.sentiment import SentimentAverage, sentiment_average
from jiritsu.redact import redact

if TYPE_CHECKING:
    import requests
    from sqlalchemy.engine import Connection, Engine

    from jiritsu.ai.gemini import GeminiClient
    from jiritsu.config import LoadedConfig
    from jiritsu.config.news import NewsSentimentSettings
    from jiritsu.notify import Notifier

log = logging.getLogger("jiritsu.news")

MAX_SCORE_ATTEMPTS = 5
MAX_SCORE_PER_RUN = 200
RETRY_WINDOW = timedelta(days=7)  # items fetched longer ago than this are no longer retried
_DETAIL_ITEMS = 10


@dataclass
class SourceReport:
    """What one source gave in one run."""

    source: str
    label: str
    fetched: int = 0  # entries in the feed
    matched: int = 0  # entries mentioning a keyword
    new: int = 0  # of those, stored for the first time
    scored: int = 0  # items of this source scored in this run (earlier runs' included)
    error: str | None = None
    error_kind: str | None = None
    page_errors: int = 0  # article pages that could not be read (feed text used instead)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def errors(self) -> int:
        return (0 if self.ok else 1) + self.page_errors


@dataclass
class NewsRunReport:
    """The outcome of one ``fetch-news`` run."""

    started_at: datetime
    scorer: str | None
    sources: list[SourceReport] = field(default_factory=list)
    scored: int = 0
    unscored_failed: int = 0  # items the scorer answered badly (retried by later runs)
    pending: int = 0  # items still waiting for a score after this run
    scoring_error: str | None = None
    average: SentimentAverage | None = None
    disabled: bool = False

    @property
    def all_sources_failed(self) -> bool:
        return bool(self.sources) and all(not s.ok for s in self.sources)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.FAILURE if self.all_sources_failed else ExitCode.OK

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["average"] = self.average.as_dict() if self.average else None
        data["all_sources_failed"] = self.all_sources_failed
        data["exit_code"] = int(self.exit_code)
        for src, rep in zip(data["sources"], self.sources, strict=True):
            src["ok"] = rep.ok
            src["errors"] = rep.errors
        return data


# --------------------------------------------------------------------------- storing


def _insert_ignoring_duplicates(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping any whose item_key exists; returns how many were new."""
    from jiritsu.db.models import SentimentScore
    from jiritsu.db.upsert import conflict_insert

    table = SentimentScore.__table__
    new = 0
    for row in rows:
        stmt = (
            conflict_insert(conn.dialect.name, table)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["item_key"])
            .returning(table.c.id)  # a returned row means it was inserted (rowcount varies)
        )
        new += len(conn.execute(stmt).all())
    return new


def _known_keys(engine: Engine, keys: list[str]) -> set[str]:
    import sqlalchemy as sa

    from jiritsu.db.models import SentimentScore

    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found.update(
                conn.execute(
                    sa.select(SentimentScore.item_key).where(SentimentScore.item_key.in_(chunk))
                ).scalars()
            )
    return found


def _row(item: FeedItem, text: str, now: datetime) -> dict[str, Any]:
    return {
        "timestamp": item.published or now,
        "fetched_at": now,
        "source": source_label(item.feed),
        "feed_url": item.feed,
        "url": item.link,
        "guid": item.guid,
        "item_key": item.item_key,
        "keyword": clip(item.keyword, 64),
        "headline": item.headline,
        "content": text,
        "score_attempts": 0,
    }


def store_items(
    engine: Engine,
    items: Sequence[FeedItem],
    *,
    now: datetime,
    page_text: Callable[[FeedItem], str | None] | None = None,
) -> tuple[int, int]:
    """Store the items not stored yet; returns (new, page errors). Idempotent across runs."""
    from jiritsu.db.engine import retry_db

    if not items:
        return 0, 0
    known = retry_db(lambda: _known_keys(engine, [i.item_key for i in items]), what="news dedupe")
    rows = []
    page_errors = 0
    for item in items:
        if item.item_key in known:
            continue
        text = item.text
        if page_text is not None and item.link:
            page = page_text(item)
            if page is None:
                page_errors += 1
            elif page:
                text = f"{item.headline}. {page}"
        rows.append(_row(item, text, now))

    def insert() -> int:
        with engine.begin() as conn:
            return _insert_ignoring_duplicates(conn, rows)

    new = retry_db(insert, what="storing news items") if rows else 0
    return new, page_errors


# --------------------------------------------------------------------------- scoring


@dataclass
class _Pending:
    id: int
    feed: str | None
    headline: str
    request: ScoreRequest


def _pending(engine: Engine, now: datetime, limit: int) -> list[_Pending]:
    import sqlalchemy as sa

    from jiritsu.db.models import SentimentScore as S

    query = (
        sa.select(S.id, S.feed_url, S.headline, S.content, S.keyword)
        .where(
            S.score.is_(None),
            S.score_attempts < MAX_SCORE_ATTEMPTS,
            S.fetched_at >= now - RETRY_WINDOW,
        )
        .order_by(S.timestamp.desc(), S.id.desc())
        .limit(limit)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        _Pending(
            r.id, r.feed_url, r.headline, ScoreRequest(r.id, r.content or r.headline, r.keyword)
        )
        for r in rows
    ]


def _count_pending(engine: Engine, now: datetime) -> int:
    import sqlalchemy as sa

    from jiritsu.db.models import SentimentScore as S

    query = sa.select(sa.func.count()).where(
        S.score.is_(None), S.score_attempts < MAX_SCORE_ATTEMPTS, S.fetched_at >= now - RETRY_WINDOW
    )
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def _save_scores(
    engine: Engine, scorer: str, scores: dict[int, Any], failed: dict[int, str], now: datetime
) -> int:
    """Write scores (only onto rows still unscored) and failed attempts; returns rows scored."""
    import sqlalchemy as sa

    from jiritsu.db.models import SentimentScore as S

    written = 0
    with engine.begin() as conn:
        for item_id, item in scores.items():
            result = conn.execute(
                sa.update(S)
                .where(S.id == item_id, S.score.is_(None))
                .values(
                    score=item.score,
                    label=item.label,
                    scorer=scorer,
                    model=item.model,
                    scored_at=now,
                    score_error=None,
                )
            )
            written += max(0, result.rowcount or 0)
        for item_id, reason in failed.items():
            conn.execute(
                sa.update(S)
                .where(S.id == item_id, S.score.is_(None))
                .values(score_attempts=S.score_attempts + 1, score_error=reason[:1000])
            )
    return written


def score_pending(
    engine: Engine,
    scorer: Scorer | None,
    *,
    now: datetime,
    report: NewsRunReport,
    scorer_problem: str | None = None,
    notifier: Notifier | None = None,
    limit: int = MAX_SCORE_PER_RUN,
) -> None:
    """Score every item still unscored (newest first, bounded); results go into ``report``."""
    from jiritsu.db.engine import retry_db

    pending = retry_db(lambda: _pending(engine, now, limit), what="reading unscored news")
    if pending and scorer is None:
        report.scoring_error = scorer_problem or "no scorer available"
        record_event(
            engine,
            "WARNING",
            EventType.NEWS,
            f"news scoring skipped: {report.scoring_error}; {len(pending)} item(s) stay unscored",
            {"pending": len(pending)},
            notifier=notifier,
            now=now,
        )
    elif pending and scorer is not None:
        result = scorer.score([p.request for p in pending])
        by_id = {p.id: p for p in pending}
        written = retry_db(
            lambda: _save_scores(engine, scorer.name, result.scores, result.failed, now),
            what="saving news scores",
        )
        report.scored += written
        report.unscored_failed += len(result.failed)
        per_feed: dict[str | None, int] = {}
        for item_id in result.scores:
            feed = by_id[item_id].feed
            per_feed[feed] = per_feed.get(feed, 0) + 1
        for src in report.sources:
            src.scored = per_feed.get(src.source, 0)
        if result.failed or result.unknown_ids:
            examples = [
                {"id": i, "headline": by_id[i].headline[:100], "reason": why}
                for i, why in list(result.failed.items())[:_DETAIL_ITEMS]
            ]
            record_event(
                engine,
                "WARNING",
                EventType.NEWS,
                f"{scorer.name} gave no usable score for {len(result.failed)} item(s); they stay "
                "unscored and are retried by the next run",
                {"items": examples, "unknown_ids": result.unknown_ids},
                now=now,
            )
        if result.error:
            report.scoring_error = result.error
            left = len(pending) - len(result.scores) - len(result.failed)
            record_event(
                engine,
                "WARNING",
                EventType.NEWS,
                f"news scoring stopped ({scorer.name}): {result.error}; {left} item(s) stay "
                "unscored for the next run",
                {"scorer": scorer.name, "left": left},
                notifier=notifier,
                now=now,
            )
    report.pending = retry_db(lambda: _count_pending(engine, now), what="counting unscored news")


# --------------------------------------------------------------------------- the job


def run_fetch_news(
    engine: Engine,
    settings: NewsSentimentSettings,
    *,
    environment: str,
    scorer: Scorer | None,
    scorer_problem: str | None = None,
    sources: Sequence[str] | None = None,
    clock: Callable[[], datetime] = wall_now,  # the feeds are live: wall time
    notifier: Notifier | None = None,
    session: requests.Session | None = None,
) -> NewsRunReport:
    """One run over ``sources`` (default: the configured ones). Never raises for a bad source
    or a failing scorer; a database that stays unreachable raises ``DatabaseUnavailable``."""
    from jiritsu.errors import DatabaseUnavailable

    now = clock()
    report = NewsRunReport(started_at=now, scorer=scorer.name if scorer else settings.scorer)
    chosen = unique(sources if sources is not None else settings.sources)
    if sources is None and not settings.enabled:
        report.disabled = True
        return report

    http = session or new_session()
    timeout = settings.request_timeout_seconds

    def page_text(item: FeedItem) -> str | None:
        try:
            return fetch_page_text(
                item.link or "",
                timeout=timeout,
                max_bytes=settings.max_bytes,
                max_chars=settings.max_text_chars,
                environment=environment,
                session=http,
            )
        except FetchError as exc:
            log.info("article page %s not used: %s", redact(item.link or ""), redact(str(exc)))
            return None

    try:
        for source in chosen:
            src = SourceReport(source=source, label=source_label(source))
            report.sources.append(src)
            try:
                fetched = fetch_feed(
                    source,
                    settings.keywords,
                    timeout=timeout,
                    max_bytes=settings.max_bytes,
                    max_text_chars=settings.max_text_chars,
                    environment=environment,
                    now=now,
                    session=http,
                )
                src.fetched, src.matched = fetched.entries, len(fetched.items)
                src.new, src.page_errors = store_items(
                    engine,
                    fetched.items,
                    now=now,
                    page_text=page_text if settings.use_page_text else None,
                )
            except FetchError as exc:
                src.error, src.error_kind = redact(str(exc)), exc.kind
            except DatabaseUnavailable:
                raise
            except Exception as exc:  # one bad source must not end the run
                log.exception("news source %s failed unexpectedly", redact(source))
                src.error = redact(f"{type(exc).__name__}: {exc}")[:500]
                src.error_kind = "unexpected"
            if src.error:
                record_event(
                    engine,
                    "WARNING",
                    EventType.NEWS,
                    f"news source {src.label} failed ({src.error_kind}): {src.error}",
                    {"source": source, "kind": src.error_kind},
                    now=now,
                )
    finally:
        if session is None:
            http.close()

    if report.all_sources_failed:
        record_event(
            engine,
            "ERROR",
            EventType.NEWS,
            f"every news source failed ({len(report.sources)}); no news was fetched",
            {"sources": [s.source for s in report.sources]},
            notifier=notifier,
            now=now,
        )

    score_pending(
        engine, scorer, now=now, report=report, scorer_problem=scorer_problem, notifier=notifier
    )
    report.average = sentiment_average(
        engine, now=now, period_hours=settings.moving_average_period_hours
    )
    log.info(
        "fetch-news: %d source(s), %d failed, %d new item(s), %d scored, %d pending; "
        "average %s over %d h (%d item(s))",
        len(report.sources),
        sum(1 for s in report.sources if not s.ok),
        sum(s.new for s in report.sources),
        report.scored,
        report.pending,
        "n/a" if report.average.value is None else f"{report.average.value:+.3f}",
        report.average.period_hours,
        report.average.count,
    )
    return report


def build_scorer(
    loaded: LoadedConfig, engine: Engine
) -> tuple[Scorer | None, str | None, GeminiClient | None]:
    """(scorer, why there is none, Gemini client to close) for ``news_sentiment.scorer``.

    ``gemini`` without keys gives no scorer (items wait unscored, WARNING), never a silent
    switch to the lexicon: mixing scorers would change what the average means.
    """
    from jiritsu.ai.gemini import build_gemini_client
    from jiritsu.news.scoring import GeminiScorer

    if loaded.settings.news_sentiment.scorer == "lexicon":
        return LexiconScorer(), None, None
    client = build_gemini_client(loaded, engine)
    if client is None:
        env = loaded.settings.api_keys.gemini_keys_env
        return None, f"scorer is gemini but no Gemini API key is set ({env})", None
    return GeminiScorer(client), None, client


def fetch_news(
    loaded: LoadedConfig,
    engine: Engine,
    *,
    sources: Sequence[str] | None = None,
    notifier: Notifier | None = None,
    clock: Callable[[], datetime] = wall_now,  # the feeds are live: wall time
) -> NewsRunReport:
    """The job as the CLI runs it: scorer from the configuration, one run, client closed."""
    settings = loaded.settings
    chosen = None
    if sources:
        from pathlib import Path

        from jiritsu.config.base import resolve_path

        chosen = [s if is_url(s) else str(resolve_path(s, Path.cwd())) for s in sources]
    scorer, problem, client = build_scorer(loaded, engine)
    try:
        return run_fetch_news(
            engine,
            settings.news_sentiment,
            environment=settings.general.environment,
            scorer=scorer,
            scorer_problem=problem,
            sources=chosen,
            clock=clock,
            notifier=notifier,
        )
    finally:
        if client is not None:
            client.close()
