"""Trading-pair symbols in Bybit's spelling.

Users type "BTC/USDT", "btc-usdt" or "BTCUSDT"; the exchange, the database and the candle cache
all key on "BTCUSDT". Normalising once at the edge keeps one pair from being stored under three
names.
"""

from __future__ import annotations

import re

from jiritsu.errors import UsageError

# Longest first, so the suffix match never takes a shorter quote that ends a longer one.
KNOWN_QUOTES: tuple[str, ...] = ("USDT", "USDC", "USD", "BTC", "EUR")

MAX_SYMBOL_LENGTH = 32  # the width of candles.symbol in the database

_SYMBOL_RE = re.compile(r"^([A-Z0-9]+)(?:[/\-_]([A-Z0-9]+))?$")


def normalize_symbol(s: str) -> str:
    """Return the exchange spelling of a pair: upper case, separators ("/", "-", "_") removed.

    Raises UsageError naming the input when it is empty or not a pair (spaces inside, two
    separators, punctuation, no letter, too long).
    """
    if not isinstance(s, str):
        raise UsageError(f"invalid symbol {s!r}: expected text such as 'BTCUSDT' or 'BTC/USDT'")
    text = s.strip().upper()
    match = _SYMBOL_RE.match(text)
    if not match:
        raise UsageError(f"invalid symbol {s!r}: expected e.g. 'BTCUSDT', 'BTC/USDT' or 'btc-usdt'")
    symbol = match.group(1) + (match.group(2) or "")
    if not any(ch.isalpha() for ch in symbol):
        raise UsageError(f"invalid symbol {s!r}: a symbol needs letters")
    if len(symbol) > MAX_SYMBOL_LENGTH:
        raise UsageError(f"invalid symbol {s!r}: longer than {MAX_SYMBOL_LENGTH} characters")
    return symbol


def split_symbol(s: str) -> tuple[str, str]:
    """Split a pair into (base, quote) by its known quote currency (USDT, USDC, USD, BTC, EUR).

    The exchange spelling has no separator, so the quote is recognised by suffix; a pair whose
    quote is not known is refused rather than guessed.
    """
    symbol = normalize_symbol(s)
    for quote in KNOWN_QUOTES:
        base = symbol[: -len(quote)]
        if symbol.endswith(quote) and base and any(ch.isalpha() for ch in base):
            return base, quote
    known = ", ".join(KNOWN_QUOTES)
    raise UsageError(f"cannot split symbol {s!r}: its quote currency is not one of {known}")
