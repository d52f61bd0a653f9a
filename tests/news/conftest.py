"""Fixtures for the news tests: feeds served from loopback, settings, a migrated database."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest

from jiritsu.config.news import NewsSentimentSettings
from tests.fakes.feeds import FeedServer

FIXTURES = Path(__file__).parent / "fixtures"
KEYWORDS = ["bitcoin", "btc", "crypto", "ethereum"]
NOW = datetime(2026, 3, 1, 15, 0, tzinfo=timezone.utc)


def rss(items: Sequence[dict[str, Any]], *, encoding: str = "UTF-8") -> str:
    """A small RSS 2.0 document; each item: title, summary, guid, link, published (datetime)."""
    parts = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<rss version="2.0"><channel><title>t</title><link>https://x.test/</link>'
        "<description>d</description>",
    ]
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{escape(item['title'])}</title>")
        if item.get("summary"):
            parts.append(f"<description>{escape(item['summary'])}</description>")
        if item.get("link"):
            parts.append(f"<link>{escape(item['link'])}</link>")
        if item.get("guid"):
            parts.append(f'<guid isPermaLink="false">{escape(item["guid"])}</guid>')
        if item.get("published"):
            parts.append(f"<pubDate>{format_datetime(item['published'], usegmt=True)}</pubDate>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "\n".join(parts)


def headlines(n: int, prefix: str = "Bitcoin story", **extra: Any) -> list[dict[str, Any]]:
    return [
        {"title": f"{prefix} {i}", "guid": f"{prefix}-{i}", "published": NOW, **extra}
        for i in range(1, n + 1)
    ]


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as fake:
        yield fake


MakeSettings = Callable[..., NewsSentimentSettings]


@pytest.fixture
def make_settings() -> MakeSettings:
    def make(sources: Sequence[str], **overrides: Any) -> NewsSentimentSettings:
        data: dict[str, Any] = {
            "enabled": True,
            "keywords": KEYWORDS,
            "sources": list(sources),
            "scorer": "lexicon",
            "request_timeout_seconds": 5,
            "max_bytes": 200_000,
            "max_text_chars": 2000,
        }
        data.update(overrides)
        return NewsSentimentSettings.model_validate(data)

    return make
