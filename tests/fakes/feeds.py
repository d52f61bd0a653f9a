"""A loopback HTTP server for news feeds and article pages written by the tests.

Each path is scripted with what a real (or misbehaving) web server would do: a body with a
content type, an HTTP error, a late answer, a body without Content-Length (chunked, so only a
streaming cap can stop it), an endless trickle, a redirect::

    with FeedServer() as server:
        server.serve("/rss", rss_bytes, content_type="application/rss+xml")
        server.serve_status("/broken", 500)
        server.serve_delay("/slow", 10, body=rss_bytes)
        url = server.url("/rss")

Standalone (serves a directory): ``python -m tests.fakes.feeds --port 8767 --dir examples/news``.
"""

from __future__ import annotations

import argparse
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.fakes.loopback import LoopbackServer, tracking_handler

DELAY_MAX = 30.0


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    content_type: str | None = "application/rss+xml; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    chunked: bool = False
    endless: bool = False  # keep sending chunks until the client hangs up
    redirect_to: str | None = None


@dataclass
class SeenRequest:
    path: str
    headers: dict[str, str]


class FeedServer(LoopbackServer):
    """Threaded loopback HTTP server with scripted routes."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._routes: dict[str, Route] = {}
        self._connections: set[socket.socket] = set()
        self.requests: list[SeenRequest] = []
        self.verbose = verbose
        self.directory: Path | None = None
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    def url(self, path: str) -> str:
        return self.base_url + path

    # -- scripting --------------------------------------------------------------------------

    def serve(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str | None = "application/rss+xml; charset=utf-8",
        status: int = 200,
        headers: dict[str, str] | None = None,
        chunked: bool = False,
    ) -> str:
        """Serve ``body`` at ``path``; returns the URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        with self._lock:
            self._routes[path] = Route(
                status=status,
                body=data,
                content_type=content_type,
                headers=dict(headers or {}),
                chunked=chunked,
            )
        return self.url(path)

    def serve_status(self, path: str, status: int, body: bytes | str = b"error") -> str:
        return self.serve(path, body, status=status, content_type="text/plain")

    def serve_delay(self, path: str, seconds: float, body: bytes | str = b"") -> str:
        """Answer ``path`` only after ``seconds`` (the client should time out first)."""
        url = self.serve(path, body)
        with self._lock:
            self._routes[path].delay = min(float(seconds), DELAY_MAX)
        return url

    def serve_endless(self, path: str) -> str:
        """A chunked body that never ends (until the client gives up or the server stops)."""
        url = self.serve(path, b"", chunked=True)
        with self._lock:
            self._routes[path].endless = True
        return url

    def redirect(self, path: str, to: str, status: int = 302) -> str:
        with self._lock:
            self._routes[path] = Route(status=status, content_type=None, redirect_to=to)
        return self.url(path)

    def hits(self, path: str) -> int:
        return sum(1 for r in self.requests if r.path == path)

    # -- handling -----------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(tracking_handler(fake)):  # type: ignore[misc,valid-type]
            def do_GET(self) -> None:
                try:
                    fake._handle(self)
                except OSError:  # the client hung up (timeout, size cap)
                    self.close_connection = True

        return Handler

    def _route(self, path: str) -> Route | None:
        with self._lock:
            route = self._routes.get(path)
        if route is None and self.directory is not None:
            candidate = (self.directory / path.lstrip("/")).resolve()
            if candidate.is_file() and self.directory.resolve() in candidate.parents:
                return Route(body=candidate.read_bytes(), content_type="application/xml")
        return route

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        with self._lock:
            self.requests.append(SeenRequest(path, dict(h.headers.items())))
        route = self._route(path)
        if route is None:
            route = Route(status=404, body=b"not found", content_type="text/plain")
        if route.delay and self._stopping.wait(route.delay):
            h.close_connection = True
            return
        h.send_response(route.status)
        if route.redirect_to is not None:
            h.send_header("Location", route.redirect_to)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if route.content_type:
            h.send_header("Content-Type", route.content_type)
        for name, value in route.headers.items():
            h.send_header(name, value)
        if route.chunked:
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            self._send_chunked(h, route)
            return
        if "Content-Length" not in route.headers:
            h.send_header("Content-Length", str(len(route.body)))
        h.end_headers()
        h.wfile.write(route.body)

    def _send_chunked(self, h: BaseHTTPRequestHandler, route: Route) -> None:
        def chunk(data: bytes) -> None:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            h.wfile.flush()

        if route.endless:
            block = b"<!-- " + b"x" * 8000 + b" -->\n"
            while not self._stopping.is_set():
                chunk(block)
            h.close_connection = True
            return
        for start in range(0, len(route.body), 4096):
            chunk(route.body[start : start + 4096])
        h.wfile.write(b"0\r\n\r\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve feed files on loopback.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--dir", default=".", help="directory whose files are served")
    args = parser.parse_args(argv)
    server = FeedServer(args.host, args.port, verbose=True)
    server.directory = Path(args.dir)
    server.start()
    print(f"serving {server.directory} on {server.base_url}; Ctrl-C stops")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
