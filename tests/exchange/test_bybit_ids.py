"""Deterministic client order ids and transfer ids."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest

from jiritsu.exchange.ids import client_order_id, is_valid_client_order_id, new_transfer_id
from tests.conftest import REPO


def test_same_inputs_same_id_and_every_input_matters():
    a = client_order_id("SubBot-A", "2026-01-01T00:00Z/buy", 0)
    assert a == client_order_id("SubBot-A", "2026-01-01T00:00Z/buy", 0)
    others = {
        client_order_id("SubBot-B", "2026-01-01T00:00Z/buy", 0),
        client_order_id("SubBot-A", "2026-01-01T00:05Z/buy", 0),
        client_order_id("SubBot-A", "2026-01-01T00:00Z/buy", 1),
    }
    assert a not in others
    assert len(others) == 3


def test_shape_slug_hash_leg():
    cid = client_order_id("SubBot-A", "decision-1", 2)
    slug, digest, leg = cid.split("-")
    assert slug == "SubBotA"
    assert len(digest) == 16
    int(digest, 16)
    assert leg == "L2"


def test_known_value_pins_the_derivation():
    # Changing the derivation would re-send live decisions under new ids: never by accident.
    assert client_order_id("SubBot-A", "decision-1", 2) == "SubBotA-cf717b97289170d7-L2"


def test_stable_across_processes():
    code = (
        "from jiritsu.exchange.ids import client_order_id;"
        "print(client_order_id('SubBot-A', 'decision-1', 2))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.strip()
    assert out == client_order_id("SubBot-A", "decision-1", 2)


@pytest.mark.parametrize(
    ("bot", "leg"),
    [("x", 0), ("a" * 40, 0), ("Bot_with-Many_Parts-2026", 999_999_999), ("---", 7)],
)
def test_always_a_valid_order_link_id(bot, leg):
    cid = client_order_id(bot, "k" * 500, leg)
    assert len(cid) <= 36
    assert is_valid_client_order_id(cid)


@pytest.mark.parametrize("bad", [("", "k", 0), ("b", "", 0), ("b", "k", -1), ("b", "k", True)])
def test_bad_inputs_are_refused(bad):
    with pytest.raises(ValueError, match=r"."):
        client_order_id(*bad)


def test_validity_check():
    assert is_valid_client_order_id("A-1_b")
    assert not is_valid_client_order_id("")
    assert not is_valid_client_order_id("has space")
    assert not is_valid_client_order_id("x" * 37)


def test_transfer_ids_are_fresh_uuid4():
    a, b = new_transfer_id(), new_transfer_id()
    assert a != b
    assert uuid.UUID(a).version == 4
