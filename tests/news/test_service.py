"""The fetch-news job end to end with the lexicon scorer, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu.db.models import SentimentScore, SystemEvent
from jiritsu.errors import ExitCode
from jiritsu.news.fetch import fetch_feed
from jiritsu.news.lexicon import LEXICON_VERSION
from jiritsu.news.scoring import LexiconScorer
from jiritsu.news.service import run_fetch_news, store_items
from tests.fakes.feeds import FeedServer
from tests.news.conftest import FIXTURES, KEYWORDS, NOW, MakeSettings, headlines, rss


def _run(engine: Engine, settings, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("environment", "paper")
    kwargs.setdefault("scorer", LexiconScorer())
    kwargs.setdefault("clock", lambda: NOW)
    return run_fetch_news(engine, settings, **kwargs)


def _rows(engine: Engine) -> list[SentimentScore]:
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        return list(session.scalars(sa.select(SentimentScore).order_by(SentimentScore.timestamp)))


def _events(engine: Engine, level: str | None = None) -> list[SystemEvent]:
    from sqlalchemy.orm import Session

    query = sa.select(SystemEvent).where(SystemEvent.event_type == "NEWS").order_by(SystemEvent.id)
    if level:
        query = query.where(SystemEvent.level == level)
    with Session(engine) as session:
        return list(session.scalars(query))


def test_rss_and_atom_items_are_stored_and_scored(
    engine: Engine, server: FeedServer, make_settings: MakeSettings
) -> None:
    rss_url = server.serve("/rss", (FIXTURES / "market_rss.xml").read_bytes())
    atom_url = server.serve("/atom", (FIXTURES / "market_atom.xml").read_bytes())
    report = _run(engine, make_settings([rss_url, atom_url]))

    assert report.exit_code == ExitCode.OK
    by_source = {s.source: s for s in report.sources}
    rss_report, atom_report = by_source[rss_url], by_source[atom_url]
    assert (rss_report.fetched, rss_report.matched, rss_report.new, rss_report.scored) == (
        5,
        3,
        3,
        3,
    )
    assert (atom_report.fetched, atom_report.matched, atom_report.new) == (3, 2, 2)
    assert report.scored == 5
    assert report.pending == 0

    rows = {r.headline: r for r in _rows(engine)}
    assert len(rows) == 5
    rally = rows["Bitcoin, Ether rally as ETF approval lifts the crypto market"]
    assert rally.keyword == "bitcoin"
    assert rally.feed_url == rss_url
    assert rally.source == f"127.0.0.1{'/rss'}"
    assert rally.url == "https://news.example.test/markets/2026/03/01/bitcoin-rally"
    assert rally.guid == "wire-0001"
    assert rally.timestamp == datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
    assert rally.fetched_at == NOW
    assert (rally.scorer, rally.model) == ("lexicon", LEXICON_VERSION)
    assert rally.score is not None
    assert rally.score > 0
    assert rally.label == "positive"
    assert rally.scored_at == NOW
    hack = rows["Exchange hacked: $40M stolen in overnight exploit"]
    assert hack.keyword == "btc"
    assert hack.score is not None
    assert hack.score < 0
    lender = rows["Crypto lender files for bankruptcy as withdrawals collapse"]
    assert lender.timestamp == datetime(2026, 2, 28, 23, 15, tzinfo=timezone.utc)
    assert lender.score is not None
    assert lender.score < 0
    assert _events(engine, "WARNING") == []
    # the average of the five stored scores, all inside the 24 h window before NOW
    scores = [r.score for r in rows.values()]
    assert report.average is not None
    assert report.average.count == 5
    assert report.average.value == sum(scores) / 5  # type: ignore[arg-type]


def test_a_second_run_stores_nothing_new(
    engine: Engine, server: FeedServer, make_settings: MakeSettings
) -> None:
    url = server.serve("/rss", (FIXTURES / "market_rss.xml").read_bytes())
    settings = make_settings([url])
    first = _run(engine, settings)
    second = _run(engine, settings, clock=lambda: NOW + timedelta(minutes=15))
    assert first.sources[0].new == 3
    assert (second.sources[0].matched, second.sources[0].new) == (3, 0)
    assert second.scored == 0
    assert len(_rows(engine)) == 3
    # the feed grows by one item: only that one is new
    server.serve("/rss", rss([*headlines(1, "Bitcoin fresh")]))
    third = _run(engine, settings)
    assert third.sources[0].new == 1
    assert len(_rows(engine)) == 4


def test_concurrent_runs_store_each_item_once(engine: Engine, tmp_path: Path) -> None:
    """The unique item_key, not a memory, dedupes: racing writers never fail or duplicate."""
    path = tmp_path / "feed.xml"
    path.write_text(rss(headlines(30)), encoding="utf-8")
    items = fetch_feed(
        str(path), KEYWORDS, timeout=5, max_bytes=10**6, max_text_chars=500,
        environment="paper", now=NOW,
    ).items  # fmt: skip
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        try:
            results.append(store_items(engine, items, now=NOW)[0])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sum(results) == 30
    assert len(_rows(engine)) == 30


def test_each_bad_feed_is_a_warning_and_the_other_sources_still_store(
    engine: Engine, server: FeedServer, make_settings: MakeSettings, tmp_path: Path
) -> None:
    good = server.serve("/good", (FIXTURES / "market_rss.xml").read_bytes())
    local = tmp_path / "local.xml"
    local.write_text(rss(headlines(2, "Crypto local")), encoding="utf-8")
    bad = {
        "malformed": server.serve("/malformed", "<rss><channel><item><title>Bitcoin</rss>"),
        "http": server.serve_status("/e500", 500),
        "timeout": server.serve_delay("/slow", 20, rss(headlines(1))),
        "too_large": server.serve("/huge", rss(headlines(200, "Bitcoin " + "z" * 100))),
        "encoding": server.serve(
            "/latin1", rss(headlines(1, "Bitcoin café")).encode("latin-1"), content_type=None
        ),
        "not_found": str(tmp_path / "missing.xml"),
    }
    settings = make_settings(
        [good, *bad.values(), str(local)], request_timeout_seconds=0.5, max_bytes=8192
    )
    report = _run(engine, settings)

    assert report.exit_code == ExitCode.OK  # the run completed; failures are warnings
    kinds = {s.source: s.error_kind for s in report.sources}
    assert kinds == {good: None, str(local): None, **{url: kind for kind, url in bad.items()}}
    warnings = _events(engine, "WARNING")
    assert len(warnings) == len(bad)
    for event, (kind, url) in zip(warnings, bad.items(), strict=True):
        assert event.details == {"source": url, "kind": kind}
        assert f"({kind})" in event.message
    assert {r.headline for r in _rows(engine)} >= {"Crypto local 1", "Crypto local 2"}
    assert len(_rows(engine)) == 3 + 2
    assert _events(engine, "ERROR") == []


def test_every_source_failing_exits_1_with_an_error_event(
    engine: Engine, server: FeedServer, make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = make_settings([server.serve_status("/down", 503), str(tmp_path / "none.xml")])
    report = _run(engine, settings)
    assert report.all_sources_failed
    assert report.exit_code == ExitCode.FAILURE
    assert len(_events(engine, "WARNING")) == 2
    [error] = _events(engine, "ERROR")
    assert "every news source failed" in error.message


def test_page_text_is_fetched_once_for_new_items(
    sqlite_engine: Engine, server: FeedServer, make_settings: MakeSettings
) -> None:
    page = (
        "<html><body><article><p>Bitcoin buyers return and prices climb.</p></article>"
        "</body></html>"
    )
    page_url = server.serve("/story", page, content_type="text/html; charset=utf-8")
    feed = rss(
        [
            {"title": "Bitcoin update", "guid": "p1", "link": page_url},
            {"title": "Bitcoin gone", "guid": "p2", "link": server.url("/gone")},
        ]
    )
    url = server.serve("/feed", feed)
    settings = make_settings([url], use_page_text=True, max_text_chars=300)
    report = _run(sqlite_engine, settings)
    assert report.sources[0].page_errors == 1  # /gone is a 404: the feed text is used
    rows = {r.headline: r for r in _rows(sqlite_engine)}
    assert rows["Bitcoin update"].content == (
        "Bitcoin update. Bitcoin buyers return and prices climb."
    )
    assert rows["Bitcoin gone"].content == "Bitcoin gone"
    assert rows["Bitcoin update"].score is not None
    assert rows["Bitcoin update"].score > 0
    _run(sqlite_engine, settings)
    assert server.hits("/story") == 1  # not fetched again for a known item


def test_disabled_news_does_nothing(sqlite_engine: Engine, make_settings: MakeSettings) -> None:
    report = _run(sqlite_engine, make_settings(["/nonexistent.xml"], enabled=False))
    assert report.disabled
    assert report.sources == []
    assert report.exit_code == ExitCode.OK
