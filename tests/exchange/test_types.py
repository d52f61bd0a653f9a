"""Text read back from a table becomes an exchange Literal only when it is one of its words."""

from __future__ import annotations

import pytest

from jiritsu.exchange.types import CATEGORIES, POSITION_SIDES, SIDES, one_of


@pytest.mark.parametrize(
    ("value", "allowed"),
    [("linear", CATEGORIES), ("spot", CATEGORIES), ("Sell", SIDES), ("", POSITION_SIDES)],
)
def test_known_words_pass(value: str, allowed: tuple[str, ...]) -> None:
    assert one_of(value, allowed, "word") == value


@pytest.mark.parametrize(
    ("value", "allowed", "what"),
    [("inverse", CATEGORIES, "category"), ("buy", SIDES, "side"), ("", SIDES, "side")],
)
def test_other_text_is_an_error_naming_it(value: str, allowed: tuple[str, ...], what: str) -> None:
    with pytest.raises(ValueError, match=f"unknown {what} {value!r}"):
        one_of(value, allowed, what)
