"""A loopback fake of the Gemini API (``generateContent``) that speaks the real wire format.

google-genai is pointed at it with ``HttpOptions(base_url=fake.base_url)`` (plus
``client_args={"verify": ca}`` when it serves HTTPS), so the real SDK, its HTTP stack (httpx2)
and its error mapping are exercised. Tests queue exactly what happens next, like llm's
``MockModel.enqueue``::

    with FakeGemini(keys=["k1", "k2"]) as fake:
        fake.enqueue_json({"score": 0.4, "label": "positive"})
        fake.enqueue_status(429, for_key="k1")
        fake.rate_limit_key("k2")              # always 429 for k2
        fake.enqueue_delay(5)                  # the next request is answered 5 s late
        fake.responder = lambda req: {...}     # answers when nothing is queued
        ...
        assert fake.requests[0].key == "k1"

Request: ``POST /v1/models/{model}:generateContent`` (also ``/v1beta``), key in header
``x-goog-api-key``. Answer: ``candidates[0].content.parts[0].text``, ``finishReason``,
``usageMetadata`` and ``modelVersion``. Errors use Google's body
``{"error": {"code", "message", "status"}}``. Standalone for manual trials:
``python -m tests.fakes.gemini --port 8766 --key test-key`` (answers schema-shaped examples).
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.loopback import LoopbackServer, tracking_handler
from tests.fakes.tls import TLSFiles

DELAY_MAX = 30.0  # a queued delay never holds a thread longer than this
BODY_MAX = 20 * 1024 * 1024
_PATH = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):generateContent$")
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass
class FakeRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    api_version: str | None = None
    model: str | None = None
    status: int = 0

    @property
    def key(self) -> str | None:
        for name, value in self.headers.items():
            if name.lower() == "x-goog-api-key":
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def generation_config(self) -> dict[str, Any]:
        data = self.json() or {}
        return data.get("generationConfig") or {}

    @property
    def response_mime_type(self) -> str | None:
        return self.generation_config.get("responseMimeType")

    @property
    def response_schema(self) -> dict[str, Any] | None:
        return self.generation_config.get("responseSchema")

    @property
    def system_text(self) -> str:
        data = self.json() or {}
        parts = (data.get("systemInstruction") or {}).get("parts") or []
        return "".join(p.get("text", "") for p in parts)

    @property
    def prompt_text(self) -> str:
        data = self.json() or {}
        texts = []
        for content in data.get("contents") or []:
            texts.extend(p.get("text", "") for p in content.get("parts") or [])
        return "".join(texts)


@dataclass
class Answer:
    """A scripted answer: a 200 with ``text`` or an error ``status``."""

    text: str | None = None
    status: int = 200
    error_status: str | None = None
    message: str | None = None
    usage: dict[str, int] | None = None
    finish_reason: str = "STOP"
    model_version: str | None = None
    raw_body: bytes | None = None  # sent verbatim instead of a JSON body (e.g. a proxy's page)
    content_type: str = "application/json; charset=UTF-8"


@dataclass
class _Action:
    kind: str  # "answer" | "delay"
    for_key: str | None = None
    answer: Answer | None = None
    seconds: float = 0.0


@dataclass
class _Reply:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json; charset=UTF-8"


def example_from_schema(schema: dict[str, Any] | None) -> Any:
    """A minimal value matching a Gemini (OpenAPI-style) ``responseSchema``."""
    if not schema:
        return {}
    kind = str(schema.get("type", "OBJECT")).upper()
    if schema.get("enum"):
        return schema["enum"][0]
    if kind == "OBJECT":
        return {
            name: example_from_schema(sub) for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "ARRAY":
        return [example_from_schema(schema.get("items"))]
    if kind == "NUMBER":
        return 0.0
    if kind == "INTEGER":
        return 0
    if kind == "BOOLEAN":
        return False
    return ""


class FakeGemini(LoopbackServer):
    """Threaded loopback HTTP(S) server standing in for ``generativelanguage.googleapis.com``."""

    def __init__(
        self,
        keys: Iterable[str] = ("test-key-1",),
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: TLSFiles | None = None,
        model_version: str = "gemini-fake-001",
        verbose: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._script: deque[_Action] = deque()
        self._keys: set[str] = set(keys)
        self._rate_limited: set[str] = set()
        self._connections: set[socket.socket] = set()
        self.requests: list[FakeRequest] = []
        self.responder: Callable[[FakeRequest], Any] | None = None
        self.auto_answer = False  # answer schema-shaped examples when nothing is queued
        self.model_version = model_version
        self.verbose = verbose
        self._tls = tls
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.server_context().wrap_socket(
                self._server.socket, server_side=True
            )
        self._thread: threading.Thread | None = None

    # -- scripting ------------------------------------------------------------------------

    def add_key(self, key: str) -> None:
        with self._lock:
            self._keys.add(key)

    def rate_limit_key(self, key: str, on: bool = True) -> None:
        """Every request with ``key`` gets 429 RESOURCE_EXHAUSTED (until switched off)."""
        with self._lock:
            if on:
                self._rate_limited.add(key)
            else:
                self._rate_limited.discard(key)

    def _push(self, action: _Action) -> None:
        with self._lock:
            self._script.append(action)

    def enqueue_json(
        self,
        obj: Any,
        *,
        for_key: str | None = None,
        usage: dict[str, int] | None = None,
        finish_reason: str = "STOP",
    ) -> None:
        """The next request (with ``for_key``, if given) is answered with ``obj`` as JSON text."""
        self.enqueue_text(
            json.dumps(obj), for_key=for_key, usage=usage, finish_reason=finish_reason
        )

    def enqueue_text(
        self,
        raw: str,
        *,
        for_key: str | None = None,
        usage: dict[str, int] | None = None,
        finish_reason: str = "STOP",
    ) -> None:
        """The next request is answered 200 with ``raw`` as the model's text, verbatim."""
        self._push(
            _Action(
                "answer",
                for_key,
                Answer(text=raw, usage=usage, finish_reason=finish_reason),
            )
        )

    def enqueue_status(
        self,
        code: int,
        *,
        status: str | None = None,
        message: str | None = None,
        for_key: str | None = None,
        times: int = 1,
    ) -> None:
        """The next ``times`` requests get HTTP ``code`` with a Google-style error body."""
        for _ in range(times):
            self._push(
                _Action(
                    "answer",
                    for_key,
                    Answer(status=code, error_status=status, message=message),
                )
            )

    def enqueue_raw(
        self,
        body: bytes | str,
        *,
        status: int = 200,
        content_type: str = "text/html; charset=UTF-8",
        for_key: str | None = None,
    ) -> None:
        """The next request gets ``body`` verbatim (not Gemini's JSON), e.g. a proxy's page."""
        data = body.encode() if isinstance(body, str) else body
        self._push(
            _Action(
                "answer",
                for_key,
                Answer(status=status, raw_body=data, content_type=content_type),
            )
        )

    def enqueue_delay(
        self, seconds: float, *, for_key: str | None = None, then: Any = None
    ) -> None:
        """The next request is answered only after ``seconds``: with ``then`` (an object sent
        as JSON text) if given, else as if nothing were queued. The queue is not consumed by
        the late answer, so what is queued next goes to the NEXT request (e.g. the retry)."""
        answer = Answer(text=json.dumps(then)) if then is not None else None
        self._push(_Action("delay", for_key, answer, seconds=min(float(seconds), DELAY_MAX)))

    @property
    def pending(self) -> int:
        """How many queued actions are still waiting for a request."""
        with self._lock:
            return len(self._script)

    @property
    def keys_used(self) -> list[str | None]:
        return [r.key for r in self.requests]

    # -- request handling -----------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(tracking_handler(fake)):  # type: ignore[misc,valid-type]
            def do_POST(self) -> None:
                fake._handle(self)

            def do_GET(self) -> None:
                fake._handle(self)

        return Handler

    def _take(self, key: str | None) -> _Action | None:
        """The first queued action for this request: untargeted or targeted at its key."""
        with self._lock:
            for i, action in enumerate(self._script):
                if action.for_key is None or action.for_key == key:
                    del self._script[i]
                    return action
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length > BODY_MAX:
            self._respond(handler, None, self._error(413, "request too large"))
            handler.close_connection = True
            return
        body = handler.rfile.read(length) if length > 0 else b""
        req = FakeRequest(
            method=handler.command,
            path=handler.path.split("?", 1)[0],
            headers=dict(handler.headers.items()),
            body=body,
        )
        with self._lock:
            self.requests.append(req)
        reply = self._decide(req)
        if reply is None:  # stopped during a delay
            handler.close_connection = True
            return
        self._respond(handler, req, reply)

    def _error(self, code: int, message: str, status: str | None = None) -> _Reply:
        name = status or STATUS_NAMES.get(code, "UNKNOWN")
        return _Reply(code, {"error": {"code": code, "message": message, "status": name}})

    def _decide(self, req: FakeRequest) -> _Reply | None:
        match = _PATH.match(req.path)
        if not match:
            return self._error(404, f"Method not found: {req.path}", "NOT_FOUND")
        req.api_version, req.model = match.groups()
        if req.method != "POST":
            return self._error(405, "Method not allowed", "INVALID_ARGUMENT")
        key = req.key
        with self._lock:
            known = key in self._keys
            limited = key in self._rate_limited
        if not known:
            return self._error(
                400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
            )
        try:
            data = req.json()
        except (ValueError, UnicodeDecodeError):
            return self._error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT")
        if not isinstance(data, dict) or not data.get("contents"):
            return self._error(400, "* GenerateContentRequest.contents: contents is not specified")
        gen = data.get("generationConfig") or {}
        if gen.get("responseSchema") and gen.get("responseMimeType") != "application/json":
            return self._error(
                400,
                "* GenerateContentRequest.generation_config.response_schema: "
                "responseMimeType must be application/json",
            )
        if limited:  # scripted actions stay queued for requests with other keys
            return self._error(
                429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED"
            )
        action = self._take(key)
        if action is not None and action.kind == "delay":
            if self._stopping.wait(action.seconds):
                return None
        answer = action.answer if action is not None else None
        if answer is None:
            answer = self._default_answer(req)
        if answer is None:
            return self._error(500, "fake gemini: nothing queued and no responder", "INTERNAL")
        if answer.raw_body is not None:
            return _Reply(answer.status, raw=answer.raw_body, content_type=answer.content_type)
        if answer.status != 200:
            message = answer.message or f"scripted failure {answer.status}"
            return self._error(answer.status, message, answer.error_status)
        return _Reply(200, self._success(req, answer))

    def _default_answer(self, req: FakeRequest) -> Answer | None:
        if self.responder is not None:
            result = self.responder(req)
            if isinstance(result, Answer):
                return result
            if isinstance(result, str):
                return Answer(text=result)
            return Answer(text=json.dumps(result))
        if self.auto_answer:
            return Answer(text=json.dumps(example_from_schema(req.response_schema)))
        return None

    def _success(self, req: FakeRequest, answer: Answer) -> dict[str, Any]:
        text = answer.text or ""
        usage = answer.usage or {
            "promptTokenCount": max(1, len(req.prompt_text + req.system_text) // 4),
            "candidatesTokenCount": max(1, len(text) // 4),
        }
        usage = dict(usage)
        usage.setdefault(
            "totalTokenCount",
            usage.get("promptTokenCount", 0)
            + usage.get("candidatesTokenCount", 0)
            + usage.get("thoughtsTokenCount", 0),
        )
        return {
            "candidates": [
                {
                    "content": {"parts": [{"text": text}], "role": "model"},
                    "finishReason": answer.finish_reason,
                    "index": 0,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": answer.model_version or self.model_version,
            "responseId": f"fake-{len(self.requests)}",
        }

    def _respond(self, handler: BaseHTTPRequestHandler, req: FakeRequest | None, r: _Reply) -> None:
        if req is not None:
            req.status = r.status
        payload = r.raw if r.raw is not None else json.dumps(r.body).encode()
        try:
            handler.send_response(r.status)
            handler.send_header("Content-Type", r.content_type)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client gave up (timeout) before the answer
            handler.close_connection = True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Gemini API on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--key", action="append", default=[], help="accepted API key (repeat)")
    args = parser.parse_args(argv)
    fake = FakeGemini(keys=args.key or ["test-key-1"], host=args.host, port=args.port, verbose=True)
    fake.auto_answer = True
    fake.start()
    print(f"fake Gemini on {fake.base_url} (keys: {len(args.key or ['x'])}); Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
