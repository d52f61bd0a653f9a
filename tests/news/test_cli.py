"""`jiritsu fetch-news` and `--show` end to end: the real console script, exit codes 0/1/3."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from jiritsu.db.engine import make_engine
from jiritsu.db.models import SentimentScore, SystemEvent
from tests.conftest import REPO
from tests.fakes.feeds import FeedServer
from tests.fakes.gemini import FakeGemini, FakeRequest
from tests.news.conftest import FIXTURES, headlines, rss
from tests.processes import jiritsu_env, run_jiritsu

SAMPLE = REPO / "examples" / "news" / "sample_feed.xml"


@pytest.fixture
def env(isolated_env: Path) -> dict[str, str]:
    return jiritsu_env(
        isolated_env, JIRITSU_NEWS_SENTIMENT__REQUEST_TIMEOUT_SECONDS="3", COLUMNS="200"
    )


def _db(env: dict[str, str]) -> sa.Engine:
    return make_engine(f"sqlite:///{env['JIRITSU_GENERAL__DATA_DIR']}/jiritsu.db")


def _with_sources(env: dict[str, str], sources: list[str]) -> dict[str, str]:
    return {**env, "JIRITSU_NEWS_SENTIMENT__SOURCES": json.dumps(sources)}


def test_the_shipped_configuration_works_offline(env: dict[str, str]) -> None:
    """Default sources with the network unreachable (a dead proxy): the remote feeds are
    WARNING events, the sample feed is stored and scored, and the command exits 0."""
    offline = {**env, "HTTPS_PROXY": "http://127.0.0.1:1", "HTTP_PROXY": "http://127.0.0.1:1"}
    result = run_jiritsu(["fetch-news"], offline)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sample_feed.xml" in result.stdout
    assert "www.coindesk.com" in result.stdout
    assert "scorer lexicon: 6 scored" in result.stdout

    engine = _db(env)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(SentimentScore.scorer, SentimentScore.score)).all()
        warnings = conn.execute(
            sa.select(SystemEvent.message).where(SystemEvent.level == "WARNING")
        ).scalars()
        warnings = list(warnings)
    engine.dispose()
    assert len(rows) == 6
    assert {r.scorer for r in rows} == {"lexicon"}
    assert len(warnings) == 2
    assert all("(connection)" in w for w in warnings)

    shown = run_jiritsu(["fetch-news", "--show"], offline)
    assert shown.returncode == 0, shown.stderr
    assert "Bitcoin rallies to a record high" in shown.stdout
    assert "+0.89" in shown.stdout
    # the sample is dated 2025: it shows up, but never in the live average
    assert "average: n/a (no scored item in the last 24 h)" in shown.stdout


def test_fetch_then_show_with_loopback_feeds(env: dict[str, str], tmp_path: Path) -> None:
    local = tmp_path / "local.xml"
    local.write_text(rss(headlines(2, "Bitcoin surges story", published=None)), "utf-8")
    with FeedServer() as server:
        good = server.serve("/rss", (FIXTURES / "market_rss.xml").read_bytes())
        broken = server.serve_status("/broken", 500)
        run_env = _with_sources(env, [good, broken, str(local)])
        first = run_jiritsu(["fetch-news"], run_env)
        second = run_jiritsu(["fetch-news", "--json"], run_env)

    assert first.returncode == 0, first.stdout + first.stderr
    for col in ("source", "fetched", "matched", "new", "scored", "errors"):
        assert col in first.stdout
    assert "warning: 127.0.0.1/broken: http: HTTP 500" in first.stdout
    assert "scorer lexicon: 5 scored, 0 waiting" in first.stdout
    assert "average: +" in first.stdout  # the local items are stamped now: inside the window

    assert second.returncode == 0
    report = json.loads(second.stdout)
    assert [s["new"] for s in report["sources"]] == [0, 0, 0]  # dedupe across runs
    assert [s["error_kind"] for s in report["sources"]] == [None, "http", None]
    assert report["exit_code"] == 0

    shown = run_jiritsu(["fetch-news", "--show", "--limit", "3"], env)
    assert shown.returncode == 0
    assert "Bitcoin surges story" in shown.stdout
    assert "local.xml" in shown.stdout
    assert "average: +" in shown.stdout
    as_json = json.loads(run_jiritsu(["fetch-news", "--show", "--json"], env).stdout)
    assert as_json["average"]["count"] == 2
    assert len(as_json["latest"]) == 5


def test_source_option_replaces_the_configured_sources(env: dict[str, str], tmp_path: Path) -> None:
    local = tmp_path / "only.xml"
    local.write_text(rss(headlines(1, "Crypto only")), encoding="utf-8")
    result = run_jiritsu(["fetch-news", "--source", str(local), "--json"], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [s["source"] for s in report["sources"]] == [str(local)]


def test_every_source_failing_exits_1(env: dict[str, str], tmp_path: Path) -> None:
    run_env = _with_sources(env, [str(tmp_path / "missing.xml"), "http://127.0.0.1:1/rss"])
    result = run_jiritsu(["fetch-news"], run_env)
    assert result.returncode == 1
    assert "every news source failed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unreachable_database_exits_3(env: dict[str, str]) -> None:
    bad_db = {
        **env,
        "JIRITSU_DATABASE__DB_TYPE": "postgresql",
        "JIRITSU_DATABASE__DB_URL": "postgresql://jiritsu:pw-SECRETnews1@127.0.0.1:1/jiritsu",
        "JIRITSU_DATABASE__RECONNECT_ATTEMPTS": "1",
    }
    for args in (["fetch-news"], ["fetch-news", "--show"]):
        result = run_jiritsu(args, bad_db)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "pw-SECRETnews1" not in result.stdout + result.stderr


def test_gemini_scorer_end_to_end_without_leaking_keys(env: dict[str, str], tmp_path: Path) -> None:
    keys = ["gk-cli-SECRET-one-1", "gk-cli-SECRET-two-2"]
    local = tmp_path / "g.xml"
    local.write_text(rss(headlines(3, "Bitcoin story")), encoding="utf-8")

    def answer(req: FakeRequest) -> dict[str, object]:
        block = req.prompt_text.split("<<<BEGIN NEWS_ITEMS>>>\n")[1].split("\n<<<END")[0]
        return {
            "scores": [
                {"id": item["id"], "score": -0.5, "label": "negative"} for item in json.loads(block)
            ]
        }

    with FakeGemini(keys=keys) as fake:
        fake.rate_limit_key(keys[0])
        fake.responder = answer
        gemini_env = {
            **_with_sources(env, [str(local)]),
            "GEMINI_API_KEYS": ",".join(keys),
            "JIRITSU_NEWS_SENTIMENT__SCORER": "gemini",
            "JIRITSU_GEMINI__BASE_URL": fake.base_url,
        }
        result = run_jiritsu(["fetch-news"], gemini_env)
        keys_seen = fake.keys_used
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scorer gemini: 3 scored, 0 waiting" in result.stdout
    assert keys_seen == keys  # 429 on the first key, answered by the second
    for key in keys:
        assert key not in result.stdout + result.stderr
    engine = _db(env)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(SentimentScore.score, SentimentScore.model)).all()
    engine.dispose()
    assert rows == [(-0.5, "gemini-fake-001")] * 3
