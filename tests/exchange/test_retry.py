"""The retry policy on its own: backoff, rate-limit waits and the bound on attempts."""

from __future__ import annotations

import pytest

from jiritsu.errors import TemporaryError
from jiritsu.exchange.errors import (
    AuthError,
    ExchangeError,
    ExchangeUnavailable,
    RateLimited,
)
from jiritsu.exchange.retry import Retrier, RetryPolicy, Verdict

NOW = 1_800_000_000.0  # epoch seconds of the injected clock


class Boom(Exception):
    """A failure the test classifies as it likes."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(str(verdict.error))
        self.verdict = verdict


def retrier(sleeps: list[float], **policy: float) -> Retrier:
    return Retrier(
        policy=RetryPolicy(**policy),  # type: ignore[arg-type]
        sleep=sleeps.append,
        clock=lambda: NOW,
        random=lambda: 0.5,
    )


def run(r: Retrier, outcomes: list[Verdict | str]) -> tuple[str, list[int]]:
    """Call with scripted outcomes (a Verdict fails the attempt, a str returns it)."""
    attempts: list[int] = []

    def fn(attempt: int) -> str:
        attempts.append(attempt)
        outcome = outcomes[len(attempts) - 1]
        if isinstance(outcome, Verdict):
            raise Boom(outcome)
        return outcome

    result = r.call(fn, (Boom,), lambda exc: exc.verdict)  # type: ignore[attr-defined]
    return result, attempts


def transient(msg: str = "HTTP 502") -> Verdict:
    return Verdict("retry", ExchangeUnavailable(msg, code=502))


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter():
    p = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.5)
    assert [p.backoff(n, 0.0) for n in range(5)] == [0.25, 0.5, 1.0, 2.0, 2.0]
    assert [p.backoff(n, 0.999999) for n in range(3)] == pytest.approx([0.5, 1.0, 2.0], rel=1e-5)
    no_jitter = RetryPolicy(base_delay=1.0, jitter=0.0)
    assert no_jitter.backoff(2, 0.9) == 4.0


def test_transient_failures_are_retried_then_succeed():
    sleeps: list[float] = []
    result, attempts = run(retrier(sleeps), [transient(), transient(), "ok"])
    assert result == "ok"
    assert attempts == [0, 1, 2]
    assert sleeps == [0.375, 0.75]  # 0.5 * 2**n, three quarters of it with random 0.5


def test_retries_are_bounded_and_the_last_error_is_raised():
    sleeps: list[float] = []
    with pytest.raises(ExchangeUnavailable, match="third") as exc:
        run(
            retrier(sleeps),
            [transient("first"), transient("second"), transient(), transient("third")],
        )
    assert isinstance(exc.value, TemporaryError)
    assert len(sleeps) == 3  # 1 + 3 attempts, 3 sleeps
    assert exc.value.__cause__ is None
    assert exc.value.__suppress_context__


def test_zero_retries_means_one_attempt():
    sleeps: list[float] = []
    with pytest.raises(ExchangeUnavailable):
        run(retrier(sleeps, max_retries=0), [transient()])
    assert sleeps == []


def test_fail_verdicts_are_raised_at_once():
    sleeps: list[float] = []
    with pytest.raises(AuthError):
        run(retrier(sleeps), [Verdict("fail", AuthError("bad key", code=10003)), "never"])
    assert sleeps == []


def test_rate_limit_waits_until_the_reset():
    sleeps: list[float] = []
    reset = int((NOW + 1.25) * 1000)
    verdict = Verdict("wait", RateLimited("10006", code=10006), reset_at_ms=reset)
    result, _ = run(retrier(sleeps), [verdict, "ok"])
    assert result == "ok"
    assert sleeps == [pytest.approx(1.25)]


def test_rate_limit_reset_in_the_past_waits_a_small_positive_time():
    sleeps: list[float] = []
    past = int((NOW - 5) * 1000)
    verdict = Verdict("wait", RateLimited("10006", code=10006), reset_at_ms=past)
    assert run(retrier(sleeps, min_wait=0.05), [verdict, "ok"])[0] == "ok"
    assert sleeps == [0.05]


def test_rate_limit_reset_too_far_away_raises_rate_limited_without_sleeping():
    sleeps: list[float] = []
    far = int((NOW + 90) * 1000)
    verdict = Verdict("wait", RateLimited("10006", code=10006), reset_at_ms=far)
    with pytest.raises(RateLimited) as exc:
        run(retrier(sleeps, max_wait=10.0), [verdict, "never"])
    assert sleeps == []
    assert exc.value.code == 10006
    assert exc.value.retry_after == pytest.approx(90)
    assert isinstance(exc.value, ExchangeUnavailable)


def test_rate_limit_waits_count_as_retries():
    sleeps: list[float] = []
    reset = int((NOW + 0.2) * 1000)
    wait = Verdict("wait", RateLimited("10006", code=10006), reset_at_ms=reset)
    with pytest.raises(RateLimited):
        run(retrier(sleeps), [wait, wait, wait, wait])
    assert len(sleeps) == 3


def test_unclassified_exceptions_propagate_untouched():
    def fn(_attempt: int) -> str:
        raise KeyError("a bug, not a network problem")

    sleeps: list[float] = []
    with pytest.raises(KeyError):
        retrier(sleeps).call(fn, (Boom,), lambda exc: transient())
    assert sleeps == []


def test_on_retry_sees_each_retry_and_its_delay():
    seen: list[tuple[int, int | None, float]] = []
    sleeps: list[float] = []
    attempts = iter([transient(), transient()])

    def fn(_attempt: int) -> str:
        verdict = next(attempts, None)
        if verdict is None:
            return "ok"
        raise Boom(verdict)

    r = retrier(sleeps)
    r.call(
        fn,
        (Boom,),
        lambda exc: exc.verdict,  # type: ignore[attr-defined]
        on_retry=lambda n, v, d: seen.append((n, v.error.code, d)),
    )
    assert seen == [(0, 502, 0.375), (1, 502, 0.75)]


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"jitter": 1.5}, {"min_wait": 0}, {"min_wait": 5, "max_wait": 1}],
)
def test_nonsense_policies_are_refused(kwargs):
    with pytest.raises(ValueError, match=r"."):
        RetryPolicy(**kwargs)


def test_errors_keep_their_code():
    err = ExchangeError("x", code=42)
    assert err.code == 42
    assert RateLimited("y").retry_after is None
