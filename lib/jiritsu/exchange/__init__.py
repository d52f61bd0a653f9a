"""Exchange layer: one interface (:class:`Exchange`), Bybit and paper implementations."""

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
from jiritsu.exchange.types import MAIN

__all__ = [
    "MAIN",
    "AuthError",
    "Exchange",
    "ExchangeError",
    "ExchangeUnavailable",
    "InsufficientBalance",
    "NotFound",
    "OrderRejected",
    "RateLimited",
]
