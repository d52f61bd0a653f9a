"""The fake must be as strict as Discord, or the notifier tests prove nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import REPO
from tests.fakes.discord import FakeDiscord


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server


def _post(url: str, payload: Any, **kwargs: Any) -> requests.Response:
    return requests.post(url, json=payload, timeout=5, **kwargs)


def _embed(**extra: Any) -> dict[str, Any]:
    return {"title": "t", **extra}


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"content": "x" * 2001}, "content"),
        ({"embeds": [_embed() for _ in range(11)]}, "embeds"),
        ({"embeds": [_embed(title="x" * 257)]}, "title"),
        ({"embeds": [_embed(description="x" * 4097)]}, "description"),
        ({"embeds": [_embed(fields=[{"name": "n", "value": "v"}] * 26)]}, "fields"),
        ({"embeds": [_embed(fields=[{"name": "n" * 257, "value": "v"}])]}, "name"),
        ({"embeds": [_embed(fields=[{"name": "n", "value": "v" * 1025}])]}, "value"),
        ({"embeds": [_embed(fields=[{"name": "n", "value": " "}])]}, "value"),
        ({"embeds": [_embed(footer={"text": "f" * 2049})]}, "footer"),
        ({"embeds": [_embed(author={"name": "a" * 257})]}, "author"),
        ({"embeds": [_embed(description="d" * 4000), _embed(description="d" * 2000)]}, "6000"),
        ({"embeds": [_embed(timestamp="yesterday")]}, "timestamp"),
        ({"content": "x", "username": "Discord bot"}, "username"),
        ({}, "empty message"),
    ],
)
def test_every_limit_is_enforced_with_a_discord_style_400(
    fake: FakeDiscord, payload: dict[str, Any], where: str
) -> None:
    resp = _post(fake.url_for(), payload)
    assert resp.status_code == 400
    assert where in json.dumps(resp.json())
    assert fake.messages == []
    assert fake.rejected[0].status == 400


def test_exactly_at_the_limits_is_accepted(fake: FakeDiscord) -> None:
    fields = [{"name": "n" * 256, "value": "v" * 1024}] * 3  # 3840
    embeds = [
        {"title": "t" * 256, "description": "d" * 1000, "fields": fields},
        {"description": "e" * 856, "footer": {"text": "f" * 48}},
    ]  # 256 + 1000 + 3840 + 856 + 48 = 6000
    resp = _post(fake.url_for(), {"content": "c" * 2000, "embeds": embeds})
    assert resp.status_code == 204
    assert resp.content == b""
    assert len(fake.messages) == 1


def test_wait_true_returns_the_message(fake: FakeDiscord) -> None:
    resp = _post(fake.url_for(), {"content": "hi"}, params={"wait": "true"})
    assert resp.status_code == 200
    body = resp.json()
    assert body["content"] == "hi"
    assert body["webhook_id"] == "1"
    assert body["id"].isdigit()


def test_content_type_must_be_json(fake: FakeDiscord) -> None:
    resp = requests.post(fake.url_for(), data=b'{"content": "hi"}', timeout=5)
    assert resp.status_code == 400
    assert fake.messages == []


def test_unknown_deleted_and_wrong_token(fake: FakeDiscord) -> None:
    url = fake.url_for("5", "good")
    assert _post(f"{fake.base_url}/api/webhooks/6/good", {"content": "x"}).status_code == 404
    assert _post(url.replace("good", "bad"), {"content": "x"}).status_code == 401
    fake.delete_webhook("5")
    resp = _post(url, {"content": "x"})
    assert resp.status_code == 404
    assert resp.json() == {"message": "Unknown Webhook", "code": 10015}


def test_scripted_429_and_bucket_headers(fake: FakeDiscord) -> None:
    url = fake.url_for()
    fake.queue_429(retry_after=0.25, global_=True)
    resp = _post(url, {"content": "x"})
    assert resp.status_code == 429
    assert resp.json() == {
        "message": "You are being rate limited.",
        "retry_after": 0.25,
        "global": True,
    }
    assert float(resp.headers["Retry-After"]) == 0.25

    fake.set_bucket(limit=2, reset_after=5.0)
    first = _post(url, {"content": "x"})
    second = _post(url, {"content": "x"})
    third = _post(url, {"content": "x"})
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < float(second.headers["X-RateLimit-Reset-After"]) <= 5.0
    assert third.status_code == 429
    assert 0 < third.json()["retry_after"] <= 5.0


def test_runs_standalone_and_prints_its_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.discord", "--port", "0", "--seconds", "20"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        assert _post(url, {"content": "manual"}).status_code == 204
    finally:
        proc.terminate()
        proc.wait(timeout=10)
