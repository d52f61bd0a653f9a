"""The dashboard's one write path (the control buttons) and its live log, over real HTTP.

The server runs as ``jiritsu dashboard serve`` over a writable SQLite copy of the seeded
database; requests go through the login form and Datasette's CSRF protection like a browser's.
"""

from __future__ import annotations

import html
import re
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

from tests.dashboard.conftest import HASH_ENV, Server, ServerFactory

VIEWER_ENV = "JIRITSU_VIEWER_PASSWORD_HASH"
USERS = [
    {"username": "operator", "password_hash_env": HASH_ENV},
    {"username": "viewer", "password_hash_env": VIEWER_ENV},
]
OFFLINE = {"JIRITSU_EXCHANGE__BASE_URL": "http://127.0.0.1:9", "JIRITSU_EXCHANGE__MAX_RETRIES": "0"}
CONTROL = "/-/jiritsu/control"


def start(factory: ServerFactory, db: Path, password_hash: str, **dashboard: Any) -> Server:
    users = [dict(user) for user in USERS]
    users[0].pop("can_control", None)  # the first user may control by default
    return factory(
        f"sqlite:///{db}",
        env={VIEWER_ENV: password_hash, **OFFLINE},
        allowed_ips=["127.0.0.1"],
        users=users,
        **dashboard,
    )


def as_user(server: Server, username: str) -> Server:
    session = Server(proc=server.proc, port=server.port, log_path=server.log_path)
    assert session.login(username=username).status_code == 302
    return session


def post(server: Server, token: str | None = None, **form: str) -> requests.Response:
    data = dict(form)
    if token is not None:
        data["csrftoken"] = token
    return server.session.post(server.url(CONTROL), data=data, allow_redirects=False, timeout=60)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def halts(db: Path) -> list[tuple[Any, ...]]:
    """Halts other than the seed's (it halts SubBot-C by a breaker)."""
    return rows(
        db,
        "SELECT scope, halted_by, reason FROM controls WHERE halted "
        "AND halted_by <> 'circuit-breaker' ORDER BY scope",
    )


def control_events(db: Path) -> list[str]:
    return [
        r[0]
        for r in rows(
            db,
            "SELECT message FROM system_events WHERE event_type IN ('HALT', 'RESUME') "
            "AND message LIKE '%dashboard%' ORDER BY id",
        )
    ]


def test_the_control_route_refuses_all_but_a_permitted_user_and_acts_for_one(
    start_server: ServerFactory, seeded_db: Path, password_hash: str
) -> None:
    server = start(start_server, seeded_db, password_hash)
    assert halts(seeded_db) == []

    # anonymous: sent to the login page; a POST (even with a valid CSRF pair) is refused
    assert server.get(CONTROL).headers["location"].endswith("/-/login")
    anonymous = post(server, server.csrftoken(), action="halt", reason="anon")
    assert anonymous.status_code == 403
    bare = requests.post(server.url(CONTROL), data={"action": "halt", "reason": "x"}, timeout=30)
    assert bare.status_code == 403  # no cookies at all: the route checks the token itself

    operator = as_user(server, "operator")
    no_csrf = post(operator, action="halt", reason="no token")
    assert no_csrf.status_code == 403
    wrong = post(operator, "not-the-token", action="halt", reason="wrong token")
    assert wrong.status_code == 403

    viewer = as_user(server, "viewer")
    page = viewer.get(CONTROL)
    assert page.status_code == 200
    assert 'value="halt"' not in page.text  # no buttons for a user without can_control
    refused = post(viewer, viewer.csrftoken(CONTROL), action="halt", reason="viewer")
    assert refused.status_code == 403
    assert halts(seeded_db) == []
    assert control_events(seeded_db) == []

    menu = operator.get("/-/dashboards").text
    assert f'href="{CONTROL}">Controls' in menu
    assert 'href="/-/jiritsu/log">Live log' in menu
    page = operator.get(CONTROL)
    assert 'value="halt"' in page.text
    done = post(operator, operator.csrftoken(CONTROL), action="halt", bot="SubBot-B",
                reason="manual: checking fills")  # fmt: skip
    assert done.status_code == 200, done.text
    text = html.unescape(done.text)
    assert "SubBot-B halted: manual: checking fills" in text
    assert re.search(r"<td>SubBot-B</td><td>HALTED</td>", text)
    assert halts(seeded_db) == [("SubBot-B", "operator", "manual: checking fills")]
    (event,) = control_events(seeded_db)
    assert event == (
        "SubBot-B halted by operator (dashboard from 127.0.0.1): manual: checking fills"
    )
    # ... and the dashboard shows it (its read-only connection sees the new rows)
    shown = operator.get(
        "/jiritsu/system_events.json?_shape=array&event_type=HALT&_sort_desc=id&_size=1"
    ).json()
    assert shown[0]["message"] == event
    switches = operator.get(
        "/jiritsu/controls.json?_shape=array&halted=1&halted_by=operator"
    ).json()
    assert [(s["scope"], s["halted_by"]) for s in switches] == [("SubBot-B", "operator")]

    again = post(operator, operator.csrftoken(CONTROL), action="resume", bot="SubBot-B")
    assert "SubBot-B resumed" in again.text
    assert halts(seeded_db) == []


def test_flatten_wants_the_typed_word_then_reports_and_halts(
    start_server: ServerFactory, seeded_db: Path, password_hash: str
) -> None:
    operator = as_user(start(start_server, seeded_db, password_hash), "operator")
    token = operator.csrftoken(CONTROL)
    unconfirmed = post(operator, token, action="flatten", confirm="yes")
    assert unconfirmed.status_code == 400
    assert "type FLATTEN to confirm" in unconfirmed.text
    assert halts(seeded_db) == []

    done = post(operator, token, action="flatten", bot="SubBot-A", confirm="FLATTEN")
    assert done.status_code == 200, done.text
    text = html.unescape(done.text)
    assert "SubBot-A flattened: 0 order(s) cancelled, 0 position(s) closing" in text
    assert "no position" in text  # the report's lines
    assert re.search(r"<td>SubBot-A</td><td>HALTED</td>", text)  # the halt state after it
    assert halts(seeded_db) == [("SubBot-A", "operator", "flatten")]
    (message,) = rows(seeded_db, "SELECT message FROM system_events WHERE message LIKE "
                      "'flatten SubBot-A%'")[0]  # fmt: skip
    assert message.endswith("(by operator (dashboard from 127.0.0.1))")

    unknown = post(operator, token, action="halt", bot="SubBot-X", reason="x")
    assert unknown.status_code == 400
    assert "no bot named" in html.unescape(unknown.text)


def test_controls_enabled_false_removes_the_route(
    start_server: ServerFactory, seeded_db: Path, password_hash: str
) -> None:
    operator = as_user(start(start_server, seeded_db, password_hash, controls_enabled=False),
                       "operator")  # fmt: skip
    assert operator.get(CONTROL).status_code == 404
    refused = post(operator, operator.csrftoken(), action="halt", reason="x")
    assert refused.status_code in (404, 405)  # no such route: Datasette's own answer
    text = html.unescape(operator.get("/-/dashboards/intervention").text)
    assert "switched off" in text
    assert halts(seeded_db) == []


def test_the_live_log_shows_a_line_written_a_second_ago(
    start_server: ServerFactory, seeded_db: Path, password_hash: str
) -> None:
    server = start(start_server, seeded_db, password_hash)
    assert server.get("/-/jiritsu/log.json").status_code == 403  # anonymous
    operator = as_user(server, "operator")
    now = datetime.now(timezone.utc)
    log_file = start_server.workdir / "data" / "logs" / f"jiritsu-{now:%Y-%m-%d}.log"
    marker = f"marker-{time.monotonic_ns()}"
    with log_file.open("a", encoding="utf-8") as handle:
        handle.write(f"[{now:%Y-%m-%dT%H:%M:%SZ}] [WARNING] [jiritsu.test] {marker}\n")
        handle.write("Traceback (most recent call last): belongs to the warning\n")
        handle.write(f"[{now:%Y-%m-%dT%H:%M:%SZ}] [INFO] [jiritsu.test] info-{marker}\n")
    time.sleep(1)

    body = operator.get("/-/jiritsu/log.json?lines=50&level=WARNING").json()
    assert body["file"] == log_file.name
    assert body["lines"][-2:] == [
        f"[{now:%Y-%m-%dT%H:%M:%SZ}] [WARNING] [jiritsu.test] {marker}",
        "Traceback (most recent call last): belongs to the warning",
    ]
    everything = operator.get("/-/jiritsu/log.json?lines=1").json()["lines"]
    assert everything == [f"[{now:%Y-%m-%dT%H:%M:%SZ}] [INFO] [jiritsu.test] info-{marker}"]
    assert marker not in str(operator.get("/-/jiritsu/log.json?level=ERROR").json()["lines"])
    page = operator.get("/-/jiritsu/log?level=WARNING")
    assert page.status_code == 200
    assert marker in page.text
    assert "setInterval(refresh, 3000)" in page.text
    # the file name comes from the clock, never from the request
    sneaky = operator.get("/-/jiritsu/log.json?file=/etc/passwd&day=../../etc/passwd").json()
    assert sneaky["file"] == log_file.name
