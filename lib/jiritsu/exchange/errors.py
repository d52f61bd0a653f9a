"""Exchange errors, typed so that the caller knows what to do without reading messages.

- :class:`ExchangeUnavailable` (a :class:`~jiritsu.errors.TemporaryError`): network errors, 5xx,
  rate limits that outlasted the bounded retries. Record ERROR, alert, pause the bot; the same
  request may succeed later (orders are idempotent by client id, so re-sending is safe).
- :class:`OrderRejected` and subclasses: the exchange (or our own pre-check) refused the request
  for a business reason. Never retried.
- :class:`AuthError`: bad key, signature or permission. Never retried; a human must act.
"""

from __future__ import annotations

from jiritsu.errors import JiritsuError, TemporaryError


class ExchangeError(JiritsuError):
    """Base of every exchange error; ``code`` is the exchange's retCode or HTTP status."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class ExchangeUnavailable(ExchangeError, TemporaryError):
    """Retries ran out: timeouts, dropped connections, HTTP 5xx, rate limits."""


class RateLimited(ExchangeUnavailable):
    """Rate limited and the wait the server asked for exceeded our bound (or an IP ban).

    ``retry_after`` (seconds, when known) tells the caller how long to leave the exchange alone.
    """

    def __init__(
        self, message: str, *, code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class AuthError(ExchangeError):
    """Invalid key, signature, permission or IP (Bybit 10003/10004/10005/10010)."""


class OrderRejected(ExchangeError):
    """A business refusal: bad parameters, quantity below the minimum, reduce-only violated."""


class InsufficientBalance(OrderRejected):
    """Not enough available balance for the order or transfer."""


class NotFound(ExchangeError):
    """The order, transfer or instrument does not exist."""
