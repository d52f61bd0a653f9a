"""DiscordNotifier against the loopback fake: the real ``requests`` client, a real socket."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime

import pytest

from jiritsu import redact
from jiritsu.errors import UsageError
from jiritsu.notify import DiscordNotifier, LogNotifier, Notifier, build_notifier
from jiritsu.notify.limits import COLOURS, DESCRIPTION_MAX, ELLIPSIS
from tests.fakes.discord import FakeDiscord

TOKEN = "tok-0123456789"


class Sleeps(list):
    """Injected ``sleep`` that records every wait; ``real=True`` also waits for real."""

    def __init__(self, real: bool = False) -> None:
        super().__init__()
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.real:
            time.sleep(seconds)


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    with FakeDiscord() as server:
        yield server


@pytest.fixture
def url(fake: FakeDiscord) -> str:
    return fake.url_for("1", TOKEN)


@pytest.fixture
def log_all(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="jiritsu.notify")
    return caplog


def _notifier(url: str, sleeps: Sleeps | None = None, **kwargs: object) -> DiscordNotifier:
    return DiscordNotifier(url, sleep=sleeps if sleeps is not None else Sleeps(), **kwargs)


def test_event_is_delivered_as_a_coloured_embed(fake: FakeDiscord, url: str) -> None:
    notifier = _notifier(url, footer="paper @ host1")
    assert isinstance(notifier, Notifier)
    ok = notifier.notify("WARNING", "Drawdown", "balanced bot is 8% down", {"bot": "balanced"})
    assert ok is True
    [req] = fake.requests
    assert req.status == 200
    assert req.query == {"wait": ["true"]}
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["User-Agent"].startswith("Jiritsu/")
    [payload] = fake.messages
    assert payload["username"] == "Jiritsu"
    assert payload["allowed_mentions"] == {"parse": []}
    [embed] = payload["embeds"]
    assert embed["color"] == COLOURS["WARNING"]
    assert embed["title"] == "[WARNING] Drawdown"
    assert embed["description"] == "balanced bot is 8% down"
    assert embed["fields"] == [{"name": "bot", "value": "balanced", "inline": True}]
    assert embed["footer"] == {"text": "paper @ host1"}
    stamp = datetime.fromisoformat(embed["timestamp"])
    assert stamp.utcoffset() is not None
    assert stamp.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("level", "colour"), [(lvl, COLOURS[lvl]) for lvl in ("DEBUG", "INFO", "ERROR", "CRITICAL")]
)
def test_each_level_has_its_colour(fake: FakeDiscord, url: str, level: str, colour: int) -> None:
    assert _notifier(url, min_level="DEBUG").notify(level, "t", "m") is True
    assert fake.messages[0]["embeds"][0]["color"] == colour


def test_query_of_the_webhook_url_is_kept(fake: FakeDiscord, url: str) -> None:
    assert _notifier(url + "?thread_id=42").notify("ERROR", "t", "m") is True
    assert fake.requests[0].query == {"thread_id": ["42"], "wait": ["true"]}


def test_long_text_and_60_fields_are_split_into_valid_messages(fake: FakeDiscord, url: str) -> None:
    fields = {f"metric {i:02d}": f"{i}:" + "v" * 400 for i in range(60)}
    description = "".join(f"line {i}\n" for i in range(2000))  # ~15 000 chars
    assert _notifier(url).notify("ERROR", "Tuning failed", description, fields) is True

    assert fake.rejected == []
    assert len(fake.messages) > 1
    embeds = [e for m in fake.messages for e in m["embeds"]]
    # rule: the description is cut to one embed and marked; nothing else is shortened
    assert embeds[0]["description"] == description[: DESCRIPTION_MAX - 1] + ELLIPSIS
    sent = {f["name"]: f["value"] for e in embeds for f in e.get("fields", [])}
    assert sent == fields
    titles = [m["embeds"][0]["title"] for m in fake.messages]
    n = len(fake.messages)
    assert titles == [f"[ERROR] Tuning failed ({i}/{n})" for i in range(1, n + 1)]


def test_report_is_split_across_messages_without_losing_text(fake: FakeDiscord, url: str) -> None:
    sections = [(f"Bot {b}", "".join(f"{b} trade {i}: +1.0%\n" for i in range(600))) for b in "ABC"]
    notifier = _notifier(url, min_level="CRITICAL")  # reports ignore min_level
    assert notifier.send_report("Weekly report", sections) is True

    assert fake.rejected == []
    assert len(fake.messages) > 1
    assert fake.messages[0]["content"].startswith("**Weekly report** (1/")
    embeds = [e for m in fake.messages for e in m["embeds"]]
    for heading, text in sections:
        mine = [e for e in embeds if e["title"] in (heading, f"{heading} (cont.)")]
        assert "".join(e["description"] for e in mine) == text


def test_429_waits_retry_after_from_the_body_then_succeeds(fake: FakeDiscord, url: str) -> None:
    fake.queue_429(retry_after=0.05)
    sleeps = Sleeps()
    assert _notifier(url, sleeps).notify("ERROR", "t", "m") is True
    assert sleeps == [pytest.approx(0.05)]
    assert [r.status for r in fake.requests] == [429, 200]
    assert len(fake.messages) == 1


def test_429_with_only_a_retry_after_header(fake: FakeDiscord, url: str) -> None:
    fake.queue_429(retry_after=0.07, header_only=True)
    sleeps = Sleeps()
    assert _notifier(url, sleeps).notify("ERROR", "t", "m") is True
    assert sleeps == [pytest.approx(0.07)]
    assert [r.status for r in fake.requests] == [429, 200]


def test_429_wait_is_capped_and_attempts_are_bounded(fake: FakeDiscord, url: str) -> None:
    for _ in range(3):
        fake.queue_429(retry_after=120.0, global_=True)
    sleeps = Sleeps()
    notifier = _notifier(url, sleeps, max_attempts=3, max_wait_seconds=0.5)
    assert notifier.notify("ERROR", "t", "m") is False
    assert sleeps == [0.5, 0.5]
    assert len(fake.requests) == 3
    assert fake.messages == []


def test_empty_bucket_makes_the_next_send_wait(fake: FakeDiscord, url: str) -> None:
    fake.set_bucket(limit=1, reset_after=0.3, webhook_id="1")
    sleeps = Sleeps(real=True)
    notifier = _notifier(url, sleeps)
    assert notifier.notify("ERROR", "first", "m") is True
    assert sleeps == []
    assert fake.requests[0].status == 200
    assert notifier.notify("ERROR", "second", "m") is True
    assert len(sleeps) == 1
    assert 0.1 < sleeps[0] <= 0.3
    assert [r.status for r in fake.requests] == [200, 200]  # no 429: we waited first


def test_500_is_retried_with_backoff_then_succeeds(fake: FakeDiscord, url: str) -> None:
    fake.queue_status(500)
    sleeps = Sleeps()
    assert _notifier(url, sleeps).notify("ERROR", "t", "m") is True
    assert sleeps == [0.5]
    assert [r.status for r in fake.requests] == [500, 200]


def test_repeated_500_gives_up_after_max_attempts(
    fake: FakeDiscord, url: str, log_all: pytest.LogCaptureFixture
) -> None:
    fake.queue_status(502, times=10)
    sleeps = Sleeps()
    assert _notifier(url, sleeps, max_attempts=4).notify("ERROR", "t", "m") is False
    assert len(fake.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]
    assert any(
        r.levelno == logging.ERROR and "giving up after 4 attempts" in r.getMessage()
        for r in log_all.records
    )


def test_400_is_logged_with_discords_message_and_not_retried(
    fake: FakeDiscord, url: str, log_all: pytest.LogCaptureFixture
) -> None:
    fake.queue_status(400, body={"message": "Invalid Form Body", "code": 50035})
    notifier = _notifier(url)
    assert notifier.notify("ERROR", "t", "m") is False
    assert len(fake.requests) == 1
    errors = [r.getMessage() for r in log_all.records if r.levelno == logging.ERROR]
    assert any("Invalid Form Body" in m for m in errors)
    assert notifier.notify("ERROR", "t", "m") is True  # a rejection does not kill the webhook


def test_404_marks_the_webhook_dead_and_stops_using_it(
    fake: FakeDiscord, url: str, log_all: pytest.LogCaptureFixture
) -> None:
    fake.delete_webhook("1")
    notifier = _notifier(url)
    assert notifier.notify("ERROR", "t", "m") is False
    assert notifier.dead
    assert len(fake.requests) == 1
    gone = [
        r for r in log_all.records if r.levelno == logging.ERROR and "is gone" in r.getMessage()
    ]
    assert len(gone) == 1
    assert "discord webhook 1" in gone[0].getMessage()

    assert notifier.notify("ERROR", "again", "m") is False
    assert notifier.send_report("r", [("a", "b")]) is False
    assert len(fake.requests) == 1  # no further request reached the network
    assert len([r for r in log_all.records if "is gone" in r.getMessage()]) == 1
    assert TOKEN not in log_all.text


def test_401_invalid_token_also_marks_dead(fake: FakeDiscord) -> None:
    fake.url_for("7", TOKEN)
    notifier = _notifier(f"{fake.base_url}/api/webhooks/7/wrong-token")
    assert notifier.notify("ERROR", "t", "m") is False
    assert notifier.dead
    assert fake.requests[0].status == 401


def test_connection_refused_returns_false_without_leaking_the_token(
    log_all: pytest.LogCaptureFixture,
) -> None:
    with FakeDiscord() as gone:
        dead_url = gone.url_for("1", TOKEN)
    sleeps = Sleeps()
    notifier = _notifier(dead_url, sleeps, max_attempts=3, timeout=2)
    assert notifier.notify("CRITICAL", "t", "m") is False
    assert sleeps == [0.5, 1.0]
    assert "ConnectionError" in log_all.text
    assert TOKEN not in log_all.text


def test_timeout_is_retried_within_bounds(fake: FakeDiscord, url: str) -> None:
    fake.queue_delay(2.0)
    sleeps = Sleeps()
    started = time.monotonic()
    assert _notifier(url, sleeps, timeout=0.2, max_attempts=2).notify("ERROR", "t", "m") is True
    assert time.monotonic() - started < 1.5
    assert sleeps == [0.5]
    assert len(fake.requests) == 2


def test_timeout_on_the_last_attempt_returns_false(
    fake: FakeDiscord, url: str, log_all: pytest.LogCaptureFixture
) -> None:
    fake.queue_delay(2.0)
    started = time.monotonic()
    assert _notifier(url, timeout=0.2, max_attempts=1).notify("ERROR", "t", "m") is False
    assert time.monotonic() - started < 1.5
    assert "ReadTimeout" in log_all.text


def test_registered_secret_never_reaches_discord_or_the_log(
    fake: FakeDiscord, url: str, log_all: pytest.LogCaptureFixture
) -> None:
    secret = "bybit-secret-9f8e7d6c5b4a"
    redact.register_secret(secret)
    # Discord echoes the secret back in an error: that must be masked in our log too
    fake.queue_status(400, body={"message": f"bad value {secret}", "code": 50035})
    notifier = _notifier(url, footer=f"host {secret}", username=f"J {secret}")
    fields = {f"key {secret}": f"value {secret}", "nested": {"k": [secret]}}
    notifier.notify("ERROR", f"title {secret}", f"body {secret}", fields)
    notifier.notify("ERROR", f"title {secret}", f"body {secret}", fields)
    notifier.send_report(f"report {secret}", [(f"h {secret}", f"text {secret}\n" * 900)])

    assert len(fake.messages) >= 2
    raw = b"".join(r.body + r.path.encode() for r in fake.requests)
    assert secret.encode() not in raw
    assert b"***" in raw
    assert secret not in log_all.text
    assert "***" in log_all.text


def test_min_level_filters_without_network(
    fake: FakeDiscord, url: str, log_all: pytest.LogCaptureFixture
) -> None:
    notifier = _notifier(url, min_level="WARNING")
    assert notifier.notify("INFO", "routine", "m") is True
    assert notifier.notify("DEBUG", "noise", "m") is True
    assert fake.requests == []
    assert any(
        r.levelno == logging.DEBUG and "below min level" in r.getMessage() for r in log_all.records
    )
    assert notifier.notify("ERROR", "real", "m") is True
    assert [m["embeds"][0]["title"] for m in fake.messages] == ["[ERROR] real"]


def test_an_exception_inside_never_reaches_the_caller(
    fake: FakeDiscord, url: str, log_all: pytest.LogCaptureFixture
) -> None:
    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("cannot format")

    assert _notifier(url).notify("ERROR", "t", "m", {"x": Boom()}) is False
    assert fake.requests == []
    assert "cannot format" in log_all.text


def test_no_webhook_means_log_only(log_all: pytest.LogCaptureFixture) -> None:
    redact.register_secret("hunter2-secret")
    for notifier in (
        build_notifier(None),
        build_notifier("  "),
        build_notifier("https://discord.com/api/webhooks/1/abcd", enabled=False),
    ):
        assert isinstance(notifier, LogNotifier)
    notifier = build_notifier(None)
    assert notifier.notify("ERROR", "Halted", "key hunter2-secret leaked?", {"bot": "b1"}) is True
    [record] = [r for r in log_all.records if "Halted" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.name == "jiritsu.notify"
    assert "bot=b1" in record.getMessage()
    assert "hunter2-secret" not in log_all.text
    assert notifier.send_report("Weekly", [("Bots", "all fine")]) is True
    assert "all fine" in log_all.text


def test_build_notifier_with_a_webhook_posts_to_it(fake: FakeDiscord, url: str) -> None:
    notifier = build_notifier(url, min_level="ERROR", username="Jiritsu test")
    assert isinstance(notifier, DiscordNotifier)
    assert notifier.notify("WARNING", "below", "m") is True
    assert notifier.notify("ERROR", "sent", "m") is True
    assert len(fake.messages) == 1
    assert fake.messages[0]["username"] == "Jiritsu test"


def test_a_malformed_url_or_level_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        build_notifier("https://example.com/not-a-webhook")
    with pytest.raises(UsageError):
        build_notifier("https://discord.com/api/webhooks/1/abcd", min_level="LOUD")
