"""Jiritsu's Datasette plugin: the IP allowlist, enforced inside the server, and a login nudge.

* ``asgi_wrapper`` (outermost: ``trylast``): a request whose peer address is not in
  ``dashboard.allowed_ips`` gets 403 before Datasette, the login page or any other plugin sees
  it. The address is the TCP peer's; ``X-Forwarded-For`` is never trusted (the server runs
  uvicorn with ``proxy_headers=False``), so a client cannot talk its way in. No configuration
  means no address is allowed (fail closed).
* The same wrapper refuses ``/-/password-tool`` (datasette-auth-passwords' hash generator is
  open to anonymous users; hashes are made with ``jiritsu dashboard hash-password``).
* ``forbidden``: an anonymous browser asking for a page is sent to ``/-/login``; data formats
  (``.json``, ``.csv``, ``_format=``) keep their plain 403.

Registered by :mod:`jiritsu.dashboard.serve` (``pm.register``), not through an entry point.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from datasette import hookimpl
from datasette.utils.asgi import Response

from jiritsu.dashboard.config import ALLOWLIST_PLUGIN

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

BLOCKED_PATHS = ("/-/password-tool",)
_DATA_SUFFIXES = (".json", ".jsono", ".csv", ".tsv")


def parse_networks(items: Iterable[str]) -> list[Network]:
    """``allowed_ips`` entries (addresses or CIDR networks) as networks; bad entries raise."""
    return [ipaddress.ip_network(str(item).strip(), strict=False) for item in items]


def client_allowed(host: str | None, networks: list[Network]) -> bool:
    """Whether the peer ``host`` is inside one of ``networks`` (IPv4-mapped IPv6 counts as v4)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in networks)


async def _refuse(send: Any, message: str) -> None:
    body = message.encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def guard(app: ASGIApp, networks: list[Network]) -> ASGIApp:
    """Wrap ``app`` so that only clients in ``networks`` reach it."""

    async def allowlisted(scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope.get("type")
        if kind in ("http", "websocket"):
            client = scope.get("client")
            if not client_allowed(client[0] if client else None, networks):
                if kind == "http":
                    await _refuse(send, "403 Forbidden: your address is not allowed\n")
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
            if kind == "http" and scope.get("path", "").rstrip("/") in BLOCKED_PATHS:
                await _refuse(send, "403 Forbidden: use `jiritsu dashboard hash-password`\n")
                return
        await app(scope, receive, send)

    return allowlisted


@hookimpl(trylast=True)
def asgi_wrapper(datasette: Any) -> Callable[[ASGIApp], ASGIApp]:
    config = datasette.plugin_config(ALLOWLIST_PLUGIN) or {}
    networks = parse_networks(config.get("allowed_ips") or [])
    return lambda app: guard(app, networks)


def _wants_data(request: Any) -> bool:
    return request.path.endswith(_DATA_SUFFIXES) or "_format" in request.args


@hookimpl(tryfirst=True)
def forbidden(datasette: Any, request: Any, message: str) -> Response | None:
    if request.actor is None and request.method == "GET" and not _wants_data(request):
        return Response.redirect(datasette.urls.path("/-/login"))
    return None
