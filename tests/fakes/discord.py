"""A loopback fake of Discord's webhook endpoint that behaves like the real one on the wire.

It enforces Discord's message limits (answering 400 with Discord's error JSON), speaks the
rate-limit headers, and lets a test queue exactly what happens next: a 429, a 5xx, a slow answer,
a deleted webhook. Its limits are written out here independently of ``jiritsu.notify.limits`` and
counted in code points, as Discord's API does, so a bug there cannot hide itself.

Use as a context manager::

    with FakeDiscord() as fake:
        url = fake.url_for("1", "tok")
        ...
        assert fake.messages[0]["embeds"][0]["title"] == ...

or standalone for manual trials: ``python -m tests.fakes.discord --port 8765``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer, tracking_handler

CONTENT_MAX = 2000
EMBEDS_MAX = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
EMBEDS_TOTAL_MAX = 6000
USERNAME_MAX = 80
BODY_MAX = 8 * 1024 * 1024
DELAY_MAX = 30.0  # a queued delay never holds a thread longer than this

_PATH = re.compile(r"^(?:/api(?:/v\d+)?)?/webhooks/([^/]+)/([^/]+)/?$")


@dataclass
class FakeRequest:
    """One request as the fake saw it, accepted or not."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    webhook_id: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Bucket:
    limit: int
    reset_after: float
    used: int = 0
    window_start: float = 0.0


@dataclass
class _Reply:
    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None


def _max_len(errors: dict[str, Any], path: list[str], value: Any, limit: int) -> None:
    if not isinstance(value, str):
        _put(errors, path, "BASE_TYPE_STRING", "Value must be a string.")
    elif len(value) > limit:
        _put(errors, path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length.")


def _put(errors: dict[str, Any], path: list[str], code: str, message: str) -> None:
    node = errors
    for key in path:
        node = node.setdefault(key, {})
    node.setdefault("_errors", []).append({"code": code, "message": message})


def validate_payload(payload: Any) -> dict[str, Any] | None:
    """Discord's 400 body for ``payload``, or None when Discord would accept it."""
    if not isinstance(payload, dict):
        return {"message": "Invalid Form Body", "code": 50035, "errors": {}}
    errors: dict[str, Any] = {}
    content = payload.get("content")
    if content is not None:
        _max_len(errors, ["content"], content, CONTENT_MAX)
    username = payload.get("username")
    if username is not None:
        _max_len(errors, ["username"], username, USERNAME_MAX)
        if isinstance(username, str) and any(
            bad in username.lower() for bad in ("discord", "clyde")
        ):
            _put(errors, ["username"], "USERNAME_INVALID_CONTAINS", "Username cannot contain")
    embeds = payload.get("embeds")
    if embeds is not None:
        if not isinstance(embeds, list):
            _put(errors, ["embeds"], "BASE_TYPE_ARRAY", "Value must be an array.")
            embeds = []
        if len(embeds) > EMBEDS_MAX:
            _put(errors, ["embeds"], "BASE_TYPE_MAX_LENGTH", f"Must be {EMBEDS_MAX} or fewer.")
        total = 0
        for i, embed in enumerate(embeds):
            total += _validate_embed(errors, ["embeds", str(i)], embed)
        if total > EMBEDS_TOTAL_MAX:
            _put(
                errors,
                ["embeds"],
                "MAX_EMBED_SIZE_EXCEEDED",
                f"Embed size exceeds maximum size of {EMBEDS_TOTAL_MAX}",
            )
    if errors:
        return {"message": "Invalid Form Body", "code": 50035, "errors": errors}
    if not content and not embeds:
        return {"message": "Cannot send an empty message", "code": 50006}
    return None


def _validate_embed(errors: dict[str, Any], path: list[str], embed: Any) -> int:
    """Record errors of one embed; return its size towards the 6000 total."""
    if not isinstance(embed, dict):
        _put(errors, path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
        return 0
    size = 0
    for key, limit in (("title", TITLE_MAX), ("description", DESCRIPTION_MAX)):
        if key in embed:
            _max_len(errors, [*path, key], embed[key], limit)
            size += len(embed[key]) if isinstance(embed[key], str) else 0
    colour = embed.get("color")
    if colour is not None and not (isinstance(colour, int) and 0 <= colour <= 0xFFFFFF):
        _put(errors, [*path, "color"], "NUMBER_TYPE_MAX", "int value should be <= 16777215.")
    stamp = embed.get("timestamp")
    if stamp is not None:
        try:
            datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
        except ValueError:
            _put(errors, [*path, "timestamp"], "DATE_TIME_TYPE_PARSE", "Could not parse time.")
    for key, name_key, limit in (
        ("footer", "text", FOOTER_MAX),
        ("author", "name", AUTHOR_NAME_MAX),
    ):
        if key in embed:
            part = embed[key]
            value = part.get(name_key) if isinstance(part, dict) else None
            _max_len(errors, [*path, key, name_key], value, limit)
            size += len(value) if isinstance(value, str) else 0
    fields = embed.get("fields", [])
    if not isinstance(fields, list):
        _put(errors, [*path, "fields"], "BASE_TYPE_ARRAY", "Value must be an array.")
        fields = []
    if len(fields) > FIELDS_MAX:
        _put(errors, [*path, "fields"], "BASE_TYPE_MAX_LENGTH", f"Must be {FIELDS_MAX} or fewer.")
    for j, fld in enumerate(fields):
        fpath = [*path, "fields", str(j)]
        if not isinstance(fld, dict):
            _put(errors, fpath, "MODEL_TYPE_CONVERT", "Only dictionaries may be used")
            continue
        for key, limit in (("name", FIELD_NAME_MAX), ("value", FIELD_VALUE_MAX)):
            value = fld.get(key)
            _max_len(errors, [*fpath, key], value, limit)
            if isinstance(value, str):
                if not value.strip():
                    _put(errors, [*fpath, key], "BASE_TYPE_REQUIRED", "This field is required")
                size += len(value)
    return size


class FakeDiscord(LoopbackServer):
    """Threaded loopback HTTP server standing in for ``discord.com/api/webhooks``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._script: deque[tuple[str, Any]] = deque()
        self._tokens: dict[str, str] = {}
        self._deleted: set[str] = set()
        self._buckets: dict[str, _Bucket] = {}
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._connections: set[socket.socket] = set()
        self.messages: list[dict[str, Any]] = []
        self.requests: list[FakeRequest] = []
        self.verbose = verbose
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- set-up and scripting ---------------------------------------------------------------

    def url_for(self, webhook_id: str = "1", token: str = "tok") -> str:  # noqa: S107
        """Create (or reuse) webhook ``webhook_id`` with ``token`` and return its execute URL."""
        with self._lock:
            self._tokens[str(webhook_id)] = token
            self._deleted.discard(str(webhook_id))
        return f"{self.base_url}/api/webhooks/{webhook_id}/{token}"

    def delete_webhook(self, webhook_id: str = "1") -> None:
        """From now on the webhook answers 404 Unknown Webhook."""
        with self._lock:
            self._deleted.add(str(webhook_id))

    def queue_429(
        self, retry_after: float = 0.05, global_: bool = False, header_only: bool = False
    ) -> None:
        """The next request gets a 429; ``header_only`` sends only ``Retry-After`` (no JSON)."""
        with self._lock:
            self._script.append(("429", (retry_after, global_, header_only)))

    def queue_status(
        self, status: int = 500, times: int = 1, body: dict[str, Any] | None = None
    ) -> None:
        """The next ``times`` requests get ``status`` with ``body`` (default: a Discord-style
        JSON error)."""
        with self._lock:
            for _ in range(times):
                self._script.append(("status", (status, body)))

    def queue_delay(self, seconds: float) -> None:
        """The next request is answered only after ``seconds`` (then handled normally)."""
        with self._lock:
            self._script.append(("delay", min(float(seconds), DELAY_MAX)))

    def set_bucket(self, limit: int = 5, reset_after: float = 0.2, webhook_id: str = "1") -> None:
        """Rate-limit ``webhook_id``: ``limit`` requests per ``reset_after`` s, then real 429s."""
        with self._lock:
            self._buckets[str(webhook_id)] = _Bucket(limit=limit, reset_after=reset_after)

    @property
    def rejected(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.status >= 400]

    # -- request handling -----------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(tracking_handler(fake)):  # type: ignore[misc,valid-type]
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

            do_PATCH = do_DELETE = do_PUT = do_GET

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        if length > BODY_MAX:
            self._respond(handler, None, _Reply(413, {"message": "Request entity too large"}))
            handler.close_connection = True
            return
        body = handler.rfile.read(length) if length > 0 else b""
        req = FakeRequest(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={k: v for k, v in handler.headers.items()},
            body=body,
        )
        with self._lock:
            self.requests.append(req)
            action = self._script.popleft() if self._script else None
        if action and action[0] == "delay":
            if self._stopping.wait(action[1]):
                handler.close_connection = True
                return
            action = None
        reply = self._decide(req, action)
        self._respond(handler, req, reply)

    def _decide(self, req: FakeRequest, action: tuple[str, Any] | None) -> _Reply:
        match = _PATH.match(req.path)
        if not match:
            return _Reply(404, {"message": "404: Not Found", "code": 0})
        webhook_id, token = match.groups()
        req.webhook_id = webhook_id
        with self._lock:
            known = webhook_id in self._tokens and webhook_id not in self._deleted
            good_token = self._tokens.get(webhook_id) == token
        if not known:
            return _Reply(404, {"message": "Unknown Webhook", "code": 10015})
        if not good_token:
            return _Reply(401, {"message": "Invalid Webhook Token", "code": 50027})
        if req.method != "POST":
            return _Reply(405, {"message": "405: Method Not Allowed", "code": 0})
        if action and action[0] == "429":
            retry_after, global_, header_only = action[1]
            return self._too_many(retry_after, global_, header_only)
        if action and action[0] == "status":
            status, body = action[1]
            return _Reply(status, body or {"message": f"{status}: scripted failure", "code": 0})
        bucket_headers, limited = self._take_from_bucket(webhook_id)
        if limited is not None:
            return limited
        ctype = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _Reply(
                400, {"message": "Cannot send an empty message", "code": 50006}, bucket_headers
            )
        try:
            payload = json.loads(req.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return _Reply(
                400, {"message": "The request body contains invalid JSON.", "code": 50109}
            )
        error = validate_payload(payload)
        if error is not None:
            return _Reply(400, error, bucket_headers)
        with self._lock:
            self.messages.append(payload)
        if self.verbose:
            titles = [e.get("title", "") for e in payload.get("embeds", [])]
            print(f"accepted webhook {webhook_id}: {payload.get('content', '')!r} {titles}")
        if req.query.get("wait", ["false"])[0].lower() != "true":
            return _Reply(204, None, bucket_headers)
        return _Reply(200, self._message_json(webhook_id, payload), bucket_headers)

    def _too_many(self, retry_after: float, global_: bool, header_only: bool) -> _Reply:
        headers = {"Retry-After": f"{retry_after:.3f}"}
        if global_:
            headers["X-RateLimit-Global"] = "true"
        headers["X-RateLimit-Scope"] = "global" if global_ else "user"
        if header_only:
            return _Reply(429, None, headers, text="You are being rate limited.")
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = global_
        return _Reply(429, body, headers)

    def _take_from_bucket(self, webhook_id: str) -> tuple[dict[str, str], _Reply | None]:
        with self._lock:
            bucket = self._buckets.get(webhook_id)
            if bucket is None:
                return {}, None
            now = time.monotonic()
            if now - bucket.window_start >= bucket.reset_after:
                bucket.window_start, bucket.used = now, 0
            reset_after = max(0.0, bucket.window_start + bucket.reset_after - now)
            headers = {
                "X-RateLimit-Limit": str(bucket.limit),
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Bucket": f"fake-{webhook_id}",
            }
            if bucket.used >= bucket.limit:
                headers["X-RateLimit-Remaining"] = "0"
                reply = self._too_many(reset_after, False, False)
                reply.headers.update(headers)
                return headers, reply
            bucket.used += 1
            headers["X-RateLimit-Remaining"] = str(bucket.limit - bucket.used)
            return headers, None

    def _message_json(self, webhook_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": str(next(self._ids)),
            "type": 0,
            "channel_id": "1000",
            "webhook_id": webhook_id,
            "author": {
                "id": webhook_id,
                "username": payload.get("username", "Fake Hook"),
                "bot": True,
            },
            "content": payload.get("content", ""),
            "embeds": [{"type": "rich", **e} for e in payload.get("embeds", [])],
            "timestamp": datetime.now(timezone.utc).isoformat(),
        }

    def _respond(
        self, handler: BaseHTTPRequestHandler, req: FakeRequest | None, reply: _Reply
    ) -> None:
        if req is not None:
            req.status = reply.status
        if reply.body is not None:
            data, ctype = json.dumps(reply.body).encode(), "application/json"
        elif reply.text is not None:
            data, ctype = reply.text.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = b"", ""
        try:
            handler.send_response(reply.status)
            for key, value in reply.headers.items():
                handler.send_header(key, value)
            if reply.status != 204:
                handler.send_header("Content-Type", ctype or "application/json")
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if data and reply.status != 204:
                handler.wfile.write(data)
            handler.wfile.flush()
        except OSError:  # the client gave up (timeout) or went away
            handler.close_connection = True


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C (or ``--seconds``) and print the webhook URL to use."""
    parser = argparse.ArgumentParser(description="Loopback fake of Discord webhooks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--id", default="1", dest="webhook_id")
    parser.add_argument("--token", default="tok")
    parser.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    args = parser.parse_args(argv)
    fake = FakeDiscord(args.host, args.port, verbose=True)
    with fake:
        print(fake.url_for(args.webhook_id, args.token), flush=True)
        try:
            if args.seconds > 0:
                time.sleep(args.seconds)
            else:
                while True:
                    time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
