"""The retry policy of the exchange layer: which failures are tried again, and how long to wait.

It is pure on purpose: the exchange classifies each failure into a :class:`Verdict` and this
module decides what happens next, with ``sleep``, ``clock`` and ``random`` injected so tests run
in microseconds and can assert every wait.

Rules (see :mod:`jiritsu.exchange.errors` for what the caller then does):
- ``retry``: transient (timeouts, dropped connections, HTTP 5xx, busy). Exponential backoff with
  jitter, at most ``max_retries`` more attempts; then the verdict's error (an
  :class:`~jiritsu.exchange.errors.ExchangeUnavailable`) is raised.
- ``wait``: rate limited with a reset time from the server. Sleep until the reset, clamped to a
  small positive minimum (a reset in the PAST is normal: clocks differ), and counted as a retry.
  A reset further away than ``max_wait`` is not slept through inside a tick:
  :class:`~jiritsu.exchange.errors.RateLimited` is raised at once.
- ``fail``: business or authentication errors; raised at once, never retried.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from jiritsu.exchange.errors import ExchangeError, RateLimited

T = TypeVar("T")

Action = Literal["retry", "wait", "fail"]


@dataclass(frozen=True)
class Verdict:
    """What to do about one failed attempt; ``error`` is raised if we stop here."""

    action: Action
    error: ExchangeError
    reset_at_ms: int | None = None  # "wait": when the server's limit resets (epoch ms)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries. Defaults: 3 retries, 0.5 s doubling to at most 8 s, half jitter."""

    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5  # the fraction of each backoff that is randomised
    min_wait: float = 0.05  # floor for a rate-limit wait (reset in the past or right now)
    max_wait: float = 10.0  # a longer rate-limit wait raises RateLimited instead of sleeping

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be within [0, 1]")
        if self.min_wait <= 0 or self.max_wait < self.min_wait:
            raise ValueError("need 0 < min_wait <= max_wait")

    def backoff(self, retry: int, rand: float) -> float:
        """Delay before retry number ``retry`` (0-based); ``rand`` in [0, 1) picks the jitter."""
        full = min(self.max_delay, self.base_delay * (2**retry))
        return full * (1 - self.jitter) + full * self.jitter * rand

    def rate_limit_wait(self, reset_at_ms: int | None, now: float) -> float | None:
        """Seconds to wait for a rate-limit reset; None when that is longer than ``max_wait``.

        ``now`` is epoch seconds. A reset in the past (clock skew, a slow answer) gives
        ``min_wait`` rather than a negative sleep. None for a missing reset too: the caller then
        uses the ordinary backoff (see :meth:`Retrier.delay_for`).
        """
        if reset_at_ms is None:
            return None
        wait = reset_at_ms / 1000 - now
        if wait > self.max_wait:
            return None
        return max(wait, self.min_wait)


@dataclass
class Retrier:
    """Runs a call under a :class:`RetryPolicy`; sleep/clock/random are injectable."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time  # epoch seconds; compared with server reset times
    random: Callable[[], float] = _random.random

    def delay_for(self, verdict: Verdict, retry: int) -> float:
        """The wait before ``retry`` for a retry/wait verdict; raises RateLimited if too long."""
        if verdict.action == "wait" and verdict.reset_at_ms is not None:
            wait = self.policy.rate_limit_wait(verdict.reset_at_ms, self.clock())
            if wait is None:
                seconds = max(verdict.reset_at_ms / 1000 - self.clock(), 0.0)
                raise RateLimited(
                    f"{verdict.error} (the limit resets in {seconds:.1f} s, longer than the "
                    f"{self.policy.max_wait:g} s we wait inside a request)",
                    code=verdict.error.code,
                    retry_after=seconds,
                ) from None
            return wait
        return self.policy.backoff(retry, self.random())

    def call(
        self,
        fn: Callable[[int], T],
        catch: tuple[type[BaseException], ...],
        classify: Callable[[BaseException], Verdict],
        on_retry: Callable[[int, Verdict, float], None] | None = None,
    ) -> T:
        """Call ``fn(attempt)`` until it returns; exceptions in ``catch`` go through
        ``classify``. Anything else propagates untouched (a bug is not a network problem)."""
        retry = 0
        while True:
            try:
                return fn(retry)
            except catch as exc:
                verdict = classify(exc)
            if verdict.action == "fail" or retry >= self.policy.max_retries:
                raise verdict.error from None
            delay = self.delay_for(verdict, retry)
            if on_retry is not None:
                on_retry(retry, verdict, delay)
            self.sleep(delay)
            retry += 1
