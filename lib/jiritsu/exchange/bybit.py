"""Bybit (mainnet, testnet, demo trading) through the official ``pybit`` client.

One pybit session per account: ``MAIN`` with the master key (transfers, sub-account queries, the
FUND wallet), every sub-bot with its own key (its trading), plus one key-less session for market
data. pybit's own retrying is switched off (``max_retries=1``, ``retry_codes`` emptied AFTER
construction: an empty set passed to the constructor is silently replaced by pybit's defaults),
so every retry decision is ours (:mod:`jiritsu.exchange.retry`) and pybit's sleeps -- including
its crash on a rate-limit reset time in the past -- never run.

Idempotency: an order is sent with its deterministic ``orderLinkId``; when a retry (or a restart)
re-sends it, Bybit answers 110072 and we return the order that already exists. Transfers
likewise: 131214 means the ``transferId`` was already used, and we return that transfer.

Secrets: keys are registered with :mod:`jiritsu.redact`, and every log line and error message
goes through :func:`~jiritsu.redact.redact` (Bybit echoes the signed string, API key included, in
its 10004 message). Exceptions are raised ``from None`` so pybit's unredacted text is not chained.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import requests
from pybit.exceptions import FailedRequestError, InvalidRequestError

from jiritsu.clock import wall_now
from jiritsu.errors import UsageError
from jiritsu.exchange.base import Exchange
from jiritsu.exchange.errors import (
    AuthError,
    ExchangeError,
    ExchangeUnavailable,
    InsufficientBalance,
    NotFound,
    OrderRejected,
    RateLimited,
)
from jiritsu.exchange.ids import is_valid_client_order_id
from jiritsu.exchange.retry import Retrier, RetryPolicy, Verdict
from jiritsu.exchange.types import (
    CATEGORIES,
    MAIN,
    ORDER_STATUS_FROM_BYBIT,
    Balance,
    Category,
    Fill,
    Instrument,
    OrderRequest,
    OrderState,
    Position,
    SubAccount,
    Ticker,
    TransferRequest,
    TransferResult,
    one_of,
)
from jiritsu.redact import redact, register_secret

if TYPE_CHECKING:
    import polars as pl
    from pybit.unified_trading import HTTP

    from jiritsu.config import LoadedConfig

log = logging.getLogger(__name__)

HOSTS: dict[str, str] = {
    "production": "https://api.bybit.com",
    "testnet": "https://api-testnet.bybit.com",
    "demo": "https://api-demo.bybit.com",
}

# retCodes (see /work/shared/notes/external-apis.md and Bybit's error-code pages)
RATE_LIMIT_CODES = frozenset({10006, 10018})
RETRY_CODES = frozenset({10002, 10016, 10000, 131230, 170007})
AUTH_CODES = frozenset({10003, 10004, 10005, 10007, 10009, 10010, 33004})
INSUFFICIENT_CODES = frozenset({110004, 110007, 110012, 110045, 170131, 131212, 131228})
DUPLICATE_ORDER = 110072
DUPLICATE_TRANSFER = 131214
ORDER_GONE = frozenset({110001, 170213})
LEVERAGE_NOT_MODIFIED = 110043
TPSL_NOT_MODIFIED = 34040
MAX_RECV_WINDOW_MS = 60_000
RECV_WINDOW_STEP_MS = 2_500
IP_BAN_SECONDS = 600.0  # HTTP 403: Bybit bans the IP for 10+ minutes

ZERO = Decimal(0)
SEVEN_DAYS = timedelta(days=7)
EXECUTION_HISTORY = timedelta(days=730)  # Bybit keeps two years of executions
MAX_PAGES = 200  # per query window; 200 * 100 executions is far beyond one tick's needs

TRANSFER_STATUS: dict[str, Literal["success", "pending", "failed", "unknown"]] = {
    "SUCCESS": "success",
    "PENDING": "pending",
    "FAILED": "failed",
    "STATUS_UNKNOWN": "unknown",
}
# Decimals a universal transfer amount may carry; rounding DOWN to fewer than Bybit allows only
# drops dust, while more would be refused (131210), so the stablecoins get a safe 4.
TRANSFER_DECIMALS: dict[str, int] = {"USDT": 4, "USDC": 4}
DEFAULT_TRANSFER_DECIMALS = 8
_SUB_STATUS = {1: "normal", 2: "login_banned", 4: "frozen"}

_CATCH: tuple[type[BaseException], ...] = (
    InvalidRequestError,
    FailedRequestError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,  # includes SSLError and ConnectTimeout
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


# --------------------------------------------------------------------------- small helpers


def _dec(value: Any, default: Decimal | None = None) -> Decimal | None:
    """A Bybit number (always a string on the wire); "" and None give ``default``."""
    if value is None or value == "":
        return default
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return d


def _req_dec(value: Any) -> Decimal:
    d = _dec(value)
    if d is None:
        raise ValueError("missing number")
    return d


def _d(value: Any, default: Decimal = ZERO) -> Decimal:
    d = _dec(value)
    return default if d is None else d


def _positive_or_none(value: Any) -> Decimal | None:
    """TP/SL and average prices: Bybit writes "0" or "" for "not set"."""
    d = _dec(value)
    return d if d is not None and d > 0 else None


def _ms_to_dt(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=timezone.utc)


def _dt_to_ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise UsageError("times must be timezone-aware (UTC)")
    return int(when.timestamp() * 1000)


def _num(value: Decimal) -> str:
    """A Decimal as Bybit wants it: plain notation, no exponent, no trailing zeros."""
    return format(value.normalize(), "f")


def _category(category: str) -> Category:
    try:
        return one_of(category, CATEGORIES, "category")
    except ValueError:
        raise UsageError(f"unsupported category {category!r}; use 'linear' or 'spot'") from None


def _normalize_symbol(symbol: str) -> str:
    from jiritsu.market.symbols import normalize_symbol

    return normalize_symbol(symbol)


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return str(value) if value is not None else None


def _reset_ms(headers: Any) -> int | None:
    """X-Bapi-Limit-Reset-Timestamp (epoch ms) when present and numeric."""
    raw = _header(headers, "X-Bapi-Limit-Reset-Timestamp")
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw.strip())


def is_loopback_host(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and localhost: the only hosts plain http (or no TLS check) may reach."""
    from jiritsu.config.base import is_loopback_host as _is_loopback

    return _is_loopback(host)


def resolve_endpoint(environment: str, base_url: str = "") -> str:
    """The REST base URL: ``base_url`` when given (https, or http on loopback), else the
    official host of the environment."""
    if base_url:
        try:
            parts = urlsplit(base_url)
            host = parts.hostname
        except ValueError:
            raise UsageError("exchange.base_url is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not host:
            raise UsageError("exchange.base_url must be an https:// URL")
        if parts.scheme == "http" and not is_loopback_host(host):
            raise UsageError(
                "exchange.base_url must use https (plain http is allowed only for loopback "
                "addresses such as 127.0.0.1)"
            )
        return base_url.rstrip("/")
    try:
        return HOSTS[environment]
    except KeyError:
        raise UsageError(
            f"environment {environment!r} has no Bybit host (use testnet, demo or production)"
        ) from None


def _transfer_amount(coin: str, amount: Decimal) -> Decimal:
    places = TRANSFER_DECIMALS.get(coin, DEFAULT_TRANSFER_DECIMALS)
    return Decimal(amount).quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN)


@dataclass(frozen=True)
class ApiKeyInfo:
    """What Bybit says about an API key (``GET /v5/user/query-api``), for ``jiritsu doctor``."""

    user_id: int
    is_master: bool
    read_only: bool
    permissions: dict[str, tuple[str, ...]]
    ips: tuple[str, ...]  # ("*",): not bound to an IP
    expires_at: datetime | None
    parent_uid: int | None
    note: str

    def allows(self, group: str, permission: str) -> bool:
        return permission in self.permissions.get(group, ())


@dataclass(frozen=True)
class AccountKeys:
    """One account's API key and secret; ``repr`` never shows them."""

    api_key: str
    api_secret: str

    def __repr__(self) -> str:
        return "AccountKeys(<hidden>)"


# --------------------------------------------------------------------------- the exchange


class BybitExchange(Exchange):
    """The live exchange. Accounts: :data:`MAIN` and each sub-bot by name."""

    name = "bybit"

    def __init__(
        self,
        *,
        environment: str,
        credentials: Mapping[str, AccountKeys],
        missing_keys: Mapping[str, str] | None = None,
        base_url: str = "",
        member_ids: Mapping[str, int] | None = None,
        leverage: int = 1,
        timeout: float = 10.0,
        recv_window_ms: int = 5000,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        random: Callable[[], float] | None = None,
        verify: str | bool | None = None,
    ) -> None:
        """``missing_keys`` maps an account without credentials to the variable names to set
        (used only in the error raised when that account is used). ``verify`` (a CA file, or
        False on loopback only) is for tests against the loopback fake."""
        self.environment = environment
        self.endpoint = resolve_endpoint(environment, base_url)
        host = urlsplit(self.endpoint).hostname
        if verify is False and not is_loopback_host(host):
            raise UsageError("TLS verification may only be disabled for a loopback base_url")
        self._verify = verify
        self._timeout = float(timeout)
        self._recv_window = int(recv_window_ms)
        self._leverage = int(leverage)
        retrier = Retrier(policy=retry_policy or RetryPolicy())
        if sleep is not None:
            retrier.sleep = sleep
        if clock is not None:
            retrier.clock = clock
        if random is not None:
            retrier.random = random
        self._retrier = retrier
        self._missing = dict(missing_keys or {})
        self._member_ids: dict[str, int] = dict(member_ids or {})
        self._sessions: dict[str, HTTP] = {}
        self._locks: dict[str, threading.Lock] = {}
        for account, keys in credentials.items():
            register_secret(keys.api_key)
            register_secret(keys.api_secret)
            self._sessions[account] = self._make_session(keys)
            self._locks[account] = threading.Lock()
        self._public = self._make_session(None)
        self._public_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._instruments: dict[tuple[str, str], Instrument] = {}
        self._leverage_done: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_config(
        cls,
        loaded: LoadedConfig,
        *,
        require_keys: bool = True,
        verify: str | bool | None = None,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] | None = None,
        random: Callable[[], float] | None = None,
        public: bool = False,
    ) -> BybitExchange:
        """Build from the configuration; keys come from the variables it names. Called by
        :mod:`jiritsu.runtime` only.

        With ``require_keys`` (the default) a missing master key or a missing key of an enabled
        bot is a UsageError naming the variables (never a value). Without it (market-data-only
        commands) the error comes when that account is first used. ``public``: Bybit's public
        market data only (klines, tickers, instruments; no key): paper trading's candles are
        real, so paper reads mainnet (or ``exchange.base_url``).
        """
        settings = loaded.settings
        environment = settings.general.environment
        ex = settings.exchange

        def build(
            environment: str,
            credentials: dict[str, AccountKeys],
            missing: dict[str, str] | None = None,
            member_ids: dict[str, int] | None = None,
        ) -> BybitExchange:
            """The client with the configured connection settings and the test seams."""
            return cls(
                environment=environment,
                credentials=credentials,
                missing_keys=missing,
                base_url=ex.base_url,
                member_ids=member_ids,
                leverage=ex.leverage,
                timeout=ex.request_timeout_seconds,
                recv_window_ms=ex.recv_window_ms,
                retry_policy=RetryPolicy(max_retries=ex.max_retries),
                sleep=sleep,
                clock=clock,
                random=random,
                verify=verify,
            )

        if public:
            return build("production" if environment == "paper" else environment, {})
        if environment == "paper":
            raise UsageError("paper mode does not talk to Bybit; use jiritsu.runtime")
        api = settings.api_keys
        credentials: dict[str, AccountKeys] = {}
        missing: dict[str, str] = {}
        required: list[str] = []
        master = loaded.secrets.bybit_master()
        if master:
            credentials[MAIN] = AccountKeys(*master)
        else:
            missing[MAIN] = f"{api.bybit_master_key_env} and {api.bybit_master_secret_env}"
            required.append(f"the master account ({missing[MAIN]})")
        member_ids: dict[str, int] = {}
        if settings.master_bot.main_member_id:
            member_ids[MAIN] = settings.master_bot.main_member_id
        for bot in settings.sub_bots:
            if bot.name == MAIN:
                raise UsageError(f"a sub-bot may not be called {MAIN!r}: it names the master")
            pair = loaded.secrets.bybit_bot(bot.name)
            if pair:
                credentials[bot.name] = AccountKeys(*pair)
            else:
                missing[bot.name] = f"{bot.api_key_env} and {bot.api_secret_env}"
                if bot.enabled:
                    required.append(f"bot {bot.name!r} ({missing[bot.name]})")
            if bot.member_id:
                member_ids[bot.name] = bot.member_id
        if require_keys and required:
            raise UsageError(
                f"Bybit API keys missing for {environment}: set " + "; ".join(required)
            )
        return build(environment, credentials, missing, member_ids)

    def _make_session(self, keys: AccountKeys | None) -> HTTP:
        from pybit.unified_trading import HTTP

        pybit_log = logging.getLogger("pybit._http_manager")
        before = list(pybit_log.handlers)
        session = HTTP(
            api_key=keys.api_key if keys else None,
            api_secret=keys.api_secret if keys else None,
            testnet=self.environment == "testnet",
            demo=self.environment == "demo",
            timeout=self._timeout,
            recv_window=self._recv_window,
            max_retries=1,
            retry_delay=0,
            force_retry=False,
            log_requests=False,
        )
        # pybit adds an unredacted StreamHandler when the root logger has none: remove it, its
        # records still reach our (redacting) handlers through the root logger.
        for handler in list(pybit_log.handlers):
            if handler not in before:
                pybit_log.removeHandler(handler)
        # An empty set given to the constructor is replaced by pybit's defaults (10002, 10006,
        # ...), which pybit would then sleep on itself. Emptied here, they reach our policy.
        session.retry_codes = set()
        session.ignore_codes = set()
        session.endpoint = self.endpoint
        if self._verify is not None:
            session.client.verify = self._verify
        return session

    def close(self) -> None:
        """Release the HTTP connection pools."""
        for session in [*self._sessions.values(), self._public]:
            session.client.close()

    # ------------------------------------------------------------------ request plumbing

    def _session(self, account: str | None) -> tuple[HTTP, threading.Lock]:
        if account is None:
            return self._public, self._public_lock
        session = self._sessions.get(account)
        if session is not None:
            return session, self._locks[account]
        if account in self._missing:
            raise UsageError(
                f"no Bybit API key for account {account!r}: set {self._missing[account]}"
            )
        known = ", ".join(sorted(self._sessions)) or "none"
        raise UsageError(f"unknown account {account!r} (accounts with keys: {known})")

    def _call(
        self,
        account: str | None,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        what: str,
        rejected: type[ExchangeError] = ExchangeError,
    ) -> dict[str, Any]:
        """One API call under the retry policy; returns the response's ``result`` object."""
        return self._request(account, method, params, what=what, rejected=rejected)["result"]

    def _request(
        self,
        account: str | None,
        method: str,
        params: Mapping[str, Any] | None = None,
        *,
        what: str,
        rejected: type[ExchangeError] = ExchangeError,
    ) -> dict[str, Any]:
        """One API call under the retry policy; returns the whole response envelope.

        ``rejected`` is the error type of an unclassified business refusal (OrderRejected for
        order and transfer endpoints).
        """
        session, lock = self._session(account)
        label = f"bybit {what}" + (f" [{account}]" if account else "")
        recv_window = [self._recv_window]

        def attempt(_retry: int) -> Any:
            with lock:
                session.recv_window = recv_window[0]
                return getattr(session, method)(**dict(params or {}))

        def on_retry(retry: int, verdict: Verdict, delay: float) -> None:
            if verdict.error.code == 10002:
                recv_window[0] = min(recv_window[0] + RECV_WINDOW_STEP_MS, MAX_RECV_WINDOW_MS)
            log.warning(
                redact(
                    f"{verdict.error}; retry {retry + 1}/{self._retrier.policy.max_retries} "
                    f"in {delay:.2f} s"
                )
            )

        body = self._retrier.call(
            attempt, _CATCH, lambda exc: self._classify(exc, label, rejected), on_retry
        )
        if not isinstance(body, dict) or not isinstance(body.get("result"), dict):
            raise ExchangeError(redact(f"{label}: unexpected response (no result object)"))
        return body

    def _classify(self, exc: BaseException, label: str, rejected: type[ExchangeError]) -> Verdict:
        """Map a pybit/requests failure to a verdict (see the module docstring of retry)."""
        if isinstance(exc, InvalidRequestError):
            code = int(exc.status_code)
            text = redact(f"{label}: Bybit retCode {code}: {exc.message}")
            if code in RATE_LIMIT_CODES:
                reset = _reset_ms(exc.resp_headers)
                error = RateLimited(text, code=code)
                return Verdict("wait" if reset is not None else "retry", error, reset)
            if code == 10002:
                text += " (is this machine's clock in sync? Bybit refuses requests stamped ahead)"
            if code in RETRY_CODES:
                return Verdict("retry", ExchangeUnavailable(text, code=code))
            if code in AUTH_CODES:
                return Verdict("fail", AuthError(text, code=code))
            if code in INSUFFICIENT_CODES:
                return Verdict("fail", InsufficientBalance(text, code=code))
            return Verdict("fail", rejected(text, code=code))
        if isinstance(exc, FailedRequestError):
            status = int(exc.status_code)
            if status == 403:
                text = redact(
                    f"{label}: HTTP 403 from Bybit: IP rate limit (a ban of 10 minutes or more) "
                    "or access from a restricted region; stay away before trying again"
                )
                return Verdict("fail", RateLimited(text, code=403, retry_after=IP_BAN_SECONDS))
            if status == 429:
                text = redact(f"{label}: HTTP 429 from Bybit (system protection)")
                reset = _reset_ms(exc.resp_headers)
                error = RateLimited(text, code=429)
                return Verdict("wait" if reset is not None else "retry", error, reset)
            if status == 409:  # pybit's code for a body that was not JSON
                text = redact(f"{label}: Bybit answered with a body that is not JSON")
                return Verdict("retry", ExchangeUnavailable(text, code=status))
            if status >= 500:
                text = redact(f"{label}: HTTP {status} from Bybit")
                return Verdict("retry", ExchangeUnavailable(text, code=status))
            text = redact(f"{label}: HTTP {status} from Bybit: {exc.message}")
            if status == 401:
                return Verdict("fail", AuthError(text, code=status))
            return Verdict("fail", ExchangeError(text, code=status))
        if isinstance(exc, requests.exceptions.Timeout):
            text = redact(f"{label}: no answer within {self._timeout:g} s")
            return Verdict("retry", ExchangeUnavailable(text))
        reason = f"{type(exc).__name__}: {exc}"[:300]
        return Verdict(
            "retry", ExchangeUnavailable(redact(f"{label}: connection failed ({reason})"))
        )

    @contextmanager
    def _parsing(self, what: str) -> Iterator[None]:
        """Turn a malformed answer into a typed error instead of a KeyError deep in a bot."""
        try:
            yield
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise ExchangeError(
                redact(f"bybit {what}: unexpected response ({type(exc).__name__}: {exc})")
            ) from None

    def _pages(
        self,
        account: str | None,
        method: str,
        params: Mapping[str, Any],
        *,
        what: str,
        rejected: type[ExchangeError] = ExchangeError,
    ) -> list[dict[str, Any]]:
        """Every item of a cursor-paged list (``nextPageCursor``), in the server's order."""
        items: list[dict[str, Any]] = []
        cursor = ""
        for _ in range(MAX_PAGES):
            page_params = dict(params)
            if cursor:
                page_params["cursor"] = cursor
            result = self._call(account, method, page_params, what=what, rejected=rejected)
            page = result.get("list") or []
            items.extend(page)
            cursor = result.get("nextPageCursor") or ""
            if not cursor or not page:
                return items
        raise ExchangeError(redact(f"bybit {what}: more than {MAX_PAGES} pages; narrow the query"))

    # ------------------------------------------------------------------ market data

    def server_time(self) -> datetime:
        """The exchange's clock (compare with ours: signing fails beyond recv_window)."""
        result = self._call(None, "get_server_time", what="server time")
        with self._parsing("server time"):
            nano = result.get("timeNano")
            if nano:
                return datetime.fromtimestamp(int(nano) / 1e9, tz=timezone.utc)
            return datetime.fromtimestamp(int(result["timeSecond"]), tz=timezone.utc)

    def instrument(self, symbol: str, category: Category = "linear") -> Instrument:
        """Trading rules, cached per (category, symbol) for the life of this object."""
        category = _category(category)
        symbol = _normalize_symbol(symbol)
        key = (category, symbol)
        with self._cache_lock:
            cached = self._instruments.get(key)
        if cached is not None:
            return cached
        result = self._call(
            None,
            "get_instruments_info",
            {"category": category, "symbol": symbol},
            what=f"instrument {category} {symbol}",
        )
        items = result.get("list") or []
        if not items:
            raise NotFound(f"bybit has no {category} instrument {symbol}")
        with self._parsing(f"instrument {category} {symbol}"):
            inst = _instrument_from(category, items[0])
        with self._cache_lock:
            self._instruments[key] = inst
        return inst

    def ticker(self, symbol: str, category: Category = "linear") -> Ticker:
        category = _category(category)
        symbol = _normalize_symbol(symbol)
        body = self._request(
            None,
            "get_tickers",
            {"category": category, "symbol": symbol},
            what=f"ticker {category} {symbol}",
        )
        items = body["result"].get("list") or []
        if not items:
            raise NotFound(f"bybit has no {category} ticker for {symbol}")
        with self._parsing(f"ticker {symbol}"):
            t = items[0]
            last = _req_dec(t["lastPrice"])
            when = body.get("time")
            return Ticker(
                symbol=t["symbol"],
                last=last,
                bid=_d(t.get("bid1Price"), last),
                ask=_d(t.get("ask1Price"), last),
                mark=_d(t.get("markPrice"), last),  # spot has no mark price
                time=_ms_to_dt(when) if when else wall_now(),  # received now
            )

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        category: Category = "linear",
        start_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 1000,
    ) -> pl.DataFrame:
        """One page of bars, ts ascending (Bybit sends newest first). The newest bar may still
        be forming."""
        import polars as pl

        from jiritsu.market.frames import CANDLE_SCHEMA, normalize_interval

        category = _category(category)
        symbol = _normalize_symbol(symbol)
        interval = normalize_interval(interval)
        if not 1 <= limit <= 1000:
            raise UsageError("limit must be within 1..1000")
        params: dict[str, Any] = {
            "category": category,
            "symbol": symbol,
            "interval": interval,
            "limit": limit,
        }
        if start_ms is not None:
            params["start"] = int(start_ms)
        if end_ms is not None:
            params["end"] = int(end_ms)
        result = self._call(None, "get_kline", params, what=f"klines {symbol} {interval}")
        with self._parsing(f"klines {symbol}"):
            rows = result.get("list") or []
            data = {
                "ts": [int(r[0]) for r in rows],
                "open": [float(r[1]) for r in rows],
                "high": [float(r[2]) for r in rows],
                "low": [float(r[3]) for r in rows],
                "close": [float(r[4]) for r in rows],
                "volume": [float(r[5]) for r in rows],
            }
        frame = pl.DataFrame(data, schema=CANDLE_SCHEMA)
        return frame.unique(subset="ts", keep="first").sort("ts")

    # ------------------------------------------------------------------ account state

    def balance(self, account: str, coin: str = "USDT") -> Balance:
        """A bot's UNIFIED trading wallet; for MAIN, its FUND wallet (the saved profit)."""
        coin = coin.upper()
        if account == MAIN:
            result = self._call(
                MAIN,
                "get_coins_balance",
                {"accountType": "FUND", "coin": coin},
                what=f"FUND balance {coin}",
            )
            with self._parsing("FUND balance"):
                entry: dict[str, Any] = next(
                    (b for b in result.get("balance") or [] if b["coin"] == coin), {}
                )
                wallet = _d(entry.get("walletBalance"))
                available = _d(entry.get("transferBalance"), wallet)
                return Balance(MAIN, coin, wallet, wallet, available)
        result = self._call(
            account,
            "get_wallet_balance",
            {"accountType": "UNIFIED", "coin": coin},
            what=f"balance {coin}",
        )
        with self._parsing("balance"):
            acct = (result.get("list") or [{}])[0]
            entry = next((c for c in acct.get("coin") or [] if c["coin"] == coin), {})
            wallet = _d(entry.get("walletBalance"))
            equity = _d(entry.get("equity"), wallet)
            upl = _d(entry.get("unrealisedPnl"))
            if coin in ("USDT", "USDC"):
                # the account-level figure (USD) is what Bybit lets new orders use
                available = _d(acct.get("totalAvailableBalance"), wallet)
            else:
                available = wallet - _d(entry.get("locked"))
            return Balance(account, coin, equity, wallet, available, upl)

    def positions(
        self, account: str, category: Category, symbol: str | None = None
    ) -> list[Position]:
        """Open linear positions; for spot, the coins held (avg_price 0: Bybit does not know)."""
        category = _category(category)
        sym = _normalize_symbol(symbol) if symbol else None
        if category == "spot":
            return self._spot_holdings(account, sym)
        params: dict[str, Any] = {"category": "linear", "limit": 200}
        if sym:
            params["symbol"] = sym
        else:
            params["settleCoin"] = "USDT"
        items = self._pages(account, "get_positions", params, what="positions")
        out: list[Position] = []
        with self._parsing("positions"):
            for p in items:
                size = _req_dec(p["size"])
                if size <= 0:
                    continue
                out.append(
                    Position(
                        symbol=p["symbol"],
                        side=p.get("side") or "",
                        size=size,
                        avg_price=_d(p.get("avgPrice")),
                        take_profit=_positive_or_none(p.get("takeProfit")),
                        stop_loss=_positive_or_none(p.get("stopLoss")),
                        unrealised_pnl=_d(p.get("unrealisedPnl")),
                        realised_pnl=_d(p.get("cumRealisedPnl")),
                        leverage=_d(p.get("leverage"), Decimal(1)),
                    )
                )
        return out

    def _spot_holdings(self, account: str, symbol: str | None) -> list[Position]:
        quote = "USDT"
        params: dict[str, Any] = {"accountType": "UNIFIED"}
        if symbol:
            inst = self.instrument(symbol, "spot")
            quote = inst.quote_coin
            params["coin"] = inst.base_coin
        result = self._call(account, "get_wallet_balance", params, what="spot holdings")
        out: list[Position] = []
        with self._parsing("spot holdings"):
            acct = (result.get("list") or [{}])[0]
            for c in acct.get("coin") or []:
                size = _d(c.get("walletBalance"))
                if c["coin"] in ("USDT", "USDC", quote) or size <= 0:
                    continue
                out.append(
                    Position(symbol=f"{c['coin']}{quote}", side="Buy", size=size, avg_price=ZERO)
                )
        return out

    # ------------------------------------------------------------------ orders

    def place_order(self, account: str, category: Category, request: OrderRequest) -> OrderState:
        """Send an order, idempotently: a client id Bybit already has returns that order."""
        category = _category(category)
        cid = request.client_order_id
        if not is_valid_client_order_id(cid):
            raise OrderRejected(
                f"client order id {cid!r} is not a Bybit orderLinkId (1..36 of A-Z a-z 0-9 - _)"
            )
        symbol = _normalize_symbol(request.symbol)
        if request.side not in ("Buy", "Sell"):
            raise OrderRejected(f"side must be Buy or Sell, not {request.side!r}")
        if request.order_type not in ("Market", "Limit"):
            raise OrderRejected(f"order type must be Market or Limit, not {request.order_type!r}")
        self._session(account)  # a missing key is a UsageError before anything else
        inst = self.instrument(symbol, category)
        qty = inst.round_qty(Decimal(request.qty))
        price: Decimal | None = None
        if request.order_type == "Limit":
            if request.price is None:
                raise OrderRejected(f"a Limit order needs a price ({cid})")
            price = inst.round_price(Decimal(request.price))
        problem = inst.order_problem(qty, price)
        if problem:
            raise OrderRejected(f"{cid}: {problem}")
        params: dict[str, Any] = {
            "category": category,
            "symbol": symbol,
            "side": request.side,
            "orderType": request.order_type,
            "qty": _num(qty),
            "orderLinkId": cid,
        }
        if price is not None:
            params["price"] = _num(price)
        if request.time_in_force:
            params["timeInForce"] = request.time_in_force
        elif request.order_type == "Limit":
            params["timeInForce"] = "GTC"
        if category == "linear":
            params["positionIdx"] = 0  # one-way mode
            if request.reduce_only:
                params["reduceOnly"] = True
        elif request.order_type == "Market":
            params["marketUnit"] = "baseCoin"  # spot market buys default to quote-coin qty
        if request.take_profit is not None:
            params["takeProfit"] = _num(inst.round_price(Decimal(request.take_profit)))
        if request.stop_loss is not None:
            params["stopLoss"] = _num(inst.round_price(Decimal(request.stop_loss)))
        if category == "linear" and not request.reduce_only:
            self._ensure_leverage(account, symbol)
        what = f"place order {cid} {request.side} {_num(qty)} {symbol}"
        try:
            result = self._call(account, "place_order", params, what=what, rejected=OrderRejected)
        except OrderRejected as exc:
            if exc.code != DUPLICATE_ORDER:
                raise
            return self._existing_order(account, category, symbol, request)
        exchange_id = str(result.get("orderId") or "") or None
        try:
            found = self.get_order(account, category, symbol, cid)
        except ExchangeError as exc:
            # The order IS placed: a failed follow-up query must not look like a failed order.
            log.warning(
                redact(f"bybit order {cid} [{account}] placed; its state query failed: {exc}")
            )
            found = None
        if found is not None:
            return found
        return OrderState(
            client_order_id=cid,
            exchange_order_id=exchange_id,
            symbol=symbol,
            side=request.side,
            order_type=request.order_type,
            qty=qty,
            price=price,
            status="sent",
            reduce_only=request.reduce_only,
            take_profit=request.take_profit,
            stop_loss=request.stop_loss,
        )

    def _existing_order(
        self, account: str, category: Category, symbol: str, request: OrderRequest
    ) -> OrderState:
        """110072: the id was placed before (a retry after a lost answer, or a restart)."""
        cid = request.client_order_id
        found = self.get_order(account, category, symbol, cid)
        if found is None:
            raise ExchangeUnavailable(
                f"bybit says order {cid} already exists (110072) but it cannot be found yet; "
                "query it again before doing anything else",
                code=DUPLICATE_ORDER,
            )
        if found.symbol != symbol or found.side != request.side:
            raise OrderRejected(
                f"client order id {cid} already belongs to a different order "
                f"({found.side} {found.symbol}); ids must be unique per decision and leg",
                code=DUPLICATE_ORDER,
            )
        log.info(redact(f"bybit order {cid} [{account}] already existed; returning it"))
        return found

    def _ensure_leverage(self, account: str, symbol: str) -> None:
        """Set the configured leverage once per (account, symbol); 110043 = already so."""
        key = (account, symbol)
        with self._cache_lock:
            if key in self._leverage_done:
                return
        lev = str(self._leverage)
        try:
            self._call(
                account,
                "set_leverage",
                {"category": "linear", "symbol": symbol, "buyLeverage": lev, "sellLeverage": lev},
                what=f"set leverage {symbol} {lev}x",
                rejected=OrderRejected,
            )
        except OrderRejected as exc:
            if exc.code != LEVERAGE_NOT_MODIFIED:
                raise
        with self._cache_lock:
            self._leverage_done.add(key)

    def cancel_order(
        self,
        account: str,
        category: Category,
        symbol: str,
        *,
        client_order_id: str | None = None,
        exchange_order_id: str | None = None,
    ) -> OrderState | None:
        """Cancel; None when the order is gone or already final (110001 after checking it)."""
        category = _category(category)
        symbol = _normalize_symbol(symbol)
        if not client_order_id and not exchange_order_id:
            raise UsageError("cancel_order needs client_order_id or exchange_order_id")
        ident: dict[str, Any] = (
            {"orderId": exchange_order_id}
            if exchange_order_id
            else {"orderLinkId": client_order_id}
        )
        label = client_order_id or exchange_order_id
        try:
            self._call(
                account,
                "cancel_order",
                {"category": category, "symbol": symbol, **ident},
                what=f"cancel order {label}",
                rejected=OrderRejected,
            )
        except OrderRejected as exc:
            if exc.code not in ORDER_GONE:
                raise
            state = self._find_order(account, category, symbol, ident)
            if state is not None and state.is_open:
                raise ExchangeUnavailable(
                    f"bybit says order {label} cannot be cancelled ({exc.code}) but it is still "
                    f"{state.status}; try again",
                    code=exc.code,
                ) from None
            return None
        return self._find_order(account, category, symbol, ident)

    def get_order(
        self, account: str, category: Category, symbol: str, client_order_id: str
    ) -> OrderState | None:
        """Open or recently closed order by client id (realtime first, then history)."""
        category = _category(category)
        symbol = _normalize_symbol(symbol)
        return self._find_order(account, category, symbol, {"orderLinkId": client_order_id})

    def _find_order(
        self, account: str, category: Category, symbol: str, ident: Mapping[str, Any]
    ) -> OrderState | None:
        params = {"category": category, "symbol": symbol, **ident}
        label = next(iter(ident.values()))
        for method in ("get_open_orders", "get_order_history"):
            result = self._call(account, method, params, what=f"order {label}")
            items = result.get("list") or []
            if items:
                with self._parsing(f"order {label}"):
                    return _order_from(items[0])
        return None

    def open_orders(
        self, account: str, category: Category, symbol: str | None = None
    ) -> list[OrderState]:
        """Open orders, including a position's TP/SL (status untriggered, empty client id)."""
        category = _category(category)
        params: dict[str, Any] = {"category": category, "openOnly": 0, "limit": 50}
        if symbol:
            params["symbol"] = _normalize_symbol(symbol)
        elif category == "linear":
            params["settleCoin"] = "USDT"
        items = self._pages(account, "get_open_orders", params, what="open orders")
        with self._parsing("open orders"):
            return [_order_from(o) for o in items]

    def executions(
        self,
        account: str,
        category: Category,
        *,
        symbol: str | None = None,
        since: datetime | None = None,
    ) -> list[Fill]:
        """Fills since ``since`` (inclusive), oldest first, across 7-day windows and all pages.

        Without ``since`` Bybit's default applies: the last 7 days. Funding records are not
        fills and are left out; liquidation and ADL trades are kept (they move positions).
        """
        category = _category(category)
        if since is not None and since.tzinfo is None:
            raise UsageError("executions(since=...) needs a timezone-aware (UTC) datetime")
        base: dict[str, Any] = {"category": category, "limit": 100}
        if symbol:
            base["symbol"] = _normalize_symbol(symbol)
        windows: list[dict[str, Any]] = []
        if since is None:
            windows.append({})
        else:
            now = datetime.fromtimestamp(self._retrier.clock(), tz=timezone.utc)
            start = max(since, now - EXECUTION_HISTORY)
            while True:
                end = start + SEVEN_DAYS - timedelta(milliseconds=1)
                windows.append({"startTime": _dt_to_ms(start), "endTime": _dt_to_ms(end)})
                start = end + timedelta(milliseconds=1)
                if start > now:
                    break
        fills: list[Fill] = []
        seen: set[str] = set()
        for window in windows:
            items = self._pages(account, "get_executions", {**base, **window}, what="executions")
            with self._parsing("executions"):
                for e in reversed(items):  # Bybit pages newest first
                    if e.get("execType") == "Funding" or e["execId"] in seen:
                        continue
                    seen.add(e["execId"])
                    fills.append(_fill_from(e))
        fills.sort(key=lambda f: f.time)  # stable: same-millisecond fills keep server order
        return fills

    def set_trading_stop(
        self,
        account: str,
        category: Category,
        symbol: str,
        *,
        take_profit: Decimal | None,
        stop_loss: Decimal | None,
    ) -> None:
        """Full-position TP/SL on linear; None (sent as "0") cancels that side."""
        category = _category(category)
        if category != "linear":
            raise OrderRejected("position TP/SL exists only for linear contracts")
        symbol = _normalize_symbol(symbol)
        inst = self.instrument(symbol, category)
        tp = _num(inst.round_price(Decimal(take_profit))) if take_profit is not None else "0"
        sl = _num(inst.round_price(Decimal(stop_loss))) if stop_loss is not None else "0"
        try:
            self._call(
                account,
                "set_trading_stop",
                {
                    "category": "linear",
                    "symbol": symbol,
                    "tpslMode": "Full",
                    "positionIdx": 0,
                    "takeProfit": tp,
                    "stopLoss": sl,
                },
                what=f"trading stop {symbol}",
                rejected=OrderRejected,
            )
        except OrderRejected as exc:
            if exc.code != TPSL_NOT_MODIFIED:
                raise

    # ------------------------------------------------------------------ transfers

    def member_id(self, account: str) -> int:
        """The Bybit UID of an account: from the configuration, else asked with its own key."""
        with self._cache_lock:
            known = self._member_ids.get(account)
        if known is not None:
            return known
        uid = self._lookup_uid(account)
        with self._cache_lock:
            self._member_ids[account] = uid
        return uid

    def _lookup_uid(self, account: str) -> int:
        try:
            result = self._call(account, "get_api_key_information", what="api key info")
            with self._parsing("api key info"):
                return int(result["userID"])
        except (AuthError, ExchangeUnavailable):
            raise
        except ExchangeError as exc:
            log.info(redact(f"bybit query-api unavailable [{account}] ({exc}); using memberId"))
        result = self._call(account, "get_coins_balance", {"accountType": "FUND"}, what="member id")
        with self._parsing("member id"):
            return int(result["memberId"])

    def transfer(self, request: TransferRequest) -> TransferResult:
        """Universal transfer with the master key; idempotent by ``transfer_id`` (131214)."""
        tid = request.transfer_id
        try:
            uuid.UUID(tid)
        except (ValueError, TypeError, AttributeError):
            raise OrderRejected(
                f"transfer id {tid!r} must be a UUID (use new_transfer_id())"
            ) from None
        coin = request.coin.upper()
        amount = _transfer_amount(coin, Decimal(request.amount))
        if amount <= 0:
            raise OrderRejected(f"transfer {tid}: amount {request.amount} {coin} is not positive")
        if request.from_account == request.to_account and request.from_wallet == request.to_wallet:
            raise OrderRejected(f"transfer {tid}: source and destination are the same")
        from_uid = self.member_id(request.from_account)
        to_uid = self.member_id(request.to_account)
        params = {
            "transferId": tid,
            "coin": coin,
            "amount": _num(amount),
            "fromMemberId": from_uid,
            "toMemberId": to_uid,
            "fromAccountType": request.from_wallet,
            "toAccountType": request.to_wallet,
        }
        what = (
            f"transfer {tid} {_num(amount)} {coin} {request.from_account}/{request.from_wallet}"
            f" -> {request.to_account}/{request.to_wallet}"
        )
        detail = None if amount == request.amount else f"amount rounded down to {_num(amount)}"
        try:
            result = self._call(
                MAIN, "create_universal_transfer", params, what=what, rejected=OrderRejected
            )
        except OrderRejected as exc:
            if exc.code != DUPLICATE_TRANSFER:
                raise
            return self._existing_transfer(tid, params)
        status = TRANSFER_STATUS.get(str(result.get("status") or ""), "unknown")
        return TransferResult(tid, status, detail)

    def _existing_transfer(self, tid: str, params: Mapping[str, Any]) -> TransferResult:
        record = self._transfer_record(tid)
        if record is None:
            return TransferResult(
                tid, "unknown", "bybit says this transfer id exists (131214) but lists no record"
            )
        with self._parsing(f"transfer {tid}"):
            same = (
                record.get("coin") == params["coin"]
                and _dec(record.get("amount")) == Decimal(params["amount"])
                and int(record.get("fromMemberId") or 0) == params["fromMemberId"]
                and int(record.get("toMemberId") or 0) == params["toMemberId"]
            )
        if not same:
            raise OrderRejected(
                f"transfer id {tid} already belongs to a different transfer; ids must be new "
                "for every transfer",
                code=DUPLICATE_TRANSFER,
            )
        log.info(redact(f"bybit transfer {tid} already existed; returning it"))
        return _transfer_result(record)

    def _transfer_record(self, tid: str) -> dict[str, Any] | None:
        result = self._call(
            MAIN,
            "get_universal_transfer_records",
            {"transferId": tid},
            what=f"transfer record {tid}",
        )
        for record in result.get("list") or []:
            if record.get("transferId") == tid:
                return dict(record)
        return None

    def get_transfer(self, transfer_id: str) -> TransferResult | None:
        """A transfer by id (None if Bybit never had it); settles a crash mid-transfer."""
        record = self._transfer_record(transfer_id)
        if record is None:
            return None
        with self._parsing(f"transfer {transfer_id}"):
            return _transfer_result(record)

    def has_key(self, account: str) -> bool:
        """Whether ``account`` has an API key configured."""
        return account in self._sessions

    def api_key_info(self, account: str) -> ApiKeyInfo:
        """The settings of ``account``'s own key: owner UID, permissions, IP binding, expiry."""
        result = self._call(account, "get_api_key_information", what="api key info")
        with self._parsing("api key info"):
            expires = str(result.get("expiredAt") or "")
            parent = str(result.get("parentUid") or "0")
            return ApiKeyInfo(
                user_id=int(result["userID"]),
                is_master=bool(result.get("isMaster")),
                read_only=int(result.get("readOnly") or 0) == 1,
                permissions={
                    str(k): tuple(str(x) for x in v or ())
                    for k, v in (result.get("permissions") or {}).items()
                },
                ips=tuple(str(ip) for ip in result.get("ips") or ()),
                expires_at=(
                    datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None
                ),
                parent_uid=int(parent) if parent.isdigit() and int(parent) else None,
                note=str(result.get("note") or ""),
            )

    def member_balance(self, uid: int, coin: str = "USDT") -> Decimal:
        """A sub-account's UNIFIED wallet balance of ``coin``, asked with the master key."""
        result = self._call(
            MAIN,
            "get_coins_balance",
            {"accountType": "UNIFIED", "coin": coin, "memberId": uid},
            what=f"balance of member {uid}",
        )
        with self._parsing(f"balance of member {uid}"):
            for row in result.get("balance") or []:
                if row.get("coin") == coin:
                    return _req_dec(row["walletBalance"])
            return Decimal(0)

    def sub_accounts(self) -> list[SubAccount]:
        result = self._call(MAIN, "get_sub_uid_list", what="sub accounts")
        with self._parsing("sub accounts"):
            return [
                SubAccount(
                    uid=int(m["uid"]),
                    username=str(m.get("username") or ""),
                    status=_SUB_STATUS.get(int(m.get("status") or 0), str(m.get("status"))),
                )
                for m in result.get("subMembers") or []
            ]


# --------------------------------------------------------------------------- parsing


def _instrument_from(category: Category, d: Mapping[str, Any]) -> Instrument:
    lot = d["lotSizeFilter"]
    tick = _req_dec(d["priceFilter"]["tickSize"])
    if category == "linear":
        step = _req_dec(lot["qtyStep"])
        maxima = [lot.get("maxOrderQty"), lot.get("maxMktOrderQty")]
        min_notional = _d(lot.get("minNotionalValue"))
    else:
        step = _req_dec(lot["basePrecision"])
        maxima = [lot.get("maxOrderQty"), lot.get("maxLimitOrderQty"), lot.get("maxMarketOrderQty")]
        min_notional = _d(lot.get("minOrderAmt"))
    # the smallest maximum: market and limit caps differ, and one Instrument serves both
    max_qty = min(m for m in (_dec(x) for x in maxima) if m is not None)
    return Instrument(
        symbol=d["symbol"],
        category=category,
        base_coin=d["baseCoin"],
        quote_coin=d["quoteCoin"],
        qty_step=step,
        min_qty=_req_dec(lot["minOrderQty"]),
        max_qty=max_qty,
        tick_size=tick,
        min_notional=min_notional,
    )


_UNKNOWN_STATUS_WARNED: set[str] = set()


def _order_from(o: Mapping[str, Any]) -> OrderState:
    raw_status = str(o["orderStatus"])
    status = ORDER_STATUS_FROM_BYBIT.get(raw_status)
    if status is None:
        # an unknown status is treated as open: watching a dead order costs less than
        # forgetting a live one
        if raw_status not in _UNKNOWN_STATUS_WARNED:
            _UNKNOWN_STATUS_WARNED.add(raw_status)
            log.warning(
                redact(f"bybit order status {raw_status!r} is unknown; treating it as open")
            )
        status = "new"
    order_type = o["orderType"]
    reject = o.get("rejectReason") or ""
    return OrderState(
        client_order_id=str(o.get("orderLinkId") or ""),
        exchange_order_id=str(o["orderId"]) or None,
        symbol=o["symbol"],
        side=o["side"],
        order_type=order_type,
        qty=_req_dec(o["qty"]),
        price=_positive_or_none(o.get("price")) if order_type == "Limit" else None,
        status=status,
        filled_qty=_d(o.get("cumExecQty")),
        avg_price=_positive_or_none(o.get("avgPrice")),
        reduce_only=bool(o.get("reduceOnly")),
        take_profit=_positive_or_none(o.get("takeProfit")),
        stop_loss=_positive_or_none(o.get("stopLoss")),
        created_at=_ms_to_dt(o["createdTime"]) if o.get("createdTime") else None,
        updated_at=_ms_to_dt(o["updatedTime"]) if o.get("updatedTime") else None,
        reject_reason=None if reject in ("", "EC_NoError") else str(reject),
    )


def _fill_from(e: Mapping[str, Any]) -> Fill:
    is_maker = e.get("isMaker")
    if isinstance(is_maker, str):
        is_maker = is_maker.lower() == "true"
    return Fill(
        exec_id=str(e["execId"]),
        exchange_order_id=str(e["orderId"]),
        client_order_id=str(e.get("orderLinkId") or "") or None,
        symbol=e["symbol"],
        side=e["side"],
        price=_req_dec(e["execPrice"]),
        qty=_req_dec(e["execQty"]),
        fee=_d(e.get("execFee")),
        time=_ms_to_dt(e["execTime"]),
        is_maker=bool(is_maker),
        fee_rate=_dec(e.get("feeRate")),
        fee_currency=str(e.get("feeCurrency") or "") or None,
    )


def _transfer_result(record: Mapping[str, Any]) -> TransferResult:
    raw = str(record.get("status") or "")
    return TransferResult(str(record["transferId"]), TRANSFER_STATUS.get(raw, "unknown"), raw)
