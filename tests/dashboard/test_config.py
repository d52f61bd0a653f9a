"""The metadata handed to Datasette: pages, permissions, secrets by reference only."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from jiritsu.config import Settings
from jiritsu.dashboard.config import (
    DB_NAME,
    PAGES,
    build_metadata,
    canned_queries,
    chart_urls,
    intervention_commands,
)
from jiritsu.dashboard.serve import hash_password, is_password_hash


def _settings(**dashboard: object) -> Settings:
    return Settings.model_validate({"dashboard": dashboard} if dashboard else {})


def test_every_page_is_configured_with_a_consistent_layout() -> None:
    boards = build_metadata(_settings())["plugins"]["datasette-dashboards"]
    assert list(boards) == list(PAGES)
    for slug, board in boards.items():
        assert board["title"] == PAGES[slug]
        charts = board["charts"]
        assert charts, slug
        in_layout = {cell for row in board["layout"] for cell in row}
        assert in_layout == set(charts), slug
        assert len({len(row) for row in board["layout"]}) == 1, slug  # a rectangular grid
        for name, chart in charts.items():
            assert chart["title"], (slug, name)
            assert chart["library"] in ("vega-lite", "metric", "table", "markdown"), name
            if chart["library"] == "markdown":
                assert isinstance(chart["display"], str)
                continue
            assert chart["db"] == DB_NAME
            assert chart["query"].lstrip().upper().startswith(("SELECT", "WITH")), name
            if chart["library"] == "vega-lite":
                assert "encoding" in chart["display"], name
                assert {"mark", "layer"} & set(chart["display"]), name
            if chart["library"] == "metric":
                assert chart["display"]["field"] == "value"


def test_the_log_viewer_refreshes_and_the_summary_has_its_numbers() -> None:
    boards = build_metadata(_settings())["plugins"]["datasette-dashboards"]
    assert boards["log"]["settings"]["autorefresh"] == 1
    assert boards["summary"]["settings"]["autorefresh"] == 0.5
    titles = {chart["title"] for chart in boards["summary"]["charts"].values()}
    assert {"Total equity", "24h PnL (realised)", "Total profit saved", "Trading", "Health"} <= (
        titles
    )


def test_only_the_configured_users_get_in() -> None:
    settings = _settings(
        users=[
            {"username": "operator", "password_hash_env": "OP_HASH"},
            {"username": "auditor", "password_hash_env": "AUDIT_HASH"},
        ],
        allowed_ips=["10.0.0.0/8"],
    )
    metadata = build_metadata(settings)
    allow = {"id": ["operator", "auditor"]}
    assert metadata["allow"] == allow
    assert metadata["allow_sql"] == allow
    assert metadata["databases"][DB_NAME]["allow"] == allow
    auth = metadata["plugins"]["datasette-auth-passwords"]
    assert auth["operator_password_hash"] == {"$env": "OP_HASH"}
    assert auth["auditor_password_hash"] == {"$env": "AUDIT_HASH"}
    assert auth["actors"] == {"operator": {"id": "operator"}, "auditor": {"id": "auditor"}}
    assert metadata["plugins"]["jiritsu-allowlist"] == {"allowed_ips": ["10.0.0.0/8"]}


def test_who_may_press_the_control_buttons() -> None:
    def users(*flags: bool | None) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for i, flag in enumerate(flags):
            user: dict[str, object] = {"username": f"u{i}", "password_hash_env": f"H{i}"}
            if flag is not None:
                user["can_control"] = flag
            out.append(user)
        return out

    assert _settings(users=users(None, None)).dashboard.controllers() == ["u0"]
    assert _settings(users=users(False, None, True)).dashboard.controllers() == ["u2"]
    assert _settings().dashboard.controllers() == ["operator"]
    off = _settings(users=users(True, True), controls_enabled=False)
    assert off.dashboard.controllers() == []
    text = build_metadata(off)["plugins"]["datasette-dashboards"]["intervention"]["charts"]
    assert "switched off" in text["commands"]["display"]


def test_the_hash_never_enters_the_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = hash_password("hunter2")
    monkeypatch.setenv("JIRITSU_DASHBOARD_PASSWORD_HASH", secret)
    text = json.dumps(build_metadata(_settings()))
    assert secret not in text
    assert "JIRITSU_DASHBOARD_PASSWORD_HASH" in text


def test_canned_queries_only_read() -> None:
    for name, query in canned_queries().items():
        assert not query.get("write"), name
        assert query["sql"].lstrip().upper().startswith("SELECT"), name


def test_intervention_commands_are_exact_and_quoted() -> None:
    text = intervention_commands(["SubBot-A", "odd bot"], Path("/etc/jiritsu/config.toml"))
    base = "jiritsu --config /etc/jiritsu/config.toml"
    lines = text.splitlines()
    assert f"{base} halt --reason 'manual: <why>'" in lines
    assert f"{base} halt --bot SubBot-A --reason 'manual: <why>'" in lines
    assert f"{base} halt --bot 'odd bot' --reason 'manual: <why>'" in lines
    assert f"{base} resume --bot 'odd bot'" in lines
    assert f"{base} flatten --bot SubBot-A --yes" in lines
    assert f"{base} flatten --yes" in lines
    for line in lines:
        if line.startswith("jiritsu "):
            assert shlex.split(line)[0] == "jiritsu"  # every command line parses as a shell line
    assert intervention_commands(["A"]).splitlines().count("jiritsu resume --bot A") == 1


def test_chart_urls_are_what_the_browser_fetches() -> None:
    urls = dict(chart_urls(build_metadata(_settings())))
    assert urls["page summary"] == "/-/dashboards/summary"
    equity = urls["chart backtests/equity"]
    assert equity.startswith(f"/{DB_NAME}.json?sql=SELECT")
    assert equity.endswith("&_shape=objects")
    assert "%5B%5B" not in equity  # the optional filter is dropped when no run is chosen
    assert sum(label.startswith("page ") for label in urls) == len(PAGES)


def test_every_chart_runs_on_an_empty_database_and_tables_say_none(sqlite_url: str) -> None:
    """datasette-dashboards' table chart reads its columns off the first row: an empty result
    was a browser TypeError and a blank card, so every table has a 'none' row instead."""
    import re
    import sqlite3

    from jiritsu.dashboard import plugin
    from jiritsu.db import migrate

    migrate.upgrade(sqlite_url)
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    plugin.prepare_connection(conn)
    try:
        boards = build_metadata(_settings())["plugins"]["datasette-dashboards"]
        for slug, board in boards.items():
            for name, chart in board["charts"].items():
                if chart["library"] == "markdown":
                    continue
                query = re.sub(r"\[\[.*?\]\]", "", chart["query"])
                rows = conn.execute(query).fetchall()
                if chart["library"] == "table":
                    assert rows, (slug, name)
                    assert rows[0][0] == "none", (slug, name)
                    assert set(rows[0][1:]) <= {""}, (slug, name)
        summary = {
            name: conn.execute(chart["query"]).fetchone()[0]
            for name, chart in boards["summary"]["charts"].items()
            if chart["library"] == "metric"
        }
        assert summary["total_equity"] == "n/a"
        assert summary["profit_saved"] == "0.00 USDT"
    finally:
        conn.close()


def test_profit_factor_of_a_bot_without_losses_is_infinite_not_zero(sqlite_url: str) -> None:
    import sqlite3

    from jiritsu.dashboard import plugin
    from jiritsu.db import migrate

    migrate.upgrade(sqlite_url)
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    plugin.prepare_connection(conn)
    try:
        for i, (bot, pnl) in enumerate(
            [("SubBot-A", "5.5"), ("SubBot-B", "2"), ("SubBot-B", "-1")]
        ):
            conn.execute(
                "INSERT INTO trades (timestamp, sub_bot_name, symbol, order_id, side, price, "
                "quantity, fee, pnl, position_effect, created_at, updated_at) VALUES "
                "(?, ?, 'BTCUSDT', ?, 'Sell', '1', '1', '0', ?, 'close', ?, ?)",
                ("2026-03-01 00:00:00.000000", bot, f"o{i}", pnl, "2026-03-01", "2026-03-01"),
            )
        conn.commit()
        chart = build_metadata(_settings())["plugins"]["datasette-dashboards"]["performance"]
        cursor = conn.execute(chart["charts"]["table"]["query"])
        names = [d[0] for d in cursor.description]
        table = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        assert table["SubBot-A"]["profit_factor"] == "∞ (no losses)"
        assert table["SubBot-B"]["profit_factor"] == "2.00"
        assert table["overall"]["profit_factor"] == "7.50"
    finally:
        conn.close()


def test_the_bounded_sentiment_chart_equals_the_view(tmp_path: Path) -> None:
    import sqlite3
    from datetime import datetime, timezone

    from jiritsu.dashboard.config import SENTIMENT_24H_LAST_7_DAYS
    from jiritsu.dashboard.seed import seed_database

    path = tmp_path / "seeded.db"
    seed_database(f"sqlite:///{path}", days=12, end=datetime(2026, 3, 1, tzinfo=timezone.utc),
                  decision_minutes=240)  # fmt: skip
    conn = sqlite3.connect(path)
    try:
        fast = conn.execute(SENTIMENT_24H_LAST_7_DAYS).fetchall()
        view = conn.execute(
            "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', hour), average_score, item_count FROM "
            "sentiment_moving_average WHERE hour >= (SELECT datetime(now_utc, '-7 days') "
            "FROM data_clock) ORDER BY hour"
        ).fetchall()
    finally:
        conn.close()
    assert len(fast) > 24
    assert fast == view


def test_display_numbers() -> None:
    from jiritsu.dashboard.plugin import money, num, pct

    assert money("1494684.9655977173") == "1,494,684.97"
    assert money(-12345.678) == "-12,345.68"
    assert money(None) is None
    assert num("0.84123", 2) == "0.84"
    assert pct(0.4567, 1) == "45.7%"


def test_one_time_rule_every_time_axis_is_utc_and_says_so() -> None:
    def temporal(node: object) -> list[dict]:
        if isinstance(node, dict):
            found = [node] if node.get("type") == "temporal" else []
            return found + [x for value in node.values() for x in temporal(value)]
        if isinstance(node, list):
            return [x for value in node for x in temporal(value)]
        return []

    boards = build_metadata(_settings())["plugins"]["datasette-dashboards"]
    axes = [
        axis
        for board in boards.values()
        for chart in board["charts"].values()
        if chart["library"] == "vega-lite"
        for axis in temporal(chart["display"])
    ]
    assert len(axes) > 10
    for axis in axes:
        assert axis["title"].endswith("(UTC)"), axis
        assert axis["scale"]["type"] == "utc", axis
        assert axis.get("timeUnit", "utc").startswith("utc"), axis


def test_equity_axes_do_not_start_at_zero() -> None:
    boards = build_metadata(_settings())["plugins"]["datasette-dashboards"]
    charts = [
        boards["summary"]["charts"]["equity_30d"]["display"]["encoding"]["y"],
        boards["portfolio"]["charts"]["equity_per_bot"]["display"]["encoding"]["y"],
        *(
            layer["encoding"]["y"]
            for layer in boards["portfolio"]["charts"]["total_equity"]["display"]["layer"]
        ),
        boards["backtests"]["charts"]["equity"]["display"]["encoding"]["y"],
    ]
    assert [y["scale"]["zero"] for y in charts] == [False] * len(charts)


def test_password_hash_format() -> None:
    made = hash_password("x")
    assert is_password_hash(made)
    assert not is_password_hash("x")
    assert not is_password_hash("md5$1$salt$hash")
    assert not is_password_hash("pbkdf2_sha256$many$salt$hash")


def test_the_backtest_run_picker_names_runs_and_selects_the_one_picked(sqlite_url: str) -> None:
    """The picker listed bare ids; its labels now say which bot, period and sample a run is,
    and picking a label shows that run and no other."""
    import sqlite3

    from datasette_dashboards import replace_opts_in_query

    from jiritsu.dashboard import plugin
    from jiritsu.db import migrate

    migrate.upgrade(sqlite_url)
    conn = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"))
    plugin.prepare_connection(conn)
    try:
        for bot, sample in [("SubBot-A", None), ("SubBot-B", "out_of_sample")] * 6:
            conn.execute(
                "INSERT INTO backtest_runs (created_at, bot, strategy, period_from, period_to, "
                "source, sample) VALUES ('2026-03-01 00:00:00.000000', ?, 'ema_cross', "
                "'2019-01-01 00:00:00.000000', '2019-06-30 00:00:00.000000', 'cli', ?)",
                (bot, sample),
            )
        conn.commit()
        board = build_metadata(_settings())["plugins"]["datasette-dashboards"]["backtests"]
        labels = [row[0] for row in conn.execute(board["filters"]["run"]["query"])]
        assert labels[0] == "#12 SubBot-B 2019-01-01..2019-06-30 out_of_sample ema_cross"
        assert labels[-1] == "#1 SubBot-A 2019-01-01..2019-06-30 ema_cross"
        picked = labels[-1]  # "#1 ...": a prefix of "#10 ...", "#11 ..." and "#12 ..."
        for name in ("runs", "equity"):
            query = replace_opts_in_query(board["charts"][name]["query"], {"run": picked})
            assert ":run" in query
            conn.execute(query, {"run": picked}).fetchall()
        runs = replace_opts_in_query(board["charts"]["runs"]["query"], {"run": picked})
        assert [row[0] for row in conn.execute(runs, {"run": picked})] == [1]
    finally:
        conn.close()
