"""Idempotency keys: the deterministic client order id and the transfer id.

An order's id is derived from (bot, decision, leg) and nothing else, so a retry, a second process
or a restart that re-sends the same decision sends the SAME Bybit ``orderLinkId``, and Bybit
answers "duplicate" (110072) instead of opening a second position.
"""

from __future__ import annotations

import hashlib
import re
import uuid

MAX_CLIENT_ORDER_ID = 36  # Bybit's orderLinkId limit
CLIENT_ORDER_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,36}$")
_SLUG_LEN = 8
_HASH_LEN = 16  # 64 bits: collisions within one bot's lifetime are not a practical concern


def client_order_id(bot: str, decision_key: str, leg: int) -> str:
    """``<bot slug>-<16 hex of sha256(bot, decision)>-L<leg>``, at most 36 characters.

    Stable across processes and Python versions (no ``hash()``); the slug only makes ids
    readable on the exchange, uniqueness comes from the hash, which covers the full bot name.
    """
    if not bot or not decision_key:
        raise ValueError("bot and decision_key must be non-empty")
    if isinstance(leg, bool) or not isinstance(leg, int) or leg < 0:
        raise ValueError(f"leg must be a non-negative integer, not {leg!r}")
    slug = re.sub(r"[^A-Za-z0-9]", "", bot)[:_SLUG_LEN] or "bot"
    digest = hashlib.sha256(f"{bot}\x1f{decision_key}".encode()).hexdigest()[:_HASH_LEN]
    cid = f"{slug}-{digest}-L{leg}"
    if len(cid) > MAX_CLIENT_ORDER_ID:
        raise ValueError(f"leg {leg} makes the client order id longer than 36 characters")
    return cid


def is_valid_client_order_id(cid: str) -> bool:
    """Whether Bybit accepts ``cid`` as an orderLinkId (1..36 of letters, digits, - and _)."""
    return isinstance(cid, str) and bool(CLIENT_ORDER_ID_RE.fullmatch(cid))


def new_transfer_id() -> str:
    """A fresh transfer id (UUID4, the form Bybit requires); store it BEFORE sending."""
    return str(uuid.uuid4())
