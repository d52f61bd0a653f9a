"""Fetching and parsing feeds: RSS and Atom over loopback HTTP, keywords, keys, bad bodies."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from jiritsu.news.fetch import (
    FetchError,
    download,
    fetch_feed,
    fetch_page_text,
    html_to_text,
    item_key,
    keyword_patterns,
    match_keyword,
    page_url_allowed,
    source_label,
)
from tests.fakes.feeds import FeedServer
from tests.news.conftest import FIXTURES, KEYWORDS, NOW, rss

KW = keyword_patterns(KEYWORDS)


def _fetch(source: str, **kwargs: object):  # type: ignore[no-untyped-def]
    options: dict[str, object] = {
        "timeout": 5,
        "max_bytes": 100_000,
        "max_text_chars": 2000,
        "environment": "paper",
        "now": NOW,
    }
    options.update(kwargs)
    return fetch_feed(source, KEYWORDS, **options)  # type: ignore[arg-type]


def test_rss_fixture_over_http(server: FeedServer) -> None:
    url = server.serve("/rss", (FIXTURES / "market_rss.xml").read_bytes())
    result = _fetch(url)
    assert (result.entries, len(result.items)) == (5, 3)
    first, second, third = result.items
    assert first.headline == "Bitcoin, Ether rally as ETF approval lifts the crypto market"
    assert first.keyword == "bitcoin"  # the first configured keyword that matches
    assert first.guid == "wire-0001"
    assert first.link == "https://news.example.test/markets/2026/03/01/bitcoin-rally"
    assert first.published == datetime(2026, 3, 1, 9, 30, tzinfo=timezone.utc)
    # HTML in the summary is reduced to text; entities decoded
    assert first.text.endswith(
        "Prices surged after regulators approved the fund & inflows hit a record."
    )
    assert "<" not in first.text
    assert second.keyword == "btc"  # found in the summary ("BTC deposits")
    assert second.published == datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)  # +0100 -> UTC
    assert third.keyword == "ethereum"
    assert third.guid is None  # no guid: keyed by its link
    assert third.item_key == item_key(url, None, third.link, third.headline, "")
    assert server.requests[0].headers.get("User-Agent", "").startswith("Jiritsu/")


def test_atom_fixture_over_http(server: FeedServer) -> None:
    url = server.serve(
        "/atom", (FIXTURES / "market_atom.xml").read_bytes(), content_type="application/atom+xml"
    )
    result = _fetch(url)
    assert (result.entries, len(result.items)) == (3, 2)
    lender, upgrade = result.items
    assert lender.headline == "Crypto lender files for bankruptcy as withdrawals collapse"
    assert lender.keyword == "crypto"
    assert lender.published == datetime(2026, 2, 28, 23, 15, tzinfo=timezone.utc)  # +09:00
    assert lender.guid == "tag:journal.example.test,2026:entry-1"
    assert lender.link == "https://journal.example.test/2026/lender-bankruptcy"
    assert upgrade.keyword == "ethereum"
    assert upgrade.published == datetime(2026, 3, 1, 13, 45, tzinfo=timezone.utc)  # <updated>


def test_local_file_source(tmp_path: Path) -> None:
    path = tmp_path / "feed.xml"
    path.write_text(rss([{"title": "Crypto funds see inflows", "guid": "a"}]), encoding="utf-8")
    result = _fetch(str(path))
    assert [i.headline for i in result.items] == ["Crypto funds see inflows"]
    assert result.items[0].published == NOW  # no date in the feed: the fetch time


def test_missing_local_file_is_a_fetch_error(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as info:
        _fetch(str(tmp_path / "nope.xml"))
    assert info.value.kind == "not_found"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Bitcoin, the asset", "bitcoin"),
        ("BITCOIN!", "bitcoin"),
        ("(bitcoin)", "bitcoin"),
        ("bitcoins are up", None),  # a different word
        ("btcfoo lists", None),
        ("foobtc lists", None),
        ("BTC-USD perpetuals", "btc"),
        ("my_btc wallet", None),  # underscore joins words
        ("crypto's winter", "crypto"),
        ("cryptocurrency", None),
        ("Ethereum\nupdate", "ethereum"),
        ("nothing here", None),
    ],
)
def test_keywords_match_whole_words_case_insensitively(text: str, expected: str | None) -> None:
    assert match_keyword(text, KW) == expected


def test_multi_word_keywords_and_configuration_order() -> None:
    patterns = keyword_patterns(["spot etf", "bitcoin"])
    assert match_keyword("Bitcoin spot  ETF approved", patterns) == "spot etf"
    assert match_keyword("spot-etf", patterns) is None
    assert match_keyword("Bitcoin ETF", patterns) == "bitcoin"


def test_item_keys_prefer_guid_then_link_then_title_and_are_scoped_by_source() -> None:
    by_guid = item_key("feedA", "g", "https://l", "t", "2026")
    assert by_guid == item_key("feedA", "g", "https://other", "other", "x")
    assert by_guid != item_key("feedB", "g", "https://l", "t", "2026")
    by_link = item_key("feedA", None, "https://l", "t", "2026")
    assert by_link == item_key("feedA", None, "https://l", "other", "x")
    by_title = item_key("feedA", None, None, "t", "2026")
    assert by_title != item_key("feedA", None, None, "t", "2027")
    assert len(by_guid) == 64


def test_duplicate_entries_within_one_feed_are_kept_once(tmp_path: Path) -> None:
    path = tmp_path / "dup.xml"
    path.write_text(rss([{"title": "Bitcoin up", "guid": "same"}] * 3), encoding="utf-8")
    result = _fetch(str(path))
    assert (result.entries, len(result.items)) == (3, 1)


def test_text_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "long.xml"
    long = "bitcoin " + "word " * 2000
    path.write_text(rss([{"title": "Bitcoin", "summary": long, "guid": "x"}]), encoding="utf-8")
    [item] = _fetch(str(path), max_text_chars=100).items
    assert len(item.text) <= 100


def test_future_dates_are_replaced_by_the_fetch_time(tmp_path: Path) -> None:
    path = tmp_path / "future.xml"
    future = datetime(2030, 1, 1, tzinfo=timezone.utc)
    path.write_text(rss([{"title": "Bitcoin", "guid": "f", "published": future}]), "utf-8")
    assert _fetch(str(path)).items[0].published == NOW


# --------------------------------------------------------------------------- bad feeds


def _kind(source: str, **kwargs: object) -> str:
    with pytest.raises(FetchError) as info:
        _fetch(source, **kwargs)
    return info.value.kind


def test_malformed_xml(server: FeedServer) -> None:
    url = server.serve("/bad", "<rss version='2.0'><channel><item><title>Bitcoin</channel></rss>")
    assert _kind(url) == "malformed"


def test_html_instead_of_a_feed(server: FeedServer) -> None:
    url = server.serve("/html", "<html><body>Bitcoin</body></html>", content_type="text/html")
    assert _kind(url) == "malformed"


def test_http_500_and_404(server: FeedServer) -> None:
    assert _kind(server.serve_status("/e500", 500)) == "http"
    assert _kind(server.url("/missing")) == "http"


def test_timeout(server: FeedServer) -> None:
    url = server.serve_delay("/slow", 20, rss([{"title": "Bitcoin", "guid": "s"}]))
    assert _kind(url, timeout=0.5) == "timeout"


def test_oversized_body_by_content_length(server: FeedServer) -> None:
    url = server.serve("/big", rss(headlines_big := [{"title": "Bitcoin " + "x" * 5000}]))
    assert headlines_big
    assert _kind(url, max_bytes=2048) == "too_large"


def test_oversized_body_without_content_length_is_cut_while_streaming(server: FeedServer) -> None:
    body = rss([{"title": f"Bitcoin {i} " + "y" * 200, "guid": str(i)} for i in range(200)])
    url = server.serve("/chunked", body, chunked=True)
    assert _kind(url, max_bytes=4096) == "too_large"
    endless = server.serve_endless("/endless")
    assert _kind(endless, max_bytes=50_000) == "too_large"


def test_oversized_local_file(tmp_path: Path) -> None:
    path = tmp_path / "big.xml"
    path.write_bytes(b"<rss>" + b" " * 5000 + b"</rss>")
    assert _kind(str(path), max_bytes=1024) == "too_large"


def test_non_utf8_body_is_undecodable(server: FeedServer) -> None:
    body = rss([{"title": "Bitcoin café", "guid": "c"}]).encode("latin-1")  # declared UTF-8
    url = server.serve("/latin", body, content_type="application/rss+xml")
    assert _kind(url) == "encoding"


def test_declared_legacy_encodings_are_fine(server: FeedServer) -> None:
    latin = rss([{"title": "Bitcoin café", "guid": "c"}], encoding="ISO-8859-1").encode("latin-1")
    url = server.serve("/latin-declared", latin, content_type="application/rss+xml")
    assert _fetch(url).items[0].headline == "Bitcoin café"
    # the HTTP charset wins over the XML declaration (RFC 7303)
    utf8_decl = rss([{"title": "Bitcoin déjà", "guid": "d"}]).encode("latin-1")
    url = server.serve("/charset", utf8_decl, content_type="text/xml; charset=ISO-8859-1")
    assert _fetch(url).items[0].headline == "Bitcoin déjà"


def test_unknown_declared_encoding(server: FeedServer) -> None:
    body = rss([{"title": "Bitcoin", "guid": "k"}], encoding="x-klingon")
    url = server.serve("/klingon", body, content_type="application/rss+xml")
    assert _kind(url) == "encoding"


def test_plain_http_is_refused_outside_paper_mode_but_loopback_is_allowed(
    server: FeedServer,
) -> None:
    url = server.serve("/rss", rss([{"title": "Bitcoin", "guid": "1"}]))
    assert len(_fetch(url, environment="production").items) == 1  # 127.0.0.1 is loopback
    assert _kind("http://feeds.example.test/rss", environment="production") == "insecure"


def test_a_redirect_to_plain_http_is_refused_outside_paper_mode(server: FeedServer) -> None:
    target = "http://feeds.example.test/rss"
    url = server.redirect("/moved", target)
    with pytest.raises(FetchError) as info:
        download(url, timeout=2, max_bytes=10_000, environment="production")
    assert info.value.kind == "insecure"  # refused before any request to the http URL
    assert len(server.requests) == 1


def test_redirect_loops_end(server: FeedServer) -> None:
    url = server.redirect("/loop", "/loop")
    with pytest.raises(FetchError, match="redirects"):
        download(url, timeout=2, max_bytes=10_000, environment="paper")
    assert server.hits("/loop") == 6


def test_redirects_are_followed(server: FeedServer) -> None:
    server.serve("/real", rss([{"title": "Bitcoin moved", "guid": "m"}]))
    url = server.redirect("/old", server.url("/real"))
    assert _fetch(url).items[0].headline == "Bitcoin moved"


# --------------------------------------------------------------------------- page text


def test_page_text_strips_html(server: FeedServer) -> None:
    page = (
        "<html><head><title>T</title><style>p{color:red}</style></head><body>"
        "<script>var bitcoin = 'no';</script><nav>Menu</nav>"
        "<article><h1>Bitcoin soars</h1><p>Buyers&nbsp;return &amp; prices climb.</p></article>"
        "</body></html>"
    )
    url = server.serve("/article", page, content_type="text/html; charset=utf-8")
    text = fetch_page_text(url, timeout=5, max_bytes=10_000, max_chars=500, environment="paper")
    assert text == "Menu Bitcoin soars Buyers return & prices climb."  # nbsp is whitespace
    assert "color" not in text
    assert "var" not in text


def test_page_links_to_private_addresses_are_refused_outside_paper_mode() -> None:
    assert page_url_allowed("https://10.0.0.5/admin", "production") is not None
    assert page_url_allowed("https://169.254.169.254/latest", "production") is not None
    assert page_url_allowed("https://news.example.test/a", "production") is None
    assert page_url_allowed("http://news.example.test/a", "production") is not None
    assert page_url_allowed("http://127.0.0.1:9/a", "paper") is None


def test_html_to_text_and_labels() -> None:
    assert html_to_text("<p>a</p><p>b</p>") == "a b"
    assert html_to_text("plain   text\n here") == "plain text here"
    assert html_to_text("") == ""
    assert source_label("https://www.coindesk.com/arc/outboundfeeds/rss/") == (
        "www.coindesk.com/arc/outboundfeeds/rss"
    )
    assert source_label("/srv/feeds/sample_feed.xml") == "sample_feed.xml"
    assert len(source_label("https://h.test/" + "p" * 200)) == 64
