"""Build Discord webhook messages that always fit Discord's limits (pure functions, no I/O).

Discord answers 400 to anything over a limit and the alert is lost, so every message is cut to
size here, before it leaves the process. All limits live in the constants below and nowhere else.

Rules the builders follow (tests rely on them):

- Every string is passed through :func:`jiritsu.redact.redact` *before* it is measured or cut, so
  a secret can never survive half-masked at a cut point.
- A title, field name, field value, description of an event, or footer that is too long is cut and
  ends with :data:`ELLIPSIS`; nothing else is ever shortened.
- Fields that do not fit in one embed (more than 25, or too many characters) go on to further
  embeds; embeds that do not fit in one message (more than 10, or more than 6000 characters
  together) go on to further messages. Event parts carry ``(i/n)`` in their title, report
  parts in their content.
- A report's section text is never cut: it is split into consecutive pieces, preferably at line
  breaks, whose concatenation is exactly the original text.
- At most :data:`MAX_MESSAGES_PER_CALL` messages are produced per call; if more were needed, the
  last one says in its ``content`` how many parts were left out.
- Lengths are measured in UTF-16 code units (:func:`text_length`), which is never less than the
  count of code points, so the result fits whichever way Discord counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jiritsu.redact import redact

# Discord's documented limits (https://discord.com/developers/docs/resources/message#embed-object).
CONTENT_MAX = 2000
EMBEDS_PER_MESSAGE = 10
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_PER_EMBED = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
EMBED_TOTAL_MAX = 6000  # title + description + field names/values + footer + author, all embeds
USERNAME_MAX = 80

# Our own choices.
ELLIPSIS = "…"
EMPTY = "\u200b"  # Discord rejects empty field names/values; a zero-width space is "nothing"
MAX_MESSAGES_PER_CALL = 10  # one alert or report never floods the channel or the rate limit
INLINE_MAX = 40  # short fields sit side by side
MIN_PIECE = 500  # a report piece smaller than this starts a new message instead
CONTINUED = " (cont.)"

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
COLOURS: Mapping[str, int] = {
    "DEBUG": 0x95A5A6,  # grey
    "INFO": 0x3498DB,  # blue
    "WARNING": 0xF1A10E,  # amber
    "ERROR": 0xE74C3C,  # red
    "CRITICAL": 0xAD1457,  # dark magenta
}
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR"}


def normalise_level(level: object) -> str | None:
    """Return the canonical level name, or None when ``level`` is not one."""
    name = str(level).strip().upper()
    name = _ALIASES.get(name, name)
    return name if name in LEVELS else None


def colour_for(level: str) -> int:
    """Embed colour of a level; an unknown level gets the WARNING colour (visible, not alarming)."""
    return COLOURS.get(normalise_level(level) or "WARNING", COLOURS["WARNING"])


def text_length(text: str) -> int:
    """Length as Discord may count it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _prefix(text: str, units: int) -> str:
    """Longest prefix of ``text`` whose :func:`text_length` is at most ``units``."""
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > units:
            return text[:i]
    return text


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to ``limit`` units; a cut text ends with :data:`ELLIPSIS`."""
    if limit < 1:
        raise ValueError("limit must be positive")
    if text_length(text) <= limit:
        return text
    return _prefix(text, limit - text_length(ELLIPSIS)) + ELLIPSIS


def split_once(text: str, size: int) -> tuple[str, str]:
    """Split off a first piece of at most ``size`` units: ``(piece, rest)``, ``piece + rest ==
    text``.

    Cuts after a line break when one lies in the second half of the piece, else after a space,
    else anywhere (never inside a surrogate pair).
    """
    head = _prefix(text, size)
    if len(head) == len(text):
        return text, ""
    if size < 2:
        raise ValueError("size must be at least 2")
    cut = len(head)
    for sep in ("\n", " "):
        at = head.rfind(sep)
        if at >= len(head) // 2:
            cut = at + 1
            break
    return text[:cut], text[cut:]


def chunk_text(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of at most ``size`` units whose concatenation is ``text``."""
    pieces: list[str] = []
    rest = text
    while rest:
        piece, rest = split_once(rest, size)
        pieces.append(piece)
    return pieces


def format_value(value: object) -> str:
    """Text of a field value: containers as compact JSON, everything else through ``str``."""
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple)):
        try:
            return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def embed_length(embed: Mapping[str, Any]) -> int:
    """Characters of one embed that count towards Discord's 6000 total."""
    total = text_length(embed.get("title", "")) + text_length(embed.get("description", ""))
    for fld in embed.get("fields", ()):
        total += text_length(fld["name"]) + text_length(fld["value"])
    total += text_length(embed.get("footer", {}).get("text", ""))
    total += text_length(embed.get("author", {}).get("name", ""))
    return total


@dataclass(frozen=True)
class Message:
    """One webhook execution: optional ``content`` plus up to 10 embeds, already within limits."""

    content: str = ""
    embeds: tuple[dict[str, Any], ...] = field(default_factory=tuple)

    def embed_chars(self) -> int:
        return sum(embed_length(e) for e in self.embeds)

    def to_payload(self, username: str | None = None) -> dict[str, Any]:
        """JSON body for ``POST /webhooks/{id}/{token}``; mentions are never parsed (no pings)."""
        payload: dict[str, Any] = {"allowed_mentions": {"parse": []}}
        if username:
            payload["username"] = truncate(redact(username), USERNAME_MAX)
        if self.content:
            payload["content"] = self.content
        if self.embeds:
            payload["embeds"] = [dict(e) for e in self.embeds]
        return payload


def _non_blank(text: str) -> str:
    """Discord refuses empty or blank field names/values."""
    return text if text.strip() else EMPTY


def _part_suffix(index: int, count: int) -> str:
    return "" if count <= 1 else f" ({index}/{count})"


def _with_suffix(base: str, suffix: str, limit: int) -> str:
    if not suffix:
        return truncate(base, limit)
    return truncate(base, limit - text_length(suffix)) + suffix


def _footer_text(footer: str | None) -> str:
    return truncate(redact(footer), FOOTER_MAX) if footer else ""


def _pack(bodies: Sequence[tuple[dict[str, Any], int]], budget: int) -> list[list[dict[str, Any]]]:
    """Group sized embeds into messages: at most 10 embeds and ``budget`` characters each."""
    messages: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    used = 0
    for body, size in bodies:
        if current and (len(current) >= EMBEDS_PER_MESSAGE or used + size > budget):
            messages.append(current)
            current, used = [], 0
        current.append(body)
        used += size
    if current:
        messages.append(current)
    return messages


def _cap(groups: list[list[dict[str, Any]]]) -> tuple[list[list[dict[str, Any]]], int]:
    if len(groups) <= MAX_MESSAGES_PER_CALL:
        return groups, 0
    return groups[:MAX_MESSAGES_PER_CALL], len(groups) - MAX_MESSAGES_PER_CALL


def _omitted_note(omitted: int) -> str:
    return f"{ELLIPSIS} {omitted} more part(s) not sent: too long for Discord" if omitted else ""


def _finish(
    embeds: list[dict[str, Any]], colour: int, footer: str, timestamp: str | None
) -> tuple[dict[str, Any], ...]:
    for embed in embeds:
        embed["color"] = colour
    last = embeds[-1]
    if footer:
        last["footer"] = {"text": footer}
    if timestamp:
        last["timestamp"] = timestamp
    return tuple(embeds)


def build_event_messages(
    level: str,
    title: str,
    message: str,
    fields: Mapping[str, object] | None = None,
    *,
    footer: str | None = None,
    timestamp: str | None = None,
) -> list[Message]:
    """Messages for one event: title ``[LEVEL] title``, the text as description, fields after.

    The description is cut to fit one embed; fields spill over into further embeds/messages.
    """
    name = normalise_level(level) or str(level).strip().upper() or "WARNING"
    colour = colour_for(name)
    base_title = f"[{name}] {redact(title)}" if title else f"[{name}]"
    foot = _footer_text(footer)
    widest = _part_suffix(MAX_MESSAGES_PER_CALL, MAX_MESSAGES_PER_CALL)
    title_room = min(TITLE_MAX, text_length(base_title) + text_length(widest))
    budget = EMBED_TOTAL_MAX - title_room - text_length(foot)

    first: dict[str, Any] = {}
    size = 0
    if message and message.strip():
        first["description"] = truncate(redact(message), min(DESCRIPTION_MAX, budget))
        size = text_length(first["description"])
    bodies: list[tuple[dict[str, Any], int]] = []
    current, current_fields = first, 0
    for key, value in (fields or {}).items():
        fname = _non_blank(truncate(redact(str(key)), FIELD_NAME_MAX))
        fvalue = _non_blank(truncate(redact(format_value(value)), FIELD_VALUE_MAX))
        inline = text_length(fvalue) <= INLINE_MAX and "\n" not in fvalue
        fsize = text_length(fname) + text_length(fvalue)
        if current_fields >= FIELDS_PER_EMBED or (current and size + fsize > budget):
            bodies.append((current, size))
            current, current_fields, size = {}, 0, 0
        current.setdefault("fields", []).append({"name": fname, "value": fvalue, "inline": inline})
        current_fields += 1
        size += fsize
    bodies.append((current, size))

    groups, omitted = _cap(_pack(bodies, budget))
    out: list[Message] = []
    for i, group in enumerate(groups, start=1):
        group[0]["title"] = _with_suffix(base_title, _part_suffix(i, len(groups)), TITLE_MAX)
        note = _omitted_note(omitted) if i == len(groups) else ""
        out.append(Message(content=note, embeds=_finish(group, colour, foot, timestamp)))
    return out


def build_report_messages(
    title: str,
    sections: Sequence[tuple[str, str]],
    *,
    footer: str | None = None,
    timestamp: str | None = None,
    colour: int = COLOURS["INFO"],
) -> list[Message]:
    """Messages for a long report: bold title as content, one embed per section piece.

    Section text is split, never cut: a section that does not fit in the room left in the
    current message continues in the next embed, titled ``heading (cont.)``. Pieces fill each
    message up to the total limit, so a report needs as few messages as possible.
    """
    foot = _footer_text(footer)
    budget = EMBED_TOTAL_MAX - text_length(foot)
    groups: list[list[dict[str, Any]]] = [[]]
    used = 0
    for heading, text in sections:
        head = redact(str(heading or ""))
        rest = redact(str(text or ""))
        first = True
        while first or rest:
            embed: dict[str, Any] = {}
            if head:
                embed["title"] = _with_suffix(head, "" if first else CONTINUED, TITLE_MAX)
            size = embed_length(embed)
            room = min(DESCRIPTION_MAX, budget - used - size)
            full = len(groups[-1]) >= EMBEDS_PER_MESSAGE
            if groups[-1] and (full or room < text_length(rest[:MIN_PIECE])):
                groups.append([])
                used = 0
                continue
            piece, rest = split_once(rest, room) if rest else ("", "")
            if piece.strip():  # Discord refuses a blank description
                embed["description"] = piece
            if embed:
                groups[-1].append(embed)
                used += embed_length(embed)
            first = False

    base = f"**{truncate(redact(title), TITLE_MAX)}**" if title else ""
    groups, omitted = _cap([g for g in groups if g])
    if not groups:
        return [Message(content=base or EMPTY)]
    out: list[Message] = []
    for i, group in enumerate(groups, start=1):
        parts = [base + _part_suffix(i, len(groups))]
        if i == len(groups) and omitted:
            parts.append(_omitted_note(omitted))
        content = truncate("\n".join(p for p in parts if p), CONTENT_MAX)
        out.append(Message(content=content, embeds=_finish(group, colour, foot, timestamp)))
    return out
