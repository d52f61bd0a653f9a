"""Every failure class, injected by the fake and seen through the real pybit client: what is
retried, how long we wait, what the caller finally gets, and that no order is ever doubled."""

from __future__ import annotations

import json
import logging
import time
from decimal import Decimal

import pytest

from jiritsu.errors import TemporaryError, UsageError
from jiritsu.exchange import (
    AuthError,
    ExchangeUnavailable,
    InsufficientBalance,
    RateLimited,
)
from jiritsu.exchange.bybit import AccountKeys, BybitExchange, resolve_endpoint
from jiritsu.exchange.ids import client_order_id
from jiritsu.exchange.types import OrderRequest
from tests.exchange.bybit_env import KEYS, BybitEnv, bybit_env

CREATE = "/v5/order/create"
TICKERS = "/v5/market/tickers"
WALLET = "/v5/account/wallet-balance"
BACKOFF = [0.25, 0.5, 1.0]  # with the injected random() == 0


@pytest.fixture
def env():
    with bybit_env() as e:
        yield e


def order(decision: str = "d1", qty: str = "0.01", side: str = "Buy") -> OrderRequest:
    return OrderRequest(client_order_id("SubBot-C", decision, 0), "BTCUSDT", side, Decimal(qty))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- transient failures


def test_5xx_then_success(env: BybitEnv):
    env.fake.inject(TICKERS, "http_502")
    assert env.exchange().ticker("BTCUSDT").last == 40110
    assert [r.status for r in env.calls(TICKERS)] == [502, 200]
    assert env.sleeps == [0.25]


def test_repeated_5xx_gives_exchange_unavailable_after_exactly_four_attempts(env: BybitEnv):
    env.fake.inject(WALLET, "http_503", times=None)
    with pytest.raises(ExchangeUnavailable) as exc:
        env.exchange().balance("SubBot-C")
    assert isinstance(exc.value, TemporaryError)
    assert exc.value.code == 503
    assert len(env.calls(WALLET)) == 1 + 3
    assert env.sleeps == BACKOFF


def test_max_retries_comes_from_the_config(env: BybitEnv):
    env.fake.inject(WALLET, "http_500", times=None)
    with pytest.raises(ExchangeUnavailable):
        env.exchange({"JIRITSU_EXCHANGE__MAX_RETRIES": "1"}).balance("SubBot-C")
    assert len(env.calls(WALLET)) == 2


def test_timeout_is_retried(env: BybitEnv):
    env.fake.inject(TICKERS, "timeout", seconds=1.0)
    ex = env.exchange({"JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS": "0.3"})
    assert ex.ticker("BTCUSDT").last == 40110
    assert [r.fault for r in env.calls(TICKERS)] == ["timeout", None]
    assert env.sleeps == [0.25]


def test_repeated_timeouts_give_exchange_unavailable(env: BybitEnv):
    env.fake.inject(TICKERS, "timeout", times=None, seconds=0.5)
    ex = env.exchange({"JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS": "0.2"})
    with pytest.raises(ExchangeUnavailable, match=r"no answer within 0\.2 s"):
        ex.ticker("BTCUSDT")
    assert len(env.calls(TICKERS)) == 4


def test_dropped_connection_is_retried(env: BybitEnv):
    env.fake.inject(TICKERS, "drop", times=2)
    assert env.exchange().ticker("BTCUSDT").last == 40110
    assert [r.fault for r in env.calls(TICKERS)] == ["drop", "drop", None]
    assert env.sleeps == BACKOFF[:2]


def test_non_json_answer_is_retried(env: BybitEnv):
    env.fake.inject(WALLET, "non_json")
    assert env.exchange().balance("SubBot-C").wallet_balance == 1000
    assert env.sleeps == [0.25]


@pytest.mark.parametrize("code", [10016, 131230])
def test_server_busy_codes_are_retried(env: BybitEnv, code: int):
    env.fake.inject(WALLET, "ret_code", ret_code=code)
    assert env.exchange().balance("SubBot-C").wallet_balance == 1000
    assert [r.ret_code for r in env.calls(WALLET)] == [code, 0]


def test_10002_is_retried_with_a_wider_recv_window(env: BybitEnv):
    env.fake.inject(WALLET, "ret_code", ret_code=10002)
    ex = env.exchange()
    assert ex.balance("SubBot-C").wallet_balance == 1000
    windows = [r.headers["X-BAPI-RECV-WINDOW"] for r in env.calls(WALLET)]
    assert windows == ["5000", "7500"]
    ex.balance("SubBot-C")  # the widening was for that call only
    assert env.calls(WALLET)[-1].headers["X-BAPI-RECV-WINDOW"] == "5000"


# --------------------------------------------------------------------------- rate limits


def test_10006_with_a_future_reset_waits_until_the_reset(env: BybitEnv):
    env.fake.inject(CREATE, "ret_code", ret_code=10006, reset_in_ms=3000)
    state = env.exchange().place_order("SubBot-C", "linear", order())
    assert state.status == "filled"
    [wait] = env.sleeps
    assert 2.0 < wait <= 3.0  # the reset delta, not the backoff
    assert [(r.ret_code, r.processed) for r in env.calls(CREATE)] == [(10006, False), (0, True)]
    assert len(env.fake.orders) == 1


def test_10006_with_a_reset_in_the_past_does_not_crash(env: BybitEnv):
    # pybit itself would raise "ValueError: sleep length must be non-negative" here
    env.fake.inject(CREATE, "ret_code", ret_code=10006, reset_in_ms=-5000)
    state = env.exchange().place_order("SubBot-C", "linear", order())
    assert state.status == "filled"
    assert env.sleeps == [0.05]  # clamped to the small positive minimum
    assert len(env.fake.orders) == 1


def test_10006_with_a_far_reset_raises_rate_limited_at_once(env: BybitEnv):
    env.fake.inject(WALLET, "ret_code", ret_code=10006, reset_in_ms=120_000)
    with pytest.raises(RateLimited) as exc:
        env.exchange().balance("SubBot-C")
    assert exc.value.code == 10006
    assert 100 < (exc.value.retry_after or 0) <= 120
    assert env.sleeps == []
    assert len(env.calls(WALLET)) == 1


def test_persistent_10006_ends_as_rate_limited(env: BybitEnv):
    env.fake.inject(WALLET, "ret_code", ret_code=10006, reset_in_ms=100, times=None)
    with pytest.raises(RateLimited):
        env.exchange().balance("SubBot-C")
    assert len(env.calls(WALLET)) == 4


def test_real_order_rate_limit_is_waited_out(env: BybitEnv):
    env.fake.rate_limits["/v5/order/create"] = 1

    def sleep(seconds: float) -> None:  # really wait: the fake's window is real time
        env.sleeps.append(seconds)
        time.sleep(seconds)

    ex = env.exchange(sleep=sleep)
    ex.place_order("SubBot-C", "linear", order("r1", "0.001"))
    ex.place_order("SubBot-C", "linear", order("r2", "0.001"))
    assert [r.ret_code for r in env.calls(CREATE)] == [0, 10006, 0]
    assert len(env.sleeps) == 1
    assert 0 < env.sleeps[0] <= 1.0
    assert len(env.fake.orders) == 2


def test_http_403_is_rate_limited_immediately(env: BybitEnv):
    env.fake.inject(WALLET, "http_403", times=None)
    with pytest.raises(RateLimited) as exc:
        env.exchange().balance("SubBot-C")
    assert exc.value.code == 403
    assert exc.value.retry_after is not None
    assert exc.value.retry_after >= 600
    assert "10 minutes" in str(exc.value)
    assert len(env.calls(WALLET)) == 1
    assert env.sleeps == []


def test_http_429_waits_for_the_reset_then_succeeds(env: BybitEnv):
    env.fake.inject(WALLET, "http_429")
    assert env.exchange().balance("SubBot-C").wallet_balance == 1000
    [wait] = env.sleeps
    assert 0 < wait <= 5.0  # the fake's per-IP window resets within 5 s


# --------------------------------------------------------------------------- business errors


def test_insufficient_balance_is_typed_and_not_retried(env: BybitEnv):
    ex = env.exchange()
    with pytest.raises(InsufficientBalance) as exc:
        ex.place_order("SubBot-C", "linear", order(qty="1"))  # 40000 USDT at 1x, 1000 held
    assert exc.value.code == 110007
    assert not isinstance(exc.value, TemporaryError)
    assert len(env.calls(CREATE)) == 1
    assert env.sleeps == []
    assert env.fake.orders == []


def test_bad_secret_is_auth_error_and_the_key_is_masked(env: BybitEnv):
    key = KEYS["SubBot-C"][0]
    ex = env.exchange(keys={"SubBot-C": (key, "WRONG-SECRET-123")})
    with pytest.raises(AuthError) as exc:
        ex.balance("SubBot-C")
    assert exc.value.code == 10004
    # Bybit echoes the signed string, API key included: it must come out masked
    assert "origin_string" in str(exc.value)
    assert key not in str(exc.value)
    assert "***" in str(exc.value)
    assert len(env.calls(WALLET)) == 1


def test_unknown_key_is_auth_error(env: BybitEnv):
    ex = env.exchange(keys={"SubBot-C": ("NOT-A-KEY-999", "NOT-A-SECRET-999")})
    with pytest.raises(AuthError) as exc:
        ex.place_order("SubBot-C", "linear", order())
    assert exc.value.code == 10003
    assert env.calls(CREATE) == []  # it failed on set-leverage, before any order


# --------------------------------------------------------------------------- idempotency


def test_accept_then_drop_on_create_returns_the_existing_order_exactly_once(env: BybitEnv):
    env.fake.inject(CREATE, "accept_then_drop")
    req = order()
    state = env.exchange().place_order("SubBot-C", "linear", req)
    assert state.client_order_id == req.client_order_id
    assert state.status == "filled"
    calls = env.calls(CREATE)
    assert [(c.fault, c.processed, c.ret_code) for c in calls] == [
        ("accept_then_drop", True, 0),
        (None, True, 110072),
    ]
    assert json.loads(calls[0].body)["orderLinkId"] == json.loads(calls[1].body)["orderLinkId"]
    assert len(env.fake.orders) == 1
    assert [p.size for p in env.fake.positions("SubBot-C")] == [Decimal("0.01")]


def test_accept_then_timeout_on_create_is_resolved_the_same_way(env: BybitEnv):
    env.fake.inject(CREATE, "accept_then_timeout", seconds=1.0)
    ex = env.exchange({"JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS": "0.3"})
    state = ex.place_order("SubBot-C", "linear", order())
    assert state.status == "filled"
    assert len(env.fake.orders) == 1


def test_accept_then_500_on_create_is_resolved_the_same_way(env: BybitEnv):
    env.fake.inject(CREATE, "accept_then_500")
    state = env.exchange().place_order("SubBot-C", "linear", order())
    assert state.status == "filled"
    assert len(env.fake.orders) == 1


def test_a_restart_resending_the_same_id_gets_the_same_order(env: BybitEnv):
    first = env.exchange().place_order("SubBot-C", "linear", order())
    again = env.exchange().place_order("SubBot-C", "linear", order())  # a new process
    assert again.exchange_order_id == first.exchange_order_id
    assert len(env.fake.orders) == 1
    assert [c.ret_code for c in env.calls(CREATE)] == [0, 110072]


def test_an_id_reused_for_a_different_order_is_refused(env: BybitEnv):
    ex = env.exchange()
    ex.place_order("SubBot-C", "linear", order())
    with pytest.raises(Exception, match="different order") as exc:
        ex.place_order("SubBot-C", "linear", order(side="Sell"))
    assert exc.value.code == 110072  # type: ignore[attr-defined]
    assert len(env.fake.orders) == 1


def test_create_failing_every_time_is_unavailable_but_never_doubles(env: BybitEnv):
    env.fake.inject(CREATE, "accept_then_drop", times=None)
    with pytest.raises(ExchangeUnavailable):
        env.exchange().place_order("SubBot-C", "linear", order())
    assert len(env.calls(CREATE)) == 4
    assert len(env.fake.orders) == 1
    env.fake.clear_faults()
    # the journal re-sends the same id on its next tick: it finds the order
    state = env.exchange().place_order("SubBot-C", "linear", order())
    assert state.status == "filled"
    assert len(env.fake.orders) == 1


# --------------------------------------------------------------------------- hosts and secrets


def test_https_is_enforced_except_on_loopback():
    with pytest.raises(UsageError, match="https"):
        resolve_endpoint("testnet", "http://api.example.com:8443")
    with pytest.raises(UsageError, match="https"):
        BybitExchange(environment="production", credentials={}, base_url="http://10.1.2.3")
    with pytest.raises(UsageError, match="https"):
        resolve_endpoint("testnet", "ftp://127.0.0.1")
    assert resolve_endpoint("testnet", "http://127.0.0.1:9/") == "http://127.0.0.1:9"
    assert resolve_endpoint("demo", "http://[::1]:9") == "http://[::1]:9"
    assert resolve_endpoint("demo", "http://localhost:9") == "http://localhost:9"
    assert resolve_endpoint("production", "https://api.bytick.com") == "https://api.bytick.com"
    with pytest.raises(UsageError, match="verification"):
        BybitExchange(
            environment="production", credentials={}, base_url="https://x.example", verify=False
        )
    with pytest.raises(UsageError):
        resolve_endpoint("paper")


@pytest.mark.parametrize(
    ("environment", "host"),
    [
        ("production", "https://api.bybit.com"),
        ("testnet", "https://api-testnet.bybit.com"),
        ("demo", "https://api-demo.bybit.com"),
    ],
)
def test_official_hosts(environment: str, host: str):
    ex = BybitExchange(
        environment=environment, credentials={"SubBot-C": AccountKeys("KEY-abc1", "SEC-abc1")}
    )
    assert ex.endpoint == host
    session, _ = ex._session("SubBot-C")
    assert session.endpoint == host
    assert session.retry_codes == set()  # pybit's own rate-limit sleeps are off
    assert session.max_retries == 1
    ex.close()


def test_a_registered_secret_never_reaches_a_log_line_or_an_error(
    env: BybitEnv, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    secrets = [v for pair in KEYS.values() for v in pair]
    key = KEYS["SubBot-C"][0]
    env.fake.inject(WALLET, "http_502")
    env.fake.inject(CREATE, "accept_then_drop")
    env.fake.inject(CREATE, "ret_code", ret_code=10006, reset_in_ms=-100)
    errors: list[str] = []
    ex = env.exchange()
    ex.balance("SubBot-C")
    ex.place_order("SubBot-C", "linear", order())
    bad = env.exchange(keys={"SubBot-C": (key, "WRONG-SECRET-123")})
    for call in (
        lambda: bad.balance("SubBot-C"),
        lambda: bad.place_order("SubBot-C", "linear", order("d2")),
    ):
        with pytest.raises(AuthError) as exc:
            call()
        errors.append(str(exc.value))
        errors.append(repr(exc.value))
    with pytest.raises(UsageError) as exc_missing:
        env.exchange(keys={"SubBot-B": None})
    errors.append(str(exc_missing.value))
    assert any("retry" in r.getMessage() for r in caplog.records)  # retries were logged
    text = caplog.text + "\n".join(errors)
    for secret in [*secrets, "WRONG-SECRET-123"]:
        assert secret not in text
    assert "X-BAPI-SIGN" not in text


def test_a_placed_order_whose_state_query_fails_is_returned_as_sent(env: BybitEnv):
    env.fake.inject("/v5/order/realtime", "http_500", times=None)
    state = env.exchange().place_order("SubBot-C", "linear", order())
    [placed] = env.fake.orders
    assert (state.status, state.exchange_order_id) == ("sent", placed.order_id)
    assert state.is_open  # the journal keeps watching it
    assert len(env.calls(CREATE)) == 1


def test_refused_connection_is_unavailable_and_says_why(env: BybitEnv):
    dead = f"https://127.0.0.1:{_free_port()}"
    ex = env.exchange({"JIRITSU_EXCHANGE__BASE_URL": dead})
    with pytest.raises(ExchangeUnavailable, match="ConnectionError") as exc:
        ex.ticker("BTCUSDT")
    assert exc.value.code is None
    assert env.sleeps == BACKOFF


def test_an_untrusted_certificate_is_refused(env: BybitEnv):
    ex = env.exchange(verify=True)  # the system CAs do not know the fake's private CA
    with pytest.raises(ExchangeUnavailable, match="SSLError"):
        ex.ticker("BTCUSDT")
    assert env.fake.requests == []  # nothing was sent over an unverified connection


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
