"""The loopback HTTPS server of the fake Bybit: TLS, HMAC authentication, rate-limit headers,
fault injection, the request log, and the :class:`FakeBybit` facade tests talk to."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
import re
import shutil
import socket
import ssl
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from ..tls import make_tls_files
from .api import ROUTES
from .candles import MINUTE_MS, PricePath
from .engine import (
    Account,
    ApiError,
    ApiKeySettings,
    Exchange,
    Execution,
    Instrument,
    ListingLag,
    Order,
    Position,
    Transfer,
)

log = logging.getLogger(__name__)

PRE_FAULTS = ("timeout", "drop", "non_json", "ret_code")
POST_FAULTS = ("accept_then_drop", "accept_then_timeout")
_HTTP_FAULT = re.compile(r"^(accept_then_)?http_(\d{3})$")
_FAULT_ALIASES = {"accept_then_500": "accept_then_http_500"}
_DEFAULT_RET_MSGS = {
    10001: "params error",
    10002: "invalid request, please check your server timestamp or recv_window param",
    10003: "API key is invalid.",
    10004: "error sign!",
    10005: "Permission denied, please check your API key permissions.",
    10006: "Too many visits!",
    10010: "Unmatched IP, please check your API key's bound IP addresses.",
    10016: "Server error.",
    110001: "order not exists or too late to cancel",
    110007: "ab not enough for new order",
    110072: "OrderLinkedID is duplicate",
    131212: "Insufficient balance",
    131214: "TransferId exist",
    131228: "your balance is not enough",
    131230: "System busy, please try again later",
    170131: "Insufficient balance.",
    33004: "Your api key has expired.",
}
MAX_BODY = 1 << 20


@dataclass
class Fault:
    """A scripted failure for requests to ``path`` ("*" = any path). ``fired`` counts uses."""

    path: str
    kind: str
    times: int | None
    method: str | None = None
    account: str | None = None
    status: int | None = None
    ret_code: int | None = None
    ret_msg: str | None = None
    reset_in_ms: int | None = None
    seconds: float | None = None
    fired: int = 0

    @property
    def remaining(self) -> int | None:
        return None if self.times is None else max(self.times - self.fired, 0)


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it, and what it did with it."""

    time: int  # server wall clock (ms) when received
    method: str
    path: str
    raw_query: str
    params: dict
    body: bytes
    headers: dict[str, str]
    status: int | None  # HTTP status sent; None when the connection was dropped unanswered
    ret_code: int | None  # retCode sent (or that would have been sent, for accept_then_*)
    account: str | None  # account name when the API key was known
    fault: str | None  # kind of the injected fault, if one fired
    processed: bool  # the business logic ran (state may have changed)


@dataclass
class _Outcome:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    ret_code: int | None = None
    account: str | None = None
    processed: bool = False
    content_type: str = "application/json"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], fake: FakeBybit) -> None:
        self.fake = fake
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        t = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="fake-bybit-conn",
            daemon=True,
        )
        self.fake._track_thread(t)
        t.start()

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        log.debug("fake bybit: connection error from %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeBybit/1.0"
    sys_version = ""
    timeout = 30  # idle keep-alive connections end by themselves
    server: _Server

    def setup(self) -> None:
        raw = self.request
        raw.settimeout(5)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK stalls
        self.request = self.server.fake._ssl_context.wrap_socket(raw, server_side=True)
        self.server.fake._track_conn(self.request, add=True)
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track_conn(self.request, add=False)
            try:
                self.request.close()
            except OSError:
                pass

    def do_GET(self) -> None:
        self.server.fake._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.fake._handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.fake._handle(self, "DELETE")

    def log_message(self, format: str, *args: object) -> None:
        log.debug("fake bybit: " + format, *args)


class FakeBybit:
    """A loopback HTTPS fake of the Bybit V5 REST API.

    Use it as a context manager (or ``start()``/``stop()``), then point pybit at it::

        session = HTTP(api_key=..., api_secret=..., testnet=True)
        session.endpoint = fake.endpoint
        session.client.verify = fake.ca_path
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_dir: Path | str | None = None,
        tls_backend: str = "auto",
    ) -> None:
        self.exchange = Exchange()
        self._host = host
        self._port = port
        self._cert_dir = Path(cert_dir) if cert_dir is not None else None
        self._own_cert_dir: Path | None = None
        self._tls_backend = tls_backend
        self._server: _Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._track_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._faults: list[Fault] = []
        self._rate_windows: dict[tuple[object, str, str], list[int]] = {}
        self._ssl_context: ssl.SSLContext
        self.ca_path = ""  # str on purpose: requests only honours a str `verify` everywhere
        self.internal_errors: list[str] = []
        # knobs tests may change
        self.skew_ms = 0  # server wall clock = real time + skew_ms (auth rule, /v5/market/time)
        self.timeout_fault_seconds = 2.0
        self.enforce_rate_limits = True
        self.rate_limits: dict[str | tuple[str, str], int] = {  # per UID per second
            "/v5/order/create": 10,
            "/v5/order/cancel": 10,
            ("/v5/order/create", "spot"): 20,
            ("/v5/order/cancel", "spot"): 20,
        }

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeBybit:
        if self._server is not None:
            return self
        cert_dir = self._cert_dir
        if cert_dir is None:
            cert_dir = self._own_cert_dir = Path(tempfile.mkdtemp(prefix="fake-bybit-tls-"))
        files = make_tls_files(cert_dir, backend=self._tls_backend)
        self._ssl_context = files.server_context()
        self.ca_path = str(files.ca_path)
        self._stopping.clear()
        self._server = _Server((self._host, self._port), self)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-bybit-server",
            daemon=True,
        )
        self._serve_thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._track_lock:
            conns = list(self._conns)
            threads = list(self._threads)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._serve_thread is not None:
            self._serve_thread.join(max(0.0, deadline - time.monotonic()))
        self._server = None
        if self._own_cert_dir is not None:
            shutil.rmtree(self._own_cert_dir, ignore_errors=True)
            self._own_cert_dir = None

    def __enter__(self) -> FakeBybit:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake is not running")
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"https://{self._host}:{self.port}"

    def _track_conn(self, conn: socket.socket, *, add: bool) -> None:
        with self._track_lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def _track_thread(self, t: threading.Thread) -> None:
        with self._track_lock:
            self._threads = {x for x in self._threads if x.is_alive()}
            self._threads.add(t)

    # ------------------------------------------------------------------ setup API
    def add_account(
        self,
        name: str,
        uid: int,
        key: str,
        secret: str,
        usdt: Decimal | str | int = 0,
        master: bool = False,
        *,
        fund_usdt: Decimal | str | int = 0,
        coins: dict[str, Decimal | str | int] | None = None,
        fund_coins: dict[str, Decimal | str | int] | None = None,
        username: str | None = None,
        api_key: ApiKeySettings | None = None,
    ) -> Account:
        """Add the main account (``master=True``, at most one) or a sub-account. ``usdt`` and
        ``coins`` fund the UNIFIED wallet, ``fund_usdt``/``fund_coins`` the FUND wallet;
        ``api_key``: the key's permissions, IP binding and expiry (default: read-write, any IP,
        no expiry)."""
        unified = {c: Decimal(str(v)) for c, v in (coins or {}).items()}
        unified["USDT"] = unified.get("USDT", Decimal(0)) + Decimal(str(usdt))
        fund = {c: Decimal(str(v)) for c, v in (fund_coins or {}).items()}
        fund["USDT"] = fund.get("USDT", Decimal(0)) + Decimal(str(fund_usdt))
        account = Account(
            name=name,
            uid=int(uid),
            api_key=key,
            api_secret=secret,
            master=master,
            unified=unified,
            fund=fund,
            username=username or name,
            key=api_key or ApiKeySettings(),
        )
        with self.exchange.lock:
            return self.exchange.add_account(account)

    def set_balance(
        self, account: str, coin: str, amount: Decimal | str | int, account_type: str = "UNIFIED"
    ) -> None:
        with self.exchange.lock:
            acct = self.exchange.account(account)
            wallet = acct.unified if account_type == "UNIFIED" else acct.fund
            wallet[coin] = Decimal(str(amount))

    def add_instrument(self, instrument: Instrument) -> None:
        with self.exchange.lock:
            self.exchange.instruments[(instrument.category, instrument.symbol)] = instrument

    def set_price_path(self, symbol: str, candles: Iterable[Sequence[object]]) -> None:
        """1-minute rows ``(ts_ms, open, high, low, close, volume[, turnover])``; used by both
        the linear and the spot instrument of that symbol."""
        path = PricePath(symbol, candles)
        with self.exchange.lock:
            self.exchange.set_price_path(path)

    @property
    def clock(self) -> int:
        """The simulated market "now" (ms); follows real time until a test sets it."""
        with self.exchange.lock:
            return self.exchange.now()

    @clock.setter
    def clock(self, ms: int | None) -> None:
        with self.exchange.lock:
            self.exchange.set_clock(ms)

    def advance(self, minutes: float = 0, seconds: float = 0, ms: int = 0) -> int:
        """Move the pinned market clock forward, filling and triggering along the way."""
        with self.exchange.lock:
            if not self.exchange.pinned:
                raise RuntimeError("the clock follows real time; set fake.clock first")
            target = self.exchange.now() + int(minutes * MINUTE_MS + seconds * 1000 + ms)
            self.exchange.set_clock(target)
            return target

    @property
    def spread_ticks(self) -> int:
        return self.exchange.spread_ticks

    @spread_ticks.setter
    def spread_ticks(self, ticks: int) -> None:
        self.exchange.spread_ticks = ticks

    @property
    def fee_rates(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Per category ``(taker, maker)``."""
        return self.exchange.fee_rates

    def lag_executions(self, queries: int = 0, ms: int = 0) -> None:
        """Realistic lag of the execution list after a fill (off: both 0, the default): a fill
        is missed by its account's next ``queries`` ``/v5/execution/list`` requests and by any
        before ``ms`` of wall time have passed; orders, positions and wallet balances show the
        fill at once, as Bybit's do. A new lag applies to every fill not listed yet:
        ``lag_executions()`` lets the list catch up."""
        if queries < 0 or ms < 0:
            raise ValueError("an execution-list lag cannot be negative")
        with self.exchange.lock:
            self.exchange.listing_lag = ListingLag(queries, ms)

    def server_time_ms(self) -> int:
        return int(time.time() * 1000) + self.skew_ms

    # ------------------------------------------------------------------ faults
    def inject(
        self,
        path: str,
        fault: str,
        times: int | None = 1,
        *,
        method: str | None = None,
        account: str | None = None,
        status: int | None = None,
        ret_code: int | None = None,
        ret_msg: str | None = None,
        reset_in_ms: int | None = None,
        seconds: float | None = None,
    ) -> Fault:
        """Script a failure for the next ``times`` requests to ``path`` (None = every request).

        Faults: ``http_NNN`` (any status, HTML body), ``timeout`` (hold the request for
        ``seconds``, then drop it), ``drop`` (close without answering), ``non_json`` (200 with an
        HTML body), ``ret_code`` (the envelope with ``ret_code``; ``reset_in_ms`` sets
        X-Bapi-Limit-Reset-Timestamp relative to now, negative = in the past), and the ones that
        first PROCESS the request: ``accept_then_drop``, ``accept_then_timeout``,
        ``accept_then_500`` / ``accept_then_http_NNN``.
        """
        kind = _FAULT_ALIASES.get(fault, fault)
        m = _HTTP_FAULT.match(kind)
        if m:
            status = int(m.group(2))
        elif kind not in PRE_FAULTS + POST_FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        if kind == "ret_code" and ret_code is None:
            raise ValueError("the ret_code fault needs ret_code=")
        if kind == "ret_code" and ret_code == 10006 and reset_in_ms is None:
            reset_in_ms = 200
        f = Fault(
            path=path,
            kind=kind,
            times=times,
            method=method,
            account=account,
            status=status,
            ret_code=ret_code,
            ret_msg=ret_msg,
            reset_in_ms=reset_in_ms,
            seconds=seconds,
        )
        with self._log_lock:
            self._faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._log_lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str, account: str | None) -> Fault | None:
        with self._log_lock:
            for f in self._faults:
                if f.remaining == 0:
                    continue
                if f.path not in ("*", path):
                    continue
                if f.method is not None and f.method != method:
                    continue
                if f.account is not None and f.account != account:
                    continue
                f.fired += 1
                return f
        return None

    # ------------------------------------------------------------------ inspectors
    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._log_lock:
            self._requests.clear()

    @property
    def orders(self) -> list[Order]:
        with self.exchange.lock:
            self.exchange.sync()
            return [copy.copy(o) for o in self.exchange.orders]

    @property
    def executions(self) -> list[Execution]:
        with self.exchange.lock:
            self.exchange.sync()
            return [copy.copy(e) for e in self.exchange.executions]

    @property
    def transfers(self) -> list[Transfer]:
        with self.exchange.lock:
            return [copy.copy(t) for t in self.exchange.transfers]

    def positions(self, account: str) -> list[Position]:
        """Open (non-zero) linear positions of the account."""
        with self.exchange.lock:
            self.exchange.sync()
            acct = self.exchange.account(account)
            return [copy.deepcopy(p) for p in acct.positions.values() if p.size > 0]

    def balance(self, account: str, coin: str = "USDT", account_type: str = "UNIFIED") -> Decimal:
        with self.exchange.lock:
            self.exchange.sync()
            acct = self.exchange.account(account)
            wallet = acct.unified if account_type == "UNIFIED" else acct.fund
            return wallet.get(coin, Decimal(0))

    # ------------------------------------------------------------------ request handling
    def _handle(self, handler: _Handler, method: str) -> None:
        received = self.server_time_ms()
        path, _, raw_query = handler.path.partition("?")
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(min(length, MAX_BODY)) if length else b""
        headers = {k: v for k, v in handler.headers.items()}
        api_key = handler.headers.get("X-BAPI-API-KEY")
        with self.exchange.lock:
            known = self.exchange.account_by_key(api_key) if api_key else None
        account_name = known.name if known else None
        params = self._parse_params(method, raw_query, body)
        fault = self._take_fault(method, path, account_name)

        def record(status: int | None, ret_code: int | None, processed: bool, acct: str | None):
            rec = RequestRecord(
                time=received,
                method=method,
                path=path,
                raw_query=raw_query,
                params=params if isinstance(params, dict) else {},
                body=body,
                headers=headers,
                status=status,
                ret_code=ret_code,
                account=acct,
                fault=fault.kind if fault else None,
                processed=processed,
            )
            with self._log_lock:
                self._requests.append(rec)

        # The log entry is written BEFORE the wire action, so a client that got its answer
        # always finds its request in fake.requests.
        if fault is not None and not fault.kind.startswith("accept_then_"):
            self._pre_fault(handler, fault, lambda st, rc: record(st, rc, False, account_name))
            return

        outcome = self._dispatch(method, path, raw_query, body, handler)
        done = (outcome.ret_code, outcome.processed, outcome.account)
        if fault is None:
            record(outcome.status, *done)
            self._send(handler, outcome.status, outcome.body, outcome.headers, outcome.content_type)
        elif fault.kind == "accept_then_drop":
            record(None, *done)
            self._drop(handler)
        elif fault.kind == "accept_then_timeout":
            record(None, *done)
            self._stopping.wait(self._fault_seconds(fault))
            self._drop(handler)
        else:  # accept_then_http_NNN
            assert fault.status is not None
            record(fault.status, *done)
            self._send_html(handler, fault.status)

    @staticmethod
    def _parse_params(method: str, raw_query: str, body: bytes) -> object:
        if method == "GET":
            return dict(parse_qsl(raw_query, keep_blank_values=True))
        if not body:
            return {}
        try:
            return json.loads(body)
        except ValueError:
            return None

    def _fault_seconds(self, fault: Fault) -> float:
        return fault.seconds if fault.seconds is not None else self.timeout_fault_seconds

    def _pre_fault(
        self, handler: _Handler, fault: Fault, record: Callable[[int | None, int | None], None]
    ) -> None:
        if fault.kind == "drop":
            record(None, None)
            self._drop(handler)
        elif fault.kind == "timeout":
            record(None, None)
            self._stopping.wait(self._fault_seconds(fault))
            self._drop(handler)
        elif fault.kind == "non_json":
            body = (
                b"<!DOCTYPE html><html><head><title>Bybit</title></head>"
                b"<body><h1>System maintenance</h1></body></html>"
            )
            record(200, None)
            self._send(handler, 200, body, self._window("ip", None, "*")[0], "text/html")
        elif fault.kind == "ret_code":
            assert fault.ret_code is not None
            msg = fault.ret_msg or _DEFAULT_RET_MSGS.get(fault.ret_code, "fake injected error")
            headers = self._window("ip", None, "*")[0]
            if fault.reset_in_ms is not None:
                headers["X-Bapi-Limit-Status"] = "0"
                headers["X-Bapi-Limit-Reset-Timestamp"] = str(
                    self.server_time_ms() + fault.reset_in_ms
                )
            record(200, fault.ret_code)
            self._send(handler, 200, self._envelope(fault.ret_code, msg, {}), headers)
        else:  # http_NNN
            assert fault.status is not None
            record(fault.status, None)
            self._send_html(handler, fault.status)

    def _dispatch(
        self, method: str, path: str, raw_query: str, body: bytes, handler: _Handler
    ) -> _Outcome:
        route = ROUTES.get((method, path))
        if route is None:
            headers = self._window(handler.client_address[0], None, path)[0]
            return _Outcome(404, b"404 page not found", headers, content_type="text/plain")
        with self.exchange.lock:
            acct: Account | None = None
            if route.auth:
                acct, err = self._authenticate(method, raw_query, body, handler)
                if err is not None:
                    return self._error(err, None, self._window("ip", None, path)[0])
            params = self._parse_params(method, raw_query, body)
            if not isinstance(params, dict):
                err = ApiError(10001, "params error: the body must be a JSON object")
                return self._error(err, acct, self._window("ip", None, path)[0])
            category = params.get("category")
            category = category if isinstance(category, str) else None
            owner = acct.uid if acct else handler.client_address[0]
            headers, over = self._window(owner, acct, path, category, count=True)
            if over:
                return _Outcome(
                    200,
                    self._envelope(10006, "Too many visits!", {}),
                    headers,
                    ret_code=10006,
                    account=acct.name if acct else None,
                )
            try:
                if path == "/v5/market/time":
                    wall = self.server_time_ms()
                    result: dict = {"timeSecond": str(wall // 1000), "timeNano": str(wall * 10**6)}
                else:
                    self.exchange.sync()
                    result = route.handler(self.exchange, acct, params)
            except ApiError as e:
                return self._error(e, acct, headers, processed=True)
            except Exception:
                tb = traceback.format_exc()
                self.internal_errors.append(tb)
                log.error("fake bybit internal error on %s %s\n%s", method, path, tb)
                err = ApiError(10016, "Server error.")
                return self._error(err, acct, headers, processed=True)
            return _Outcome(
                200,
                self._envelope(0, route.ret_msg, result),
                headers,
                ret_code=0,
                account=acct.name if acct else None,
                processed=True,
            )

    def _error(
        self,
        err: ApiError,
        acct: Account | None,
        headers: dict[str, str],
        *,
        processed: bool = False,
    ) -> _Outcome:
        return _Outcome(
            200,
            self._envelope(err.ret_code, err.ret_msg, {}),
            headers,
            ret_code=err.ret_code,
            account=acct.name if acct else None,
            processed=processed,
        )

    def _envelope(self, ret_code: int, ret_msg: str, result: dict) -> bytes:
        return json.dumps(
            {
                "retCode": ret_code,
                "retMsg": ret_msg,
                "result": result,
                "retExtInfo": {},
                "time": self.server_time_ms(),
            }
        ).encode()

    def _authenticate(
        self, method: str, raw_query: str, body: bytes, handler: _Handler
    ) -> tuple[Account | None, ApiError | None]:
        h = handler.headers
        key = h.get("X-BAPI-API-KEY")
        acct = self.exchange.account_by_key(key) if key else None
        if acct is None:
            return None, ApiError(10003, "API key is invalid.")
        ts_raw = h.get("X-BAPI-TIMESTAMP") or ""
        rw_raw = h.get("X-BAPI-RECV-WINDOW") or "5000"
        if not ts_raw.isdigit() or not rw_raw.isdigit():
            return acct, ApiError(10002, _DEFAULT_RET_MSGS[10002])
        ts, rw = int(ts_raw), int(rw_raw)
        server = self.server_time_ms()
        if not server - rw <= ts < server + 1000:
            return acct, ApiError(
                10002,
                "invalid request, please check your server timestamp or recv_window param. "
                f"req_timestamp[{ts}],server_timestamp[{server}],recv_window[{rw}]",
            )
        sign = h.get("X-BAPI-SIGN") or ""
        sign_type = h.get("X-BAPI-SIGN-TYPE")
        payload = raw_query.encode() if method == "GET" else body
        origin = f"{ts_raw}{key}{rw_raw}".encode() + payload
        expected = hmac.new(acct.api_secret.encode(), origin, hashlib.sha256).hexdigest()
        if sign_type not in (None, "2") or not hmac.compare_digest(expected, sign):
            return acct, ApiError(
                10004, f"error sign! origin_string[{origin.decode('utf-8', 'replace')}]"
            )
        key_settings = acct.key
        if "*" not in key_settings.ips and handler.client_address[0] not in key_settings.ips:
            return acct, ApiError(10010, _DEFAULT_RET_MSGS[10010])
        if key_settings.expires_at_ms is not None and server >= key_settings.expires_at_ms:
            return acct, ApiError(33004, _DEFAULT_RET_MSGS[33004])
        if key_settings.read_only and method == "POST":
            return acct, ApiError(10005, _DEFAULT_RET_MSGS[10005])
        return acct, None

    # ------------------------------------------------------------------ rate limits
    def _limit_for(
        self, acct: Account | None, path: str, category: str | None
    ) -> tuple[int, int, bool]:
        """(limit, window_ms, enforced) for a request."""
        if acct is None:
            return 600, 5000, False  # per IP
        limit = self.rate_limits.get((path, category)) if category else None
        if limit is None:
            limit = self.rate_limits.get(path)
        if limit is None:
            return 50, 1000, False
        return limit, 1000, self.enforce_rate_limits

    def _window(
        self,
        owner: object,
        acct: Account | None,
        path: str,
        category: str | None = None,
        *,
        count: bool = False,
    ) -> tuple[dict[str, str], bool]:
        """The X-Bapi-Limit-* headers for ``owner`` (uid or client IP); counts the request when
        ``count``. Returns (headers, over the enforced limit)."""
        limit, window, enforced = self._limit_for(acct, path, category)
        key = (owner, path, category or "")
        now = self.server_time_ms()
        with self._log_lock:
            slot = self._rate_windows.get(key)
            if slot is None or now >= slot[0] + window:
                slot = self._rate_windows[key] = [now, 0]
            if count:
                slot[1] += 1
            start, used = slot
        headers = {
            "X-Bapi-Limit-Status": str(max(limit - used, 0)),
            "X-Bapi-Limit": str(limit),
            # never already past when it leaves: pybit sleeps (reset - its clock) on 10006
            "X-Bapi-Limit-Reset-Timestamp": str(max(start + window, now + 50)),
        }
        return headers, enforced and used > limit

    # ------------------------------------------------------------------ wire helpers
    @staticmethod
    def _send(
        handler: _Handler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        content_type: str = "application/json",
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.end_headers()
            handler.wfile.write(body)
            handler.wfile.flush()
        except OSError:
            handler.close_connection = True

    def _send_html(self, handler: _Handler, status: int) -> None:
        from http import HTTPStatus

        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        body = f"<html><body><h1>{status} {phrase}</h1></body></html>".encode()
        self._send(handler, status, body, self._window("ip", None, "*")[0], "text/html")

    @staticmethod
    def _drop(handler: _Handler) -> None:
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
