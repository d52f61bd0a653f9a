"""The real server over HTTP: anonymous users see nothing, the operator sees every page."""

from __future__ import annotations

import html
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from jiritsu.config import Settings
from jiritsu.dashboard.config import PAGES, build_metadata, chart_urls
from tests.dashboard.conftest import BOTS, HASH_ENV, Server, assert_pnl_is_numeric

# Pages, tables, views, canned queries, raw SQL, the dashboards and Datasette's own JSON.
PROTECTED = [
    "/",
    "/.json",
    "/jiritsu",
    "/jiritsu.json",
    "/jiritsu/trades",
    "/jiritsu/trades.json",
    "/jiritsu/trades.csv",
    "/jiritsu/trades/1",
    "/jiritsu/trades/1.json",
    "/jiritsu/performance.json",
    "/jiritsu/dashboard_summary",
    "/jiritsu/log",
    "/jiritsu/log.json",
    "/jiritsu.json?sql=select+*+from+trades",
    "/jiritsu?sql=select+*+from+trades",
    "/-/dashboards",
    "/-/dashboards/summary",
    "/-/dashboards/summary/embed",
    "/-/dashboards/performance/table",
    "/-/metadata.json",
    "/-/plugins.json",
    "/-/databases.json",
    "/-/settings.json",
    "/-/versions.json",
    "/-/threads.json",
    "/-/actor.json",
]
DATA_MARKERS = ("SubBot-", "BTCUSDT", "total_balance_usdt", "pbkdf2")


def _titles(page: dict) -> list[str]:
    return [chart["title"] for chart in page["charts"].values()]


METADATA = build_metadata(Settings())
DASHBOARDS = METADATA["plugins"]["datasette-dashboards"]


@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_requests_see_nothing(server: Server, path: str) -> None:
    response = server.get(path)
    data_format = ".json" in path or ".csv" in path
    if data_format:
        assert response.status_code == 403, (path, response.status_code)
    else:
        assert response.status_code in (302, 403), (path, response.status_code)
        if response.status_code == 302:
            assert response.headers["location"].endswith("/-/login")
    for marker in DATA_MARKERS:
        assert marker not in response.text, (path, marker)


def test_login_page_works_and_the_password_tool_is_closed(server: Server) -> None:
    login = server.get("/-/login")
    assert login.status_code == 200
    assert 'name="csrftoken"' in login.text
    assert 'name="password"' in login.text
    assert server.get("/-/password-tool").status_code == 403


def test_a_wrong_password_does_not_log_in(server: Server) -> None:
    response = server.login(password="wrong")
    assert response.status_code == 200
    assert "Invalid username or password" in response.text
    assert "ds_actor" not in server.session.cookies
    assert server.get("/jiritsu/trades.json").status_code == 403


def test_login_sets_the_actor_and_lands_on_the_dashboards(operator: Server) -> None:
    assert operator.get("/-/actor.json").json() == {"actor": {"id": "operator"}}
    home = operator.get("/")  # where the login form sends the browser
    assert home.status_code == 302
    assert home.headers["location"] == "/-/dashboards"
    assert operator.get("/-/dashboards").status_code == 200


@pytest.mark.parametrize("slug", list(PAGES))
def test_every_page_answers_with_its_charts(operator: Server, slug: str) -> None:
    response = operator.get(f"/-/dashboards/{slug}")
    assert response.status_code == 200
    text = html.unescape(response.text)
    assert f"<h1>{PAGES[slug]}</h1>" in text
    for title in _titles(DASHBOARDS[slug]):
        assert title in text, (slug, title)


def test_every_chart_query_answers_with_rows(operator: Server) -> None:
    for label, path in chart_urls(METADATA):
        response = operator.get(path)
        assert response.status_code == 200, (label, response.text[:300])
        if path.startswith("/jiritsu.json"):
            body = response.json()
            assert body.get("ok", True), (label, body)
            assert not body.get("error"), (label, body)
            assert body["rows"], f"{label} returned no rows on a seeded database"
            assert not body["truncated"], label


def test_the_log_viewer_refreshes_itself(operator: Server) -> None:
    text = operator.get("/-/dashboards/log").text
    assert "autorefresh(1)" in text  # datasette-dashboards reloads the page after 1 minute
    events = operator.get("/jiritsu/log.json?_shape=array&level=&text=").json()
    times = [row["timestamp"] for row in events]
    assert times
    assert times == sorted(times, reverse=True)  # newest first


def test_manual_intervention_shows_the_exact_commands(operator: Server) -> None:
    text = html.unescape(operator.get("/-/dashboards/intervention").text)
    config = str(operator.proc.args[operator.proc.args.index("--config") + 1])
    prefix = f"jiritsu --config {config}"
    assert f"{prefix} status" in text
    assert f"{prefix} halt --reason 'manual: <why>'" in text
    assert f"{prefix} resume\n" in text
    assert f"{prefix} flatten --yes" in text
    for bot in BOTS:
        assert f"{prefix} halt --bot {bot} --reason" in text
        assert f"{prefix} resume --bot {bot}" in text
        assert f"{prefix} flatten --bot {bot} --yes" in text


def test_trade_history_filters_on_the_bot_column_it_shows(operator: Server) -> None:
    page = operator.get("/jiritsu/trade_history?bot=SubBot-B&_sort_desc=time_utc")
    assert page.status_code == 200
    rows = operator.get(
        "/jiritsu/trade_history.json?_shape=array&_size=max&bot=SubBot-B&_sort_desc=time_utc"
    ).json()
    assert rows
    assert {row["bot"] for row in rows} == {"SubBot-B"}
    stamps = [row["time_utc"] for row in rows]
    assert stamps == sorted(stamps, reverse=True)
    links = DASHBOARDS["trades"]["charts"]["browse"]["display"]
    assert "trade_history?_sort_desc=time_utc&bot=SubBot-B" in links


def exact_pnls(db: Path) -> dict[int, Decimal]:
    """Every trade's stored pnl (exact decimal text) by id, read straight from the file."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, pnl FROM trades WHERE pnl IS NOT NULL").fetchall()
    finally:
        conn.close()
    return {row[0]: Decimal(row[1]) for row in rows}


def test_trades_sort_and_filter_by_pnl_as_numbers(operator: Server, shared_db: Path) -> None:
    exact = exact_pnls(shared_db)
    below = sorted(i for i, pnl in exact.items() if pnl < -1)
    assert 0 < len(below) < len(exact)  # the seed has a few big losses among many small ones
    as_text = {i for i, pnl in exact.items() if str(pnl) < "-1"}
    assert as_text != set(below)  # text comparison would get this wrong

    assert_pnl_is_numeric(operator, exact, first=20)


def test_metadata_names_the_hash_variable_and_never_shows_the_hash(
    operator: Server, password_hash: str
) -> None:
    metadata = operator.get("/-/metadata.json").json()
    auth = metadata["plugins"]["datasette-auth-passwords"]
    assert auth["operator_password_hash"] == {"$env": HASH_ENV}
    assert password_hash not in json.dumps(metadata)
    assert password_hash not in operator.log()
    assert password_hash.split("$")[-1] not in operator.log()
