"""Discord webhook notifier.

Alerts must arrive even when Discord pushes back, and must never take the trading loop down when
they cannot. So this client honours Discord's rate-limit answers instead of guessing, retries only
what may succeed on retry (429, 5xx, network errors) within a bounded number of attempts, stops
using a webhook Discord says is gone, and turns every failure into a logged ``False``.

The webhook URL contains its token: it is never logged; log lines name the webhook by its id.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jiritsu import __version__
from jiritsu.clock import wall_now
from jiritsu.errors import UsageError
from jiritsu.notify.base import level_number
from jiritsu.notify.limits import (
    Message,
    build_event_messages,
    build_report_messages,
    normalise_level,
    truncate,
)
from jiritsu.redact import MASK, redact, register_secret

if TYPE_CHECKING:
    import requests

log = logging.getLogger("jiritsu.notify")

BACKOFF_BASE_SECONDS = 0.5  # 5xx / network errors: 0.5 s, 1 s, 2 s, ... capped by max_wait
ERROR_DETAIL_MAX = 500  # how much of Discord's error body goes into a log line
_WEBHOOK_PATH = re.compile(r"/webhooks/([^/]+)/([^/?#]+)/?$")
_FORBIDDEN_NAMES = ("discord", "clyde")  # Discord rejects usernames containing these


class _Outcome(Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"  # Discord refused this message; the next one may still go through
    FAILED = "failed"  # gave up after retries; do not hammer Discord with the rest
    DEAD = "dead"


def parse_webhook_url(url: str) -> tuple[str, str]:
    """Return ``(webhook_id, token)`` of a webhook URL; raises UsageError when it is not one."""
    parts = urlsplit(url.strip())
    match = _WEBHOOK_PATH.search(parts.path)
    if parts.scheme not in ("http", "https") or not parts.netloc or not match:
        raise UsageError(
            "the Discord webhook URL must look like https://HOST/api/webhooks/ID/TOKEN"
        )
    return match.group(1), match.group(2)


def _seconds(value: object) -> float | None:
    """A non-negative finite number of seconds from a header or JSON value, else None."""
    if not isinstance(value, (str, int, float)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if math.isnan(number):
        return None
    return max(0.0, number)


class DiscordNotifier:
    """Posts events and reports to one Discord webhook.

    Thread-safe: sends are serialised, so the rate-limit state stays consistent.
    """

    def __init__(
        self,
        webhook_url: str,
        *,
        timeout: float = 10,
        username: str = "Jiritsu",
        min_level: str = "INFO",
        max_attempts: int = 4,
        max_wait_seconds: float = 30,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        footer: str | None = None,
    ) -> None:
        self._webhook_id, self._token = parse_webhook_url(webhook_url)
        register_secret(self._token)  # belt and braces: config registers it too
        self._url = webhook_url.strip()
        level = normalise_level(min_level)
        if level is None:
            raise UsageError(f"unknown notification level {min_level!r}")
        self._min_level = level_number(level)
        if username and any(bad in username.lower() for bad in _FORBIDDEN_NAMES):
            log.warning("%s: username %r is refused by Discord; using the default", self, username)
            username = ""
        self._username = username
        self._footer = footer
        self._timeout = float(timeout)
        self._max_attempts = max(1, int(max_attempts))
        self._max_wait = max(0.0, float(max_wait_seconds))
        self._sleep = sleep
        self._clock = clock
        self._own_session = session is None
        if session is None:
            import requests  # lazy: keeps `import jiritsu.notify` (and CLI start-up) cheap

            session = requests.Session()
            session.headers["User-Agent"] = f"Jiritsu/{__version__} (webhook notifier)"
        self._session = session
        self._lock = threading.Lock()
        self._dead = False
        self._not_before = 0.0  # clock() value before which the bucket is exhausted

    def __repr__(self) -> str:
        return f"discord webhook {self._webhook_id}"

    __str__ = __repr__

    @property
    def webhook_id(self) -> str:
        return self._webhook_id

    @property
    def dead(self) -> bool:
        """True once Discord said the webhook is gone (404) or its token is invalid (401)."""
        return self._dead

    def close(self) -> None:
        """Close the HTTP session if this notifier created it."""
        if self._own_session:
            self._session.close()

    def __enter__(self) -> DiscordNotifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public API ------------------------------------------------------------------------

    def notify(
        self, level: str, title: str, message: str, fields: Mapping[str, object] | None = None
    ) -> bool:
        """Send one event as an embed coloured by level; True when every part was delivered.

        Levels below ``min_level`` are only logged at DEBUG and count as success.
        """
        try:
            if level_number(level) < self._min_level:
                log.debug("%s: %s notification below min level: %s", self, level, redact(title))
                return True
            messages = build_event_messages(
                level, title, message, fields, footer=self._footer, timestamp=self._now()
            )
            return self._send_all(messages, f"[{level}] {title}")
        except Exception as exc:  # noqa: BLE001 - alerting never breaks its caller
            log.error("%s: notification failed: %s", self, self._clean(repr(exc)))
            return False

    def send_report(self, title: str, sections: Sequence[tuple[str, str]]) -> bool:
        """Send a long report split across embeds and messages; not subject to ``min_level``."""
        try:
            messages = build_report_messages(
                title, list(sections), footer=self._footer, timestamp=self._now()
            )
            return self._send_all(messages, f"report {title}")
        except Exception as exc:  # noqa: BLE001 - alerting never breaks its caller
            log.error("%s: report failed: %s", self, self._clean(repr(exc)))
            return False

    # -- internals -------------------------------------------------------------------------

    @staticmethod
    def _now() -> str:
        """When the message is sent (wall time: Discord shows it beside its own)."""
        return wall_now().isoformat(timespec="seconds")

    def _clean(self, text: str) -> str:
        """Mask the token (exception texts quote the URL) and every registered secret."""
        return truncate(redact(text.replace(self._token, MASK)), ERROR_DETAIL_MAX)

    def _send_all(self, messages: list[Message], what: str) -> bool:
        with self._lock:
            ok = True
            for index, msg in enumerate(messages, start=1):
                outcome = _Outcome.DEAD if self._dead else self._deliver(msg)
                if outcome is _Outcome.DELIVERED:
                    continue
                ok = False
                if outcome is not _Outcome.REJECTED:
                    log.warning(
                        "%s: not delivered (part %d of %d): %s",
                        self,
                        index,
                        len(messages),
                        self._clean(what),
                    )
                    break
            return ok

    def _deliver(self, msg: Message) -> _Outcome:
        import requests

        body = json.dumps(msg.to_payload(self._username), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        reason = ""
        for attempt in range(1, self._max_attempts + 1):
            self._wait_for_bucket()
            try:
                resp = self._session.post(
                    self._url,
                    params={"wait": "true"},
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                )
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,
            ) as exc:
                reason = type(exc).__name__
                delay = self._backoff(attempt)
            except requests.RequestException as exc:
                log.error("%s: request failed: %s", self, self._clean(repr(exc)))
                return _Outcome.FAILED
            else:
                status = resp.status_code
                if status < 300:
                    self._note_bucket(resp)
                    log.debug("%s: delivered (HTTP %d)", self, status)
                    return _Outcome.DELIVERED
                if status == 429:
                    wait = self._retry_after(resp)
                    delay = self._backoff(attempt) if wait is None else min(wait, self._max_wait)
                    reason = f"HTTP 429 rate limited (retry after {delay:.3f}s)"
                elif status in (401, 404):
                    self._mark_dead(status, resp)
                    return _Outcome.DEAD
                elif status >= 500:
                    self._note_bucket(resp)
                    reason = f"HTTP {status}"
                    delay = self._backoff(attempt)
                else:
                    self._note_bucket(resp)
                    log.error(
                        "%s: Discord refused the message (HTTP %d): %s",
                        self,
                        status,
                        self._error_detail(resp),
                    )
                    return _Outcome.REJECTED
            if attempt < self._max_attempts:
                log.warning(
                    "%s: attempt %d of %d failed (%s); retrying in %.3fs",
                    self,
                    attempt,
                    self._max_attempts,
                    reason,
                    delay,
                )
                self._sleep(delay)
        log.error("%s: giving up after %d attempts (%s)", self, self._max_attempts, reason)
        return _Outcome.FAILED

    def _backoff(self, attempt: int) -> float:
        return min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), self._max_wait)

    def _wait_for_bucket(self) -> None:
        """Wait out an exhausted rate-limit bucket before sending (capped by max_wait)."""
        wait = self._not_before - self._clock()
        if wait > 0:
            wait = min(wait, self._max_wait)
            log.debug("%s: rate-limit bucket empty; waiting %.3fs", self, wait)
            self._sleep(wait)
        self._not_before = 0.0

    def _note_bucket(self, resp: requests.Response) -> None:
        """Remember when the bucket refills if this response used its last request."""
        remaining = resp.headers.get("X-RateLimit-Remaining")
        reset_after = _seconds(resp.headers.get("X-RateLimit-Reset-After"))
        if remaining is not None and remaining.strip() == "0" and reset_after is not None:
            self._not_before = self._clock() + reset_after

    @staticmethod
    def _retry_after(resp: requests.Response) -> float | None:
        """Seconds to wait after a 429: JSON ``retry_after`` first, else ``Retry-After``."""
        try:
            data = resp.json()
        except ValueError:
            data = None
        if isinstance(data, dict):
            wait = _seconds(data.get("retry_after"))
            if wait is not None:
                return wait
        return _seconds(resp.headers.get("Retry-After"))

    def _error_detail(self, resp: requests.Response) -> str:
        try:
            data: Any = resp.json()
        except ValueError:
            return self._clean(resp.text or resp.reason or "")
        if isinstance(data, dict):
            detail = str(data.get("message", ""))
            if data.get("errors"):
                detail += " " + json.dumps(data["errors"], ensure_ascii=False)
            return self._clean(detail)
        return self._clean(json.dumps(data, ensure_ascii=False))

    def _mark_dead(self, status: int, resp: requests.Response) -> None:
        self._dead = True
        log.error(
            "%s is gone or its token is invalid (HTTP %d: %s); it will not be used again",
            self,
            status,
            self._error_detail(resp),
        )
