"""Download and parse one news feed: bounded, strict about bytes, tolerant of nothing silent.

Every source is an RSS/Atom URL or a local file path. Downloads go through ``requests`` with a
connect/read timeout, an overall deadline (:data:`DEADLINE_FACTOR` x the timeout) and a size
cap enforced while streaming, so a slow or huge answer never holds the job. Outside paper mode
every URL of the redirect chain must be https (loopback excepted).

Bytes are decoded by their *declared* encoding (HTTP charset, else byte-order mark, else the
XML declaration, else UTF-8, as RFC 7303 says); a body that does not decode strictly with it is
"undecodable" (``FetchError`` kind ``encoding``), never guessed. feedparser then parses it with
that encoding; any parser complaint (``bozo``) rejects the feed as malformed rather than
trusting the lenient parser's guesses.

Kept items are those whose title or summary contains a configured keyword as a whole word
(case-insensitive); the first keyword in configuration order that matches is remembered.
Each item gets a dedupe key: sha256 of the feed plus its guid, else its link, else its title
and published time.
"""

from __future__ import annotations

import codecs
import hashlib
import ipaddress
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.message import Message
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

if TYPE_CHECKING:
    import requests

DEADLINE_FACTOR = 3  # a whole download may take this many request timeouts
MAX_REDIRECTS = 5
CHUNK_BYTES = 16 * 1024
HEADLINE_CHARS = 500
FUTURE_TOLERANCE = timedelta(minutes=10)
USER_AGENT = "Jiritsu/0.1 (news sentiment)"
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.1"
)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._:-]+)["']""")
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SPACE = re.compile(r"\s+")


class FetchError(Exception):
    """A source could not be used. ``kind``: http, timeout, connection, too_large, encoding,
    malformed, not_found, insecure."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class FeedItem:
    """One matched entry of a feed, ready to store."""

    feed: str  # the source as configured: URL or absolute file path
    item_key: str
    guid: str | None
    link: str | None
    headline: str
    text: str  # title + summary (or page text later), bounded; what the scorer reads
    keyword: str
    published: datetime | None


@dataclass
class FeedResult:
    """What one source gave: every entry seen and the ones kept."""

    feed: str
    entries: int = 0
    items: list[FeedItem] = field(default_factory=list)


# --------------------------------------------------------------------------- text helpers


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "head", "svg", "iframe"})
    _BLOCK = frozenset(
        {"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "td",
         "th", "article", "section", "header", "footer", "blockquote", "pre", "hr", "title"}
    )  # fmt: skip

    def __init__(self, limit: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.limit = limit
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip_depth += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self.skip_depth:
            self.skip_depth -= 1
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth and self.size < self.limit * 2:
            self.parts.append(data)
            self.size += len(data)


def html_to_text(html: str, limit: int = 100_000) -> str:
    """Visible text of an HTML fragment or page (stdlib parser), whitespace collapsed."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return clip(_SPACE.sub(" ", html).strip(), limit)
    parser = _TextExtractor(limit)
    try:
        parser.feed(html)
        parser.close()
    except (ValueError, AssertionError):  # html.parser gives up on some broken markup
        pass
    return clip(_SPACE.sub(" ", "".join(parser.parts)).strip(), limit)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, cut at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit * 0.8 else cut).rstrip()


def keyword_patterns(keywords: Sequence[str]) -> list[tuple[str, re.Pattern[str]]]:
    """Whole-word, case-insensitive patterns, in configuration order (inner spaces flexible)."""
    out = []
    for kw in keywords:
        words = [re.escape(w) for w in kw.strip().split()]
        if words:
            out.append((kw.strip(), re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.I)))
    return out


def match_keyword(text: str, patterns: Sequence[tuple[str, re.Pattern[str]]]) -> str | None:
    """The first keyword (configuration order) found as a whole word in ``text``."""
    for keyword, pattern in patterns:
        if pattern.search(text):
            return keyword
    return None


def item_key(feed: str, guid: str | None, link: str | None, title: str, published: str) -> str:
    """Dedupe key scoped by source: guid, else link, else title + published time."""
    if guid:
        basis = f"guid:{guid.strip()}"
    elif link:
        basis = f"link:{link.strip()}"
    else:
        basis = f"title:{title.strip()}\n{published}"
    return hashlib.sha256(f"{feed}\n{basis}".encode()).hexdigest()


def source_label(feed: str) -> str:
    """A short name for a source (host of a URL, file name of a path), at most 64 characters."""
    if is_url(feed):
        parts = urlsplit(feed)
        label = (parts.hostname or feed) + (parts.path.rstrip("/") or "")
    else:
        label = Path(feed).name or feed
    return label if len(label) <= 64 else label[:61] + "..."


def is_url(source: str) -> bool:
    return "://" in source


# --------------------------------------------------------------------------- bytes in


def url_allowed(url: str, environment: str) -> str | None:
    """Why ``url`` may not be fetched in ``environment`` (None when it may): the same rule as
    every configured URL (https outside paper mode, loopback excepted)."""
    from jiritsu.config.base import url_problem

    return url_problem(url, environment)


def page_url_allowed(url: str, environment: str) -> str | None:
    """Like :func:`url_allowed`, and outside paper mode no private or loopback IP literals:
    article links come from third parties and must not point us at internal services."""
    problem = url_allowed(url, environment)
    if problem or environment == "paper":
        return problem
    host = urlsplit(url).hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if ip.is_global else "link to a non-public address"


def new_session() -> requests.Session:
    """A ``requests`` session with our headers and a redirect limit."""
    import requests

    session = requests.Session()
    session.max_redirects = MAX_REDIRECTS
    session.headers.update({"User-Agent": USER_AGENT, "Accept": ACCEPT})
    return session


def download(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    environment: str,
    session: requests.Session | None = None,
    accept: str | None = None,
) -> tuple[bytes, str | None]:
    """(body, Content-Type) of ``url``; :class:`FetchError` on any problem. Never unbounded."""
    import requests
    from urllib3.exceptions import ReadTimeoutError

    problem = url_allowed(url, environment)
    if problem:
        raise FetchError("insecure", problem)
    own = session is None
    http = session or new_session()
    deadline = time.monotonic() + timeout * DEADLINE_FACTOR
    headers = {"Accept": accept} if accept else None
    try:
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            with http.get(
                current,
                timeout=(timeout, timeout),
                stream=True,
                allow_redirects=False,
                headers=headers,
            ) as resp:
                if resp.is_redirect:
                    # each hop is checked BEFORE it is requested (no plain http outside paper)
                    current = urljoin(current, resp.headers.get("Location", ""))
                    problem = url_allowed(current, environment)
                    if problem:
                        raise FetchError("insecure", f"redirected to {problem}")
                    continue
                return _read_body(resp, max_bytes, deadline, timeout)
        raise FetchError("http", f"more than {MAX_REDIRECTS} redirects")
    except FetchError:
        raise
    except requests.exceptions.Timeout as exc:
        raise FetchError(
            "timeout", f"timed out after {timeout:g} s ({type(exc).__name__})"
        ) from None
    except requests.exceptions.SSLError as exc:
        raise FetchError("connection", f"TLS error: {_first_line(exc)}") from None
    except requests.exceptions.ConnectionError as exc:
        if any(isinstance(a, ReadTimeoutError) for a in exc.args):
            raise FetchError("timeout", f"read timed out after {timeout:g} s") from None
        raise FetchError("connection", f"connection failed: {_first_line(exc)}") from None
    except requests.exceptions.RequestException as exc:
        raise FetchError("http", f"{type(exc).__name__}: {_first_line(exc)}") from None
    finally:
        if own:
            http.close()


def _read_body(
    resp: requests.Response, max_bytes: int, deadline: float, timeout: float
) -> tuple[bytes, str | None]:
    """The body of a final response, streamed under the size cap and the overall deadline."""
    if resp.status_code >= 400:
        raise FetchError("http", f"HTTP {resp.status_code} {resp.reason or ''}".strip())
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("too_large", f"Content-Length {declared} > {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.iter_content(chunk_size=CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise FetchError("too_large", f"body larger than {max_bytes} bytes")
        if time.monotonic() > deadline:
            raise FetchError(
                "timeout", f"download took longer than {timeout * DEADLINE_FACTOR:g} s"
            )
        chunks.append(chunk)
    return b"".join(chunks), resp.headers.get("Content-Type")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def read_file(path: str, *, max_bytes: int) -> bytes:
    """A local feed file, read with the same size cap as downloads."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise FetchError("not_found", "no such file") from None
    except OSError as exc:
        raise FetchError("not_found", f"cannot read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise FetchError("too_large", f"file larger than {max_bytes} bytes")
    return data


def declared_encoding(body: bytes, content_type: str | None) -> str:
    """The encoding a feed declares: HTTP charset, else BOM, else XML declaration, else UTF-8."""
    if content_type:
        msg = Message()
        msg["content-type"] = content_type
        charset = msg.get_param("charset")
        if isinstance(charset, str) and charset.strip():
            return charset.strip().strip("\"'").lower()
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    match = _XML_DECL.match(body[:1024])
    if match:
        return match.group(1).decode("ascii").lower()
    return "utf-8"


def decode_strictly(body: bytes, encoding: str) -> str:
    """``body`` decoded with ``encoding``; :class:`FetchError` ``encoding`` when it does not."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise FetchError("encoding", f"unknown declared encoding {encoding!r}") from None
    try:
        return body.decode(encoding)
    except UnicodeDecodeError as exc:
        raise FetchError(
            "encoding",
            f"body is not valid {encoding} (byte {exc.start}: {body[exc.start:exc.start + 1]!r})",
        ) from None


# --------------------------------------------------------------------------- parsing


def parse_feed(body: bytes, content_type: str | None = None) -> Any:
    """feedparser's result for ``body``; rejects undecodable and malformed feeds."""
    import feedparser

    if not body.strip():
        raise FetchError("malformed", "empty body")
    encoding = declared_encoding(body, content_type)
    decode_strictly(body, encoding)
    parsed = feedparser.parse(
        body,
        response_headers={"content-type": f"application/xml; charset={encoding}"},
        sanitize_html=True,
        resolve_relative_uris=False,
    )
    if parsed.get("bozo"):
        exc = parsed.get("bozo_exception")
        name = type(exc).__name__ if exc is not None else "error"
        if "Encoding" in name:
            raise FetchError("encoding", f"undecodable feed ({name}: {_first_line(exc)})")
        raise FetchError("malformed", f"malformed feed ({name}: {_first_line(exc)})")
    version = parsed.get("version") or ""
    if not version and not parsed.get("entries"):
        raise FetchError("malformed", "not an RSS or Atom feed")
    return parsed


def _published(entry: Any) -> tuple[datetime | None, str]:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                when = datetime(*value[:6]).replace(tzinfo=timezone.utc)
            except (TypeError, ValueError):
                continue
            return when, when.isoformat()
    raw = entry.get("published") or entry.get("updated") or ""
    return None, str(raw)


def extract_items(
    feed: str,
    parsed: Any,
    keywords: Sequence[str],
    *,
    max_text_chars: int,
    now: datetime,
) -> FeedResult:
    """The entries of a parsed feed that mention a keyword, with dedupe keys and bounded text.

    Items without a usable published time, or dated more than a few minutes in the future,
    are stamped with ``now`` (the fetch time): feeds lie, the moving average must not.
    """
    patterns = keyword_patterns(keywords)
    entries = list(parsed.get("entries") or [])
    result = FeedResult(feed=feed, entries=len(entries))
    seen: set[str] = set()
    for entry in entries:
        title = html_to_text(str(entry.get("title") or ""), HEADLINE_CHARS * 4)
        summary_html = str(entry.get("summary") or entry.get("description") or "")
        summary = html_to_text(summary_html, max_text_chars * 2)
        keyword = match_keyword(f"{title}\n{summary}", patterns)
        if keyword is None:
            continue
        headline = clip(title or summary, HEADLINE_CHARS)
        if not headline:
            continue
        guid = str(entry.get("id") or entry.get("guid") or "").strip() or None
        link = str(entry.get("link") or "").strip() or None
        published, published_text = _published(entry)
        key = item_key(feed, guid, link, title, published_text)
        if key in seen:
            continue
        seen.add(key)
        if published is None or published > now + FUTURE_TOLERANCE:
            published = now
        text = title if not summary or summary == title else f"{title}. {summary}"
        result.items.append(
            FeedItem(
                feed=feed,
                item_key=key,
                guid=guid,
                link=link,
                headline=headline,
                text=clip(text, max_text_chars),
                keyword=keyword,
                published=published,
            )
        )
    return result


def fetch_feed(
    source: str,
    keywords: Sequence[str],
    *,
    timeout: float,
    max_bytes: int,
    max_text_chars: int,
    environment: str,
    now: datetime,
    session: requests.Session | None = None,
) -> FeedResult:
    """Download (or read) one source, parse it and keep the keyword matches."""
    if is_url(source):
        body, content_type = download(
            source, timeout=timeout, max_bytes=max_bytes, environment=environment, session=session
        )
    else:
        body, content_type = read_file(source, max_bytes=max_bytes), None
    parsed = parse_feed(body, content_type)
    return extract_items(source, parsed, keywords, max_text_chars=max_text_chars, now=now)


def fetch_page_text(
    url: str,
    *,
    timeout: float,
    max_bytes: int,
    max_chars: int,
    environment: str,
    session: requests.Session | None = None,
) -> str:
    """The visible text of an article page, bounded; :class:`FetchError` on any problem."""
    problem = page_url_allowed(url, environment)
    if problem:
        raise FetchError("insecure", problem)
    body, content_type = download(
        url,
        timeout=timeout,
        max_bytes=max_bytes,
        environment=environment,
        session=session,
        accept="text/html, application/xhtml+xml;q=0.9, */*;q=0.1",
    )
    encoding = "utf-8"
    if content_type:
        msg = Message()
        msg["content-type"] = content_type
        charset = msg.get_param("charset")
        if isinstance(charset, str) and charset.strip():
            encoding = charset.strip().lower()
    return html_to_text(decode_strictly(body, encoding), max_chars)


def unique(values: Iterable[str]) -> list[str]:
    """``values`` without repeats, order kept (a source listed twice is fetched once)."""
    return list(dict.fromkeys(v for v in values if v))
