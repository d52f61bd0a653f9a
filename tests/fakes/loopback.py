"""The lifecycle every loopback fake shares: serve on a thread, stop cleanly.

A fake sets ``_server`` (a ThreadingHTTPServer), ``_thread = None``, ``_lock``, ``_stopping``
(an Event its queued delays wait on) and ``_connections`` (sockets its handler tracks), and
optionally ``_tls`` (truthy when the socket is wrapped for HTTPS).
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

S = TypeVar("S", bound="LoopbackServer")


class LoopbackServer:
    _server: ThreadingHTTPServer
    _thread: threading.Thread | None
    _lock: threading.Lock
    _stopping: threading.Event
    _connections: set[socket.socket]

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        scheme = "https" if getattr(self, "_tls", None) is not None else "http"
        return f"{scheme}://{host}:{port}"

    def start(self: S) -> S:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake queued delays and drop open keep-alive connections."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.server_close()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def tracking_handler(fake: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    """A request handler base that registers its connection with ``fake`` (so :meth:`stop` can
    drop it) and logs only when ``fake.verbose``."""

    class TrackingHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # idle keep-alive connections do not hold a thread forever

        def setup(self) -> None:
            super().setup()
            with fake._lock:
                fake._connections.add(self.connection)

        def finish(self) -> None:
            with fake._lock:
                fake._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, format: str, *args: Any) -> None:
            if getattr(fake, "verbose", False):
                super().log_message(format, *args)

    return TrackingHandler
