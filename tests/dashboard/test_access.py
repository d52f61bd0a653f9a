"""What the server refuses: foreign addresses (inside the server), writes, and a start without
a usable password hash."""

from __future__ import annotations

import hashlib
import ipaddress
import sqlite3
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jiritsu.config import Settings
from jiritsu.dashboard.allowlist import client_allowed, parse_networks
from jiritsu.dashboard.config import build_metadata, chart_urls
from jiritsu_cli.main import app
from tests.dashboard.conftest import HASH_ENV, ServerFactory, clean_env, write_config

runner = CliRunner()


def _fingerprint(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def _count(path: Path, table: str) -> int:
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608
    finally:
        conn.close()


# --- the allowlist --------------------------------------------------------------------------


def test_a_client_outside_the_allowlist_gets_403_everywhere(
    start_server: ServerFactory, seeded_db: Path
) -> None:
    server = start_server(f"sqlite:///{seeded_db}", allowed_ips=["10.9.9.9"])
    for path in (
        "/-/login",
        "/",
        "/-/dashboards/summary",
        "/jiritsu/trades.json",
        "/-/static/app.css",
    ):
        response = server.get(path)
        assert response.status_code == 403, path
        assert "not allowed" in response.text
    # even with the right password: the login form is never reached
    response = server.session.post(
        server.url("/-/login"), data={"username": "operator"}, allow_redirects=False, timeout=30
    )
    assert response.status_code == 403
    # a forged forwarding header changes nothing: the peer address is what counts
    forged = server.get("/-/login", headers={"X-Forwarded-For": "10.9.9.9"})
    assert forged.status_code == 403


def test_a_client_inside_an_allowed_network_gets_in(
    start_server: ServerFactory, seeded_db: Path
) -> None:
    server = start_server(f"sqlite:///{seeded_db}", allowed_ips=["10.0.0.0/8", "127.0.0.0/8"])
    assert server.get("/-/login").status_code == 200
    assert server.login().status_code == 302
    assert server.get("/-/dashboards/summary").status_code == 200


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("10.9.9.9", True),
        ("11.0.0.1", False),
        ("::1", True),
        ("::ffff:10.1.2.3", True),  # IPv4-mapped IPv6, as a dual-stack socket reports it
        ("fe80::1%eth0", False),
        ("2001:db8::1", False),
        ("not-an-address", False),
        ("", False),
        (None, False),
    ],
)
def test_client_allowed(host: str | None, allowed: bool) -> None:
    networks = parse_networks(["127.0.0.1", "::1", "10.0.0.0/8"])
    assert client_allowed(host, networks) is allowed


def test_no_allowed_addresses_means_nobody() -> None:
    assert client_allowed("127.0.0.1", []) is False
    assert parse_networks([" 192.168.0.0/16 "]) == [ipaddress.ip_network("192.168.0.0/16")]


# --- read-only --------------------------------------------------------------------------------


def test_writes_are_refused_and_the_file_is_untouched(
    start_server: ServerFactory, seeded_db: Path
) -> None:
    before, trades = _fingerprint(seeded_db), _count(seeded_db, "trades")
    server = start_server(f"sqlite:///{seeded_db}", allowed_ips=["127.0.0.1"])
    assert server.login().status_code == 302
    token = server.csrftoken("/jiritsu")
    attempts = [
        "DELETE FROM trades",
        "WITH x AS (SELECT 1) DELETE FROM trades",  # passes Datasette's check, reaches SQLite
        "WITH x AS (SELECT 1) INSERT INTO controls (scope, halted, updated_at) "
        "VALUES ('global', 1, '2026-01-01 00:00:00.000000+00:00')",
        "SELECT 1; DELETE FROM trades",
        "PRAGMA query_only = 0",
    ]
    for sql in attempts:
        response = server.get("/jiritsu.json", params={"sql": sql})
        assert response.status_code >= 400, sql
        assert response.json()["ok"] is False
    reached = server.get("/jiritsu.json", params={"sql": attempts[1]}).json()
    assert "readonly" in reached["error"]
    posted = server.session.post(
        server.url("/jiritsu.json"),
        params={"sql": "DELETE FROM trades"},
        data={"csrftoken": token},
        timeout=30,
    )
    assert posted.status_code >= 400
    assert _count(seeded_db, "trades") == trades
    assert _fingerprint(seeded_db) == before


WRITE_QUERY_SERVER = """
import sys
from jiritsu.config import load_config
from jiritsu.dashboard import serve

plan = serve.prepare(load_config(sys.argv[1]), port=int(sys.argv[2]))
plan.metadata["databases"]["jiritsu"]["queries"]["wipe"] = {
    "sql": "DELETE FROM trades", "write": True
}
serve.run(plan)
"""


def test_even_a_write_canned_query_cannot_write(
    start_server: ServerFactory, seeded_db: Path, tmp_path: Path
) -> None:
    """Our configuration has no write query; a server given one still cannot write."""
    before, trades = _fingerprint(seeded_db), _count(seeded_db, "trades")
    config = write_config(tmp_path / "write.toml", f"sqlite:///{seeded_db}")
    argv = [sys.executable, "-c", WRITE_QUERY_SERVER, str(config), "{port}"]
    server = start_server(f"sqlite:///{seeded_db}", argv=argv)
    assert server.login().status_code == 302
    token = server.csrftoken("/jiritsu/wipe")
    response = server.session.post(
        server.url("/jiritsu/wipe"), data={"csrftoken": token, "_json": "1"}, timeout=30
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False
    assert "readonly" in body["message"]
    assert _count(seeded_db, "trades") == trades
    assert _fingerprint(seeded_db) == before


# --- starting ---------------------------------------------------------------------------------


def test_serve_refuses_to_start_without_a_password_hash(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "c.toml", f"sqlite:///{seeded_db}")
    monkeypatch.delenv(HASH_ENV, raising=False)
    result = runner.invoke(app, ["--config", str(config), "dashboard", "serve"])
    assert result.exit_code == 2
    assert HASH_ENV in result.output
    assert "hash-password" in result.output


def test_serve_refuses_a_malformed_hash_without_printing_it(
    seeded_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "c.toml", f"sqlite:///{seeded_db}")
    monkeypatch.setenv(HASH_ENV, "plain-text-password")
    result = runner.invoke(app, ["--config", str(config), "dashboard", "serve"])
    assert result.exit_code == 2
    assert "pbkdf2_sha256" in result.output
    assert "plain-text-password" not in result.output


def test_serve_wants_a_migrated_database(tmp_path: Path, password_hash: str) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    config = write_config(tmp_path / "c.toml", f"sqlite:///{empty}")
    env = {**clean_env(tmp_path / "data"), HASH_ENV: password_hash}
    result = runner.invoke(app, ["--config", str(config), "dashboard", "serve"], env=env)
    assert result.exit_code == 2
    assert "jiritsu db upgrade" in result.output


def test_serve_on_postgresql_needs_the_mirror_first(tmp_path: Path, password_hash: str) -> None:
    config = write_config(
        tmp_path / "c.toml",
        "postgresql://jiritsu@127.0.0.1:1/jiritsu",
        mirror_path=str(tmp_path / "missing.db"),
    )
    env = {**clean_env(tmp_path / "data"), HASH_ENV: password_hash}
    result = runner.invoke(app, ["--config", str(config), "dashboard", "serve"], env=env)
    assert result.exit_code == 2
    assert "jiritsu dashboard mirror" in result.output


def test_mirror_is_refused_on_sqlite(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path / 'x.db'}")
    result = runner.invoke(app, ["--config", str(config), "dashboard", "mirror"])
    assert result.exit_code == 2
    assert "no mirror needed" in result.output
    assert not (tmp_path / "x.db").exists()


def test_hash_password_prompts_and_prints_a_working_hash() -> None:
    from datasette_auth_passwords.utils import verify_password

    result = runner.invoke(app, ["dashboard", "hash-password"], input="pa55 word\npa55 word\n")
    assert result.exit_code == 0, result.output
    printed = result.output.strip().splitlines()[-1]
    assert printed.startswith("pbkdf2_sha256$")
    assert verify_password("pa55 word", printed)
    assert "pa55 word" not in result.output  # the prompt does not echo it
    assert result.stdout.strip() == printed  # prompts on stderr: $(...) captures the hash only


def test_hash_password_refuses_a_mismatch() -> None:
    result = runner.invoke(app, ["dashboard", "hash-password"], input="one\ntwo\none\none\n")
    assert "do not match" in result.output
    assert result.exit_code == 0  # asked again; the second pair matched


# --- markup from outside ----------------------------------------------------------------------

EVIL = '<img src=x onerror="alert(1)">&'


def test_table_charts_deliver_outside_text_as_text(
    start_server: ServerFactory, seeded_db: Path
) -> None:
    """Table charts go into the page with innerHTML: headlines, messages and reasons must
    arrive escaped, or a news feed could run script in the operator's session."""
    conn = sqlite3.connect(seeded_db)
    with conn:
        stamp = "2026-03-01 00:30:00.000000+00:00"
        conn.execute(
            "INSERT INTO sentiment_scores (timestamp, fetched_at, source, item_key, score, "
            "headline, score_attempts) VALUES (?, ?, 'feed', 'evil', 0.5, ?, 0)",
            (stamp, stamp, EVIL),
        )
        conn.execute(
            "INSERT INTO system_events (timestamp, level, event_type, message) "
            "VALUES (?, 'ERROR', 'NEWS', ?)",
            (stamp, EVIL),
        )
    conn.close()
    server = start_server(f"sqlite:///{seeded_db}", allowed_ips=["127.0.0.1"])
    assert server.login().status_code == 302
    charts = dict(chart_urls(build_metadata(Settings())))
    escaped = '&lt;img src=x onerror="alert(1)"&gt;&amp;'
    for label, column in (
        ("chart decisions/headlines", "headline"),
        ("chart log/events", "message"),
    ):
        rows = server.get(charts[label]).json()["rows"]
        values = [row[column] for row in rows]
        assert escaped in values, label
        assert not any("<img" in str(value) for row in rows for value in row.values()), label
