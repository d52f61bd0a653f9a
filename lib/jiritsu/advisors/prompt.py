"""The Gemini advisor's prompt and answer schema: our own numbers in, one allowed action out.

Why it looks like this:

* **Only our numbers.** The user text is a deterministic rendering of the
  :class:`~jiritsu.advisors.base.MarketSnapshot`: the OHLCV summary, indicators, the bot's
  position and profile, the news sentiment as ONE number with its sample count, and the allowed
  actions. No headline or other third-party text is ever included, so nothing a news source
  writes can reach the advisor's prompt. Strings that do appear (keys, the position side, the
  rule's reason) are our own, and are still reduced to a safe character set and length.
* **Deterministic.** The same snapshot always gives byte-identical text (sorted keys, numbers
  rounded to 6 significant digits, fixed wording), so :attr:`Prompt.prompt_hash` identifies
  exactly what the model saw and a decision can be replayed.
* **A closed answer.** :class:`AdvisorAnswer` is sent as the response schema and checked again
  by :func:`validate_answer`: the action is one of BUY/SELL/HOLD, the confidence a finite number
  in [0, 1], the reason non-empty and at most :data:`REASON_MAX` characters. Whether the action is
  *allowed right now* is checked by the advisor, not here.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from jiritsu.advisors.base import ACTIONS, Action, MarketSnapshot

PROMPT_VERSION = "advisor-v1"  # bump whenever the wording or the rendering changes
REASON_MAX = 500
SIG_DIGITS = 6
_TEXT_MAX = 200  # our own short texts (the rule's reason) in the prompt
_SAFE = re.compile(r"[^A-Za-z0-9 _.,:;%+\-()/=]")  # no quotes, braces or markers
_KEY_SAFE = re.compile(r"[^A-Za-z0-9_]")
_INDICATOR_ORDER = (
    "ema_fast",
    "ema_slow",
    "rsi",
    "atr",
    "atr_pct",
    "adx",
    "plus_di",
    "minus_di",
)

Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=REASON_MAX)
]


class AdvisorAnswer(BaseModel):
    """One trading decision: an allowed action, a confidence and a short reason."""

    # This docstring and the field descriptions are sent to the model in the response schema.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    action: Literal["BUY", "SELL", "HOLD"] = Field(
        description="One of the allowed actions listed in the prompt."
    )
    confidence: float = Field(
        ge=0.0, le=1.0, description="How sure you are, from 0.0 (not at all) to 1.0 (certain)."
    )
    reason: Reason = Field(
        description=f"One or two sentences citing the given figures (at most {REASON_MAX} chars)."
    )


def validate_answer(value: Any) -> AdvisorAnswer:
    """Validate an answer again, whatever the SDK returned (``response.parsed`` may be None or a
    dict); raises ``pydantic.ValidationError`` or ``TypeError`` when it is not an answer."""
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an answer object, got {type(value).__name__}")
    answer = AdvisorAnswer.model_validate(dict(value))
    if not math.isfinite(answer.confidence):  # belt and braces: allow_inf_nan=False covers it
        raise TypeError("confidence is not a finite number")
    return answer


@dataclass(frozen=True)
class Proposal:
    """The rule's proposal shown to the model in hybrid mode (it confirms or vetoes it)."""

    action: Action
    confidence: float
    reason: str


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str

    @property
    def prompt_hash(self) -> str:
        """sha256 of the system instruction and the user text: stored with each decision."""
        return prompt_hash(self.system, self.user)


def prompt_hash(system: str, user: str) -> str:
    """sha256 hex of ``system`` and ``user`` (NUL-separated, so the split point is unambiguous)."""
    return hashlib.sha256(f"{system}\x00{user}".encode()).hexdigest()


# --------------------------------------------------------------------------- rendering


def fmt_number(value: Any) -> str:
    """A number rounded to :data:`SIG_DIGITS` significant digits, never in exponent form.

    ``43210.54321 -> 43210.5``, ``0.001234567 -> 0.00123457``, ``NaN -> n/a``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(x)))
    decimals = min(12, max(0, SIG_DIGITS - 1 - magnitude))
    text = f"{round(x, decimals):.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def safe_text(text: str, limit: int = _TEXT_MAX) -> str:
    """Our own short text, reduced to a plain character set and ``limit`` characters."""
    clean = _SAFE.sub("", " ".join(str(text).split()))
    clean = " ".join(clean.split())
    return clean[:limit].rstrip()


def _fmt_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (bool, int, float)) or type(value).__name__ == "Decimal":
        return fmt_number(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return fmt_number(value.item())
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "{" + _fmt_mapping(value) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt_value(v) for v in value) + "]"
    if isinstance(value, str):
        return safe_text(value, 40) or "n/a"
    return "n/a"  # anything else is not ours to show


def _key(name: Any) -> str:
    return _KEY_SAFE.sub("_", str(name))[:40] or "_"


def _fmt_mapping(values: Mapping[str, Any], order: Sequence[str] = ()) -> str:
    keys = [k for k in order if k in values]
    keys += sorted((k for k in values if k not in keys), key=str)
    return ", ".join(f"{_key(k)}={_fmt_value(values[k])}" for k in keys)


def _timeframe(tf: str) -> str:
    if tf.isdigit():
        minutes = int(tf)
        return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
    return {"D": "1 day", "W": "1 week", "M": "1 month"}.get(tf, safe_text(tf, 8))


def _position(position: Mapping[str, Any]) -> str:
    side = str(position.get("side") or "").strip()
    size = position.get("size")
    try:
        flat = not side or float(size or 0) == 0
    except (TypeError, ValueError):
        flat = not side
    if flat:
        return "flat (no open position)"
    label = {"Buy": "long", "Sell": "short"}.get(side, safe_text(side, 10))
    rest = {k: v for k, v in position.items() if k != "side"}
    return f"{label}, {_fmt_mapping(rest, ('size', 'avg_price', 'unrealised_pnl'))}"


def _sentiment(snapshot: MarketSnapshot) -> str:
    if snapshot.sentiment is None or snapshot.sentiment_count <= 0:
        return "unknown (no scored news items)"
    return (
        f"{fmt_number(snapshot.sentiment)} on a scale from -1 (very negative) to +1 (very "
        f"positive), the moving average of {int(snapshot.sentiment_count)} scored news items"
    )


def allowed(snapshot: MarketSnapshot) -> tuple[Action, ...]:
    """The allowed actions in a fixed order (BUY, SELL, HOLD), unknown names dropped."""
    given = set(snapshot.allowed_actions)
    return tuple(a for a in ACTIONS if a in given)


def system_instruction(profile: str) -> str:
    """The fixed system instruction for a bot of ``profile`` (stable, balanced, aggressive)."""
    return (
        "You are a risk-aware crypto trading assistant for a trading bot with the "
        f"{safe_text(profile, 20) or 'balanced'} risk profile. "
        "Judge the market snapshot you are given and choose exactly one of the allowed actions "
        "it lists. Use ONLY the numbers in the snapshot: do not use prices, news, events or any "
        "other figures from your own knowledge or memory, and do not assume anything the "
        "snapshot does not state. When the figures do not clearly favour a trade, answer HOLD. "
        "BUY opens or adds to a long position or closes a short one; SELL closes a long position "
        "or opens a short one where allowed; HOLD does nothing. Confidence is a number from 0.0 "
        "to 1.0. The reason is one or two short sentences naming the figures that decided it. "
        "Answer only with JSON matching the response schema."
    )


def render_snapshot(snapshot: MarketSnapshot, proposal: Proposal | None = None) -> str:
    """The user text: a compact, deterministic rendering of ``snapshot`` (see module doc)."""
    choices = allowed(snapshot)
    lines = [
        f"Bot: {safe_text(snapshot.bot, 40)} (profile: {safe_text(snapshot.profile, 20)})",
        f"Market: {safe_text(snapshot.symbol, 30)}, {_timeframe(snapshot.timeframe)} bars, "
        f"last closed bar opened {_fmt_value(snapshot.bar_ts)}, "
        f"close {fmt_number(snapshot.price)}",
        f"Price summary: {_fmt_mapping(snapshot.ohlcv)}",
        f"Indicators: {_fmt_mapping(snapshot.indicators, _INDICATOR_ORDER)}",
        f"Position: {_position(snapshot.position)}",
        f"News sentiment: {_sentiment(snapshot)}",
    ]
    if proposal is not None:
        lines.append(
            f"Rule proposal: {proposal.action} with confidence {fmt_number(proposal.confidence)} "
            f"({safe_text(proposal.reason)}). Confirm it by answering {proposal.action}, or veto "
            "it by answering HOLD."
        )
    lines.append(f"Allowed actions: {', '.join(choices) or 'none'}")
    lines.append(
        'Answer as JSON: {"action": '
        + " | ".join(f'"{a}"' for a in choices)
        + f', "confidence": 0.0 to 1.0, "reason": "at most {REASON_MAX} characters"}}'
    )
    return "\n".join(lines)


def build_prompt(snapshot: MarketSnapshot, proposal: Proposal | None = None) -> Prompt:
    """System instruction and user text for ``snapshot`` (and the rule's ``proposal``)."""
    return Prompt(system_instruction(snapshot.profile), render_snapshot(snapshot, proposal))
