"""Fixtures for the Gemini client tests: the fake Gemini on loopback and a migrated database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.gemini import FakeGemini

KEYS = ("gk-test-key-one-111", "gk-test-key-two-222", "gk-test-key-three-333")


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(keys=KEYS) as server:
        yield server
