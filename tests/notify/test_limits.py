"""Pure tests of message building: every result must pass the fake's independent validator."""

from __future__ import annotations

from jiritsu import redact
from jiritsu.notify import limits
from jiritsu.notify.limits import (
    ELLIPSIS,
    build_event_messages,
    build_report_messages,
    chunk_text,
    text_length,
    truncate,
)
from tests.fakes.discord import validate_payload


def _assert_valid(messages: list[limits.Message]) -> None:
    for msg in messages:
        assert validate_payload(msg.to_payload("Jiritsu")) is None


def test_truncate_keeps_short_text_and_marks_cut_text() -> None:
    assert truncate("abc", 3) == "abc"
    cut = truncate("abcdef", 4)
    assert cut == "abc" + ELLIPSIS
    # an emoji outside the BMP counts 2 units and is never split in half
    cut = truncate("ab\U0001f680\U0001f680", 4)
    assert cut == "ab" + ELLIPSIS
    assert text_length(cut) <= 4


def test_chunk_text_loses_nothing_and_prefers_line_breaks() -> None:
    text = "\n".join(f"line {i} " + "x" * (i % 37) for i in range(500))
    pieces = chunk_text(text, 300)
    assert "".join(pieces) == text
    assert all(text_length(p) <= 300 for p in pieces)
    assert all(p.endswith("\n") for p in pieces[:-1])
    # one unbroken word still splits, without losing characters
    word = "y" * 1000
    assert "".join(chunk_text(word, 300)) == word


def test_event_with_long_text_and_many_fields_is_split_within_limits() -> None:
    fields = {f"name {i}": "v" * 300 for i in range(60)}
    messages = build_event_messages("ERROR", "t" * 300, "d" * 10_000, fields)
    _assert_valid(messages)
    assert len(messages) > 1
    first = messages[0].embeds[0]
    assert first["description"] == "d" * (limits.DESCRIPTION_MAX - 1) + ELLIPSIS
    assert text_length(first["title"]) <= limits.TITLE_MAX
    assert first["title"].startswith("[ERROR] ttt")
    assert first["title"].endswith(f"(1/{len(messages)})")
    sent = [f for m in messages for e in m.embeds for f in e.get("fields", [])]
    assert [f["name"] for f in sent] == list(fields)
    assert all(f["value"] == "v" * 300 for f in sent)


def test_more_than_the_cap_of_messages_says_what_was_left_out() -> None:
    fields = {f"f{i}": "w" * 1024 for i in range(200)}
    messages = build_event_messages("INFO", "flood", "", fields)
    _assert_valid(messages)
    assert len(messages) == limits.MAX_MESSAGES_PER_CALL
    assert "more part(s) not sent" in messages[-1].content


def test_blank_field_names_and_values_are_replaced_not_sent_blank() -> None:
    messages = build_event_messages("INFO", "x", "  ", {"": "   ", "k": None})
    _assert_valid(messages)
    embed = messages[0].embeds[0]
    assert "description" not in embed
    assert embed["fields"][0]["name"] == limits.EMPTY
    assert embed["fields"][1]["value"] == "None"


def test_report_sections_are_split_never_cut() -> None:
    sections = [(f"Section {i}", f"row {i}: " + "z" * 50 + "\n") for i in range(3)]
    sections = [(h, body * 250) for h, body in sections]  # ~15 000 chars each
    messages = build_report_messages("Weekly report", sections, footer="paper @ host")
    _assert_valid(messages)
    assert len(messages) > 1
    assert messages[0].content.startswith("**Weekly report**")
    embeds = [e for m in messages for e in m.embeds]
    for heading, body in sections:
        mine = [e for e in embeds if e["title"] in (heading, heading + limits.CONTINUED)]
        assert "".join(e["description"] for e in mine) == body
    assert all(m.embeds[-1]["footer"]["text"] == "paper @ host" for m in messages)


def test_secrets_are_masked_before_cutting() -> None:
    secret = "sk-live-0123456789abcdef"
    redact.register_secret(secret)
    # the secret straddles the cut point: masking first means no fragment survives
    text = "a" * (limits.FIELD_VALUE_MAX - 5) + secret
    messages = build_event_messages("INFO", secret, secret, {secret: text}, footer=secret)
    raw = repr([m.to_payload("Jiritsu") for m in messages])
    assert "sk-live" not in raw
    assert "0123" not in raw
