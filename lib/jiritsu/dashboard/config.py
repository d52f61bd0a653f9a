"""Datasette's metadata for the dashboard: pages, charts, canned queries, permissions, plugins.

Built from the settings at start-up (bot names, users, allowed addresses), never written to
disk. The password hashes are only referenced (``{"$env": NAME}``): Datasette reads them from
the server's environment, so ``/-/metadata`` and any dump of this dict show names, not secrets.

Chart SQL runs in Datasette, so it is SQLite SQL (the served file is SQLite: the live database
or the mirror); numbers that must agree with PostgreSQL come from the views of migrations 0004
and 0005, and table links point at 0005's numeric views so money sorts and filters as numbers.
``money()``, ``num()`` and ``pct()`` are the display functions of :mod:`jiritsu.dashboard.plugin`.

One time rule: everything is shown in UTC and says so (table columns "... (UTC)", chart axes on
UTC scales titled "(UTC)"); the daily views group by UTC day. "The last N days" count back from
the data's clock (the ``data_clock`` view), so a replay or simulation database shows its own
recent past.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from jiritsu.config import Settings

DB_NAME = "jiritsu"
ALLOWLIST_PLUGIN = "jiritsu-allowlist"
AUTH_PLUGIN = "datasette-auth-passwords"
DASHBOARDS_PLUGIN = "datasette-dashboards"
LOG_REFRESH_MINUTES = 1
SUMMARY_REFRESH_MINUTES = 0.5
DAY_MS = 86_400_000
CONTROL_PATH = "/-/jiritsu/control"  # served by jiritsu.dashboard.plugin
LOG_TAIL_PATH = "/-/jiritsu/log"
# datasette-dashboards' vega-lite config, plus numbers with thousands separators.
_VL_CONFIG = {
    "background": "#00000000",
    "arc": {"innerRadius": 50},
    "line": {"point": False},
    "numberFormat": ",.2~f",
}

# slug -> title, in menu order
PAGES: dict[str, str] = {
    "summary": "Summary",
    "portfolio": "Portfolio",
    "trades": "Trade history",
    "performance": "Performance",
    "log": "Log viewer",
    "decisions": "Decisions",
    "backtests": "Backtests and tuning",
    "intervention": "Manual intervention",
}

DATASETTE_SETTINGS: dict[str, Any] = {
    "suggest_facets": False,  # suggestions cost a query per column on every table page
    "allow_download": False,
    "max_returned_rows": 5000,  # a year of daily points for three bots fits in one chart
    "sql_time_limit_ms": 2000,
    "default_cache_ttl": 0,  # the log viewer must show new events on refresh
    "default_page_size": 100,
}


def _vl(mark: dict[str, Any] | str, encoding: dict[str, Any], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"mark": mark, "encoding": encoding, "config": _VL_CONFIG}
    spec.update(extra)
    return spec


def _q(field: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"field": field, "type": "quantitative", "title": title or field, **extra}


def _t(field: str, title: str = "time", **extra: Any) -> dict[str, Any]:
    """A time axis on a UTC scale, titled "(UTC)" (the dashboard's one time rule)."""
    return {
        "field": field,
        "type": "temporal",
        "title": f"{title} (UTC)",
        "scale": {"type": "utc"},
        **extra,
    }


def _day(field: str = "day", title: str = "day") -> dict[str, Any]:
    """A UTC day axis: at most one label per day (a one-day chart does not repeat its date)."""
    return _t(
        field,
        title,
        timeUnit="utcyearmonthdate",
        axis={"tickMinStep": DAY_MS, "labelExpr": "utchours(datum.value) == 0 ? datum.label : ''"},
    )


def _n(field: str, title: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"field": field, "type": "nominal", "title": title or field, **extra}


def _chart(title: str, query: str, library: str, display: Any = None) -> dict[str, Any]:
    chart: dict[str, Any] = {"title": title, "library": library}
    if library != "markdown":
        chart["db"] = DB_NAME
        chart["query"] = " ".join(query.split())
    chart["display"] = display if display is not None else {}
    return chart


def _metric(title: str, query: str) -> dict[str, Any]:
    return _chart(title, query, "metric", {"field": "value"})


def _table(title: str, columns: list[str], rest: str) -> dict[str, Any]:
    """A table chart: ``SELECT <columns> <rest>`` (escape text columns with :func:`_h`), with a
    'none' row when there is nothing to show (see :func:`_or_none`)."""
    return _chart(title, _or_none(columns, rest), "table")


def _markdown(title: str, text: str) -> dict[str, Any]:
    return _chart(title, "", "markdown", text)


def _money(expr: str) -> str:
    """Money for a card: '9,977.30 USDT', or 'n/a' when there is no value."""
    return f"COALESCE(money({expr}) || ' USDT', 'n/a')"


def _utc(expr: str, alias: str) -> str:
    """A stored UTC timestamp as 'YYYY-MM-DD HH:MM:SS' under a column that says UTC."""
    return f'substr({expr}, 1, 19) AS "{alias} (UTC)"'


def _or_none(columns: list[str], rest: str) -> str:
    """``SELECT <columns> <rest>``, or one row of 'none' and blanks when that has no rows.

    datasette-dashboards' table chart reads the columns off the first row; an empty result
    broke the page (a TypeError) and left the card blank. The rows are computed once (a
    materialized CTE), not again to find out whether there were any. All of it is this module's
    own SQL text (S608): nothing from a request.
    """
    names = [column.rsplit(" AS ", 1)[-1] for column in columns]
    blanks = ", ".join([f"'none' AS {names[0]}"] + [f"'' AS {name}" for name in names[1:]])
    shown = f"SELECT {', '.join(columns)} {rest}"
    empty = f"SELECT {blanks} WHERE NOT EXISTS (SELECT 1 FROM shown)"  # noqa: S608
    return (
        f"WITH shown AS MATERIALIZED ({shown}) SELECT * FROM shown UNION ALL {empty}"  # noqa: S608
    )


def _h(column: str, alias: str | None = None) -> str:
    """``column`` HTML-escaped, for table charts.

    datasette-dashboards puts table cells into the page with ``innerHTML``; headlines, event
    messages and advisor reasons come from outside (news feeds, exchanges, a model), so markup
    in them must arrive as text, never as HTML.
    """
    name = alias or column.strip('"')
    escaped = f"replace(replace(replace({column}, '&', '&amp;'), '<', '&lt;'), '>', '&gt;')"
    return f'{escaped} AS "{name}"'


# --- pages ----------------------------------------------------------------------------------


def _summary() -> dict[str, Any]:
    s = "FROM dashboard_summary"
    return {
        "title": PAGES["summary"],
        "description": "Where the portfolio stands now. 24 hours count back from the newest "
        "snapshot (data as of). Times are UTC. The page refreshes itself every 30 seconds.",
        "settings": {"autorefresh": SUMMARY_REFRESH_MINUTES},
        "layout": [
            ["total_equity", "pnl_24h", "equity_change_24h", "profit_saved"],
            ["trading", "health", "as_of", "as_of"],
            ["equity_30d", "equity_30d", "halts", "halts"],
            ["equity_30d", "equity_30d", "health_checks", "health_checks"],
        ],
        "charts": {
            "total_equity": _metric(
                "Total equity", f"SELECT {_money('total_equity')} AS value {s}"
            ),
            "pnl_24h": _metric(
                "24h PnL (realised)",
                f"SELECT {_money('realised_pnl_24h')} AS value {s}",
            ),
            "equity_change_24h": _metric(
                "24h equity change",
                f"SELECT {_money('equity_change_24h')} AS value {s}",
            ),
            "profit_saved": _metric(
                "Total profit saved",
                f"SELECT {_money('COALESCE(profit_saved, 0)')} AS value {s}",
            ),
            "trading": _metric(
                "Trading",
                "SELECT CASE WHEN global_halted > 0 THEN 'HALTED' "
                "WHEN halted_bots > 0 THEN 'running, ' || halted_bots || ' bot(s) halted' "
                f"ELSE 'running' END AS value {s}",
            ),
            "health": _metric(
                "Health",
                "SELECT CASE WHEN health_checks = 0 THEN 'no checks yet' "
                "WHEN health_problems = 0 THEN 'all ' || health_checks || ' checks ok' "
                "ELSE health_problems || ' of ' || health_checks || ' checks not ok' END "
                f"AS value {s}",
            ),
            "as_of": _metric(
                "Data as of",
                f"SELECT COALESCE(substr(as_of, 1, 16) || ' UTC', 'no snapshot yet') AS value {s}",
            ),
            "equity_30d": _chart(
                "Total equity, last 30 days",
                "SELECT strftime('%Y-%m-%dT%H:%M:%SZ', \"timestamp\") AS time, "
                "CAST(total_balance_usdt AS REAL) AS equity FROM portfolio_history "
                "WHERE \"timestamp\" >= (SELECT datetime(now_utc, '-30 days') FROM data_clock) "
                'ORDER BY "timestamp"',
                "vega-lite",
                _vl(
                    {"type": "line", "tooltip": True},
                    {"x": _t("time"), "y": _q("equity", "USDT", scale={"zero": False})},
                ),
            ),
            "halts": _table(
                "Halts",
                [
                    _h("scope"),
                    _h("reason"),
                    _utc("halted_at", "halted at"),
                    _h("halted_by"),
                    _utc("cooldown_until", "cool-down until"),
                ],
                "FROM controls WHERE halted "
                "ORDER BY controls.scope = 'global' DESC, controls.scope",
            ),
            "health_checks": _table(
                "Health checks",
                [
                    _h("check_name"),
                    _h("status"),
                    _utc("ts", "checked at"),
                    "value",
                    _h("message"),
                ],
                "FROM health_latest "
                "ORDER BY lower(health_latest.status) = 'ok', health_latest.check_name",
            ),
        },
    }


def _portfolio() -> dict[str, Any]:
    return {
        "title": PAGES["portfolio"],
        "description": "Capital by bot, equity and realised PnL over time, and the market phase.",
        "layout": [
            ["allocation", "equity_per_bot", "equity_per_bot"],
            ["total_equity", "cumulative_pnl", "cumulative_pnl"],
            ["market_phase", "market_phase", "market_phase"],
        ],
        "charts": {
            "allocation": _chart(
                "Allocation by bot",
                "SELECT bot, balance, printf('%.1f%%', 100.0 * balance / NULLIF(SUM(balance) "
                "OVER (), 0)) AS share FROM (SELECT bot_name AS bot, CAST(balance AS REAL) "
                "AS balance FROM portfolio_bot_balances WHERE snapshot_id = (SELECT id "
                'FROM portfolio_history ORDER BY "timestamp" DESC, id DESC LIMIT 1)) '
                "ORDER BY bot",
                "vega-lite",
                {
                    "encoding": {
                        "theta": _q("balance", "USDT", stack=True),
                        "color": _n("bot"),
                        "tooltip": [_n("bot"), _q("balance", "USDT", format=",.2f"), _n("share")],
                    },
                    "layer": [
                        {"mark": {"type": "arc", "outerRadius": 90}},
                        {
                            "mark": {"type": "text", "radius": 110, "fontWeight": "bold"},
                            "encoding": {"text": _n("share")},
                        },
                    ],
                    "config": _VL_CONFIG,
                },
            ),
            "equity_per_bot": _chart(
                "Equity per bot (end of day)",
                "SELECT day, bot, balance FROM equity_daily ORDER BY day, bot",
                "vega-lite",
                _vl(
                    {"type": "line", "point": False, "tooltip": True},
                    {
                        "x": _day(),
                        "y": _q("balance", "USDT", scale={"zero": False}),
                        "color": _n("bot"),
                    },
                ),
            ),
            "total_equity": _chart(
                "Total equity (left) and profit saved (right), end of day",
                "SELECT day, total_balance_usdt AS total_equity, profit_saved_balance "
                "AS profit_saved FROM portfolio_daily ORDER BY day",
                "vega-lite",
                {
                    # Two axes: profit saved is a small fraction of equity and would flatten
                    # the equity line on a shared axis.
                    "encoding": {"x": _day()},
                    "layer": [
                        {
                            "mark": {"type": "line", "color": "#4c78a8", "tooltip": True},
                            "encoding": {
                                "y": _q("total_equity", "total equity, USDT", scale={"zero": False})
                            },
                        },
                        {
                            "mark": {"type": "line", "color": "#f58518", "tooltip": True},
                            "encoding": {
                                "y": _q(
                                    "profit_saved",
                                    "profit saved, USDT",
                                    scale={"zero": False},
                                    axis={"orient": "right"},
                                )
                            },
                        },
                    ],
                    "resolve": {"scale": {"y": "independent"}},
                    "config": _VL_CONFIG,
                },
            ),
            "cumulative_pnl": _chart(
                "Cumulative realised PnL",
                "SELECT day, bot, SUM(pnl) OVER (PARTITION BY bot ORDER BY day) AS cumulative_pnl "
                "FROM trade_pnl_daily ORDER BY day, bot",
                "vega-lite",
                _vl(
                    {"type": "line", "point": False, "interpolate": "step-after", "tooltip": True},
                    {"x": _day(), "y": _q("cumulative_pnl", "USDT"), "color": _n("bot")},
                ),
            ),
            "market_phase": _chart(
                "Market phase over time",
                "SELECT substr(ts, 1, 10) AS day, phase, COUNT(*) AS readings "
                "FROM market_phases GROUP BY substr(ts, 1, 10), phase ORDER BY day",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {
                        "x": _day(),
                        "y": _q("readings", "share of the day", stack="normalize"),
                        "color": _n(
                            "phase",
                            scale={
                                "domain": [
                                    "strong_bull",
                                    "weak_bull",
                                    "ranging",
                                    "weak_bear",
                                    "strong_bear",
                                ],
                                "range": ["#1a9850", "#91cf60", "#bdbdbd", "#fc8d59", "#d73027"],
                            },
                        ),
                    },
                ),
            ),
        },
    }


def _trades(bot_names: list[str]) -> dict[str, Any]:
    links = "\n".join(
        f"- [{name}](/{DB_NAME}/trade_history?_sort_desc=time_utc&bot={quote(name, safe='')})"
        for name in bot_names
    )
    text = (
        "Every trade, with Datasette's filters, facets and sorting (money sorts and filters as "
        "numbers; the exact values are in the tables of the same name):\n\n"
        f"- **[All trades, newest first](/{DB_NAME}/trade_history?_sort_desc=time_utc)**\n"
        f"{links}\n"
        f"- [Losing trades, worst first](/{DB_NAME}/trade_history?pnl__lt=0&_sort=pnl)\n"
        f"- [Fills (executions)](/{DB_NAME}/fill_history?_sort_desc=time_utc)\n"
        f"- [Orders](/{DB_NAME}/order_history?_sort_desc=created_utc)\n"
        f"- [Transfers](/{DB_NAME}/transfer_history?_sort_desc=created_utc)\n"
    )
    return {
        "title": PAGES["trades"],
        "description": "The trades: filter, facet and sort them in Datasette. Times are UTC.",
        "layout": [["browse", "per_week"], ["latest", "latest"]],
        "charts": {
            "browse": _markdown("Browse trades", text),
            "per_week": _chart(
                "Trades per week by bot",
                "SELECT strftime('%Y-%m-%d', \"timestamp\", 'weekday 0', '-6 days') AS week, "
                "sub_bot_name AS bot, COUNT(*) AS trades FROM trades "
                "GROUP BY week, sub_bot_name ORDER BY week",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {
                        "x": _t("week", "week", timeUnit="utcyearmonthdate"),
                        "y": _q("trades"),
                        "color": _n("bot"),
                    },
                ),
            ),
            "latest": _table(
                "Latest 50 trades",
                [
                    _utc('"timestamp"', "time"),
                    _h("sub_bot_name", "bot"),
                    _h("symbol"),
                    "side",
                    "position_effect",
                    "money(price) AS price",
                    "quantity",
                    "num(fee, 4) AS fee",
                    _h("fee_coin"),
                    "money(pnl) AS pnl",
                    _h("entry_reason"),
                ],
                'FROM trades ORDER BY "timestamp" DESC LIMIT 50',
            ),
        },
    }


def _performance() -> dict[str, Any]:
    return {
        "title": PAGES["performance"],
        "description": "From closed trades (the performance view): win rate, profit factor "
        "and the daily PnL ratio (mean / standard deviation of daily realised PnL x sqrt(365); "
        "not a Sharpe ratio, which is of returns), per bot and overall.",
        "layout": [
            ["table", "table", "table"],
            ["win_rate", "profit_factor", "daily_pnl_ratio"],
            ["daily_pnl", "daily_pnl", "daily_pnl"],
        ],
        "charts": {
            "table": _table(
                "Performance by bot and overall",
                [
                    _h("COALESCE(bot, 'overall')", "bot"),
                    "closed_trades",
                    "wins",
                    "losses",
                    "pct(win_rate, 1) AS win_rate",
                    "CASE WHEN profit_factor IS NOT NULL THEN num(profit_factor, 2) "
                    "WHEN gross_profit > 0 THEN '∞ (no losses)' ELSE 'n/a' END AS profit_factor",
                    "COALESCE(num(daily_pnl_ratio, 2), 'n/a') AS daily_pnl_ratio",
                    "money(net_pnl) AS net_pnl",
                    "money(avg_pnl) AS avg_pnl",
                    'first_day AS "first day (UTC)"',
                    'last_day AS "last day (UTC)"',
                ],
                "FROM performance ORDER BY scope = 'overall', performance.bot",
            ),
            "win_rate": _chart(
                "Win rate",
                "SELECT COALESCE(bot, 'overall') AS bot, win_rate FROM performance "
                "ORDER BY scope = 'overall', bot",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {
                        "x": _n("bot", sort=None),
                        "y": _q("win_rate", "win rate", axis={"format": "%"}),
                    },
                ),
            ),
            "profit_factor": _chart(
                "Profit factor",
                "SELECT COALESCE(bot, 'overall') AS bot, profit_factor FROM performance "
                "ORDER BY scope = 'overall', bot",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {"x": _n("bot", sort=None), "y": _q("profit_factor", "profit factor")},
                ),
            ),
            "daily_pnl_ratio": _chart(
                "Daily PnL ratio (annualised)",
                "SELECT COALESCE(bot, 'overall') AS bot, daily_pnl_ratio FROM performance "
                "ORDER BY scope = 'overall', bot",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {"x": _n("bot", sort=None), "y": _q("daily_pnl_ratio", "daily PnL ratio")},
                ),
            ),
            "daily_pnl": _chart(
                "Realised PnL per day, last 90 days",
                "SELECT day, bot, pnl FROM trade_pnl_daily WHERE day >= (SELECT "
                "date(now_utc, '-90 days') FROM data_clock) ORDER BY day",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {
                        "x": _day(),
                        "y": _q("pnl", "USDT"),
                        "color": _n("bot"),
                    },
                ),
            ),
        },
    }


def _log() -> dict[str, Any]:
    text = (
        f"- [All events, newest first](/{DB_NAME}/system_events?_sort_desc=timestamp)\n"
        f"- [Warnings and worse](/{DB_NAME}/system_events?_sort_desc=timestamp"
        "&level__in=WARNING,ERROR,CRITICAL)\n"
        f"- [Search the log](/{DB_NAME}/log) (canned query: level and text)\n"
        f"- **[Live log file]({LOG_TAIL_PATH})**: today's log, refreshed every few seconds\n\n"
        f"This page reloads itself every {LOG_REFRESH_MINUTES} minute."
    )
    return {
        "title": PAGES["log"],
        "description": "system_events, newest first. Times are UTC; the last 30 days count "
        "back from the data's clock (the newest snapshot).",
        "settings": {"autorefresh": LOG_REFRESH_MINUTES, "allow_fullscreen": True},
        "layout": [["per_day", "browse"], ["events", "events"]],
        "charts": {
            "browse": _markdown("Browse the log", text),
            "per_day": _chart(
                "Warnings and errors per day, last 30 days",
                'SELECT substr("timestamp", 1, 10) AS day, level, COUNT(*) AS events '
                "FROM system_events WHERE level IN ('WARNING', 'ERROR', 'CRITICAL') "
                "AND \"timestamp\" >= (SELECT date(now_utc, '-30 days') FROM data_clock) "
                "GROUP BY day, level ORDER BY day",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {
                        "x": _day(),
                        "y": _q("events"),
                        "color": _n(
                            "level",
                            scale={
                                "domain": ["WARNING", "ERROR", "CRITICAL"],
                                "range": ["#fdae61", "#f46d43", "#a50026"],
                            },
                        ),
                    },
                ),
            ),
            "events": _table(
                "Latest 200 events",
                [
                    _utc('"timestamp"', "time"),
                    "level",
                    _h("event_type"),
                    _h("bot"),
                    _h("message"),
                ],
                'FROM system_events ORDER BY "timestamp" DESC, id DESC LIMIT 200',
            ),
        },
    }


# The sentiment_moving_average view (migration 0003) for the hours of the last 7 days only: the
# view computes every hour of all time first (0.7 s on a seeded year), this reads a week (10 ms).
# Same buckets, same half-open 24-hour windows, same text comparisons, so the same rows.
SENTIMENT_24H_LAST_7_DAYS = """
WITH since AS (SELECT datetime(now_utc, '-7 days') AS t FROM data_clock),
hours AS (
  SELECT DISTINCT substr(s."timestamp", 1, 13) || ':00:00.000000+00:00' AS hour
    FROM sentiment_scores AS s, since
   WHERE s.score IS NOT NULL AND s."timestamp" >= since.t
     AND substr(s."timestamp", 1, 13) || ':00:00.000000+00:00' >= since.t
)
SELECT strftime('%Y-%m-%dT%H:%M:%SZ', h.hour) AS time, avg(s.score) AS average_score,
       count(s.score) AS item_count
  FROM hours AS h
  JOIN sentiment_scores AS s
    ON s.score IS NOT NULL
   AND s."timestamp" > strftime('%Y-%m-%d %H:%M:%S', h.hour, '-23 hours') || '.000000+00:00'
   AND s."timestamp" <= strftime('%Y-%m-%d %H:%M:%S', h.hour, '+1 hour') || '.000000+00:00'
 GROUP BY h.hour
 ORDER BY h.hour
"""


def _decisions() -> dict[str, Any]:
    return {
        "title": PAGES["decisions"],
        "description": "What the advisors said and why; news sentiment with its 7-day average "
        "and the 24-hour moving average the advisors read.",
        "layout": [
            ["actions", "actions"],
            ["sentiment", "sentiment_24h"],
            ["latest", "latest"],
            ["headlines", "headlines"],
        ],
        "charts": {
            "actions": _chart(
                "Advisor actions per day, last 30 days",
                "SELECT substr(created_at, 1, 10) AS day, COALESCE(action, outcome, 'none') "
                "AS action, COUNT(*) AS decisions FROM decisions WHERE created_at >= "
                "(SELECT date(now_utc, '-30 days') FROM data_clock) "
                "GROUP BY day, COALESCE(action, outcome, 'none') ORDER BY day",
                "vega-lite",
                _vl(
                    {"type": "bar", "tooltip": True},
                    {
                        "x": _day(),
                        "y": _q("decisions"),
                        "color": _n("action"),
                    },
                ),
            ),
            "sentiment": _chart(
                "Sentiment score and 7-day moving average",
                "SELECT day, 'daily average' AS series, avg_score AS score FROM sentiment_daily "
                "UNION ALL SELECT day, '7-day moving average', avg_score_7d "
                "FROM sentiment_daily ORDER BY day",
                "vega-lite",
                _vl(
                    {"type": "line", "point": False, "tooltip": True},
                    {"x": _day(), "y": _q("score"), "color": _n("series")},
                ),
            ),
            "sentiment_24h": _chart(
                "Sentiment, 24-hour moving average, last 7 days",
                SENTIMENT_24H_LAST_7_DAYS,
                "vega-lite",
                _vl(
                    {"type": "line", "point": False, "interpolate": "step-after", "tooltip": True},
                    {"x": _t("time"), "y": _q("average_score", "average score")},
                ),
            ),
            "latest": _table(
                "Latest 100 advisor decisions",
                [
                    _utc("created_at", "time"),
                    _h("bot"),
                    _h("provider"),
                    _h("action"),
                    _h("outcome"),
                    "num(confidence, 2) AS confidence",
                    _h("reason"),
                    _h("error"),
                ],
                "FROM decisions ORDER BY created_at DESC, id DESC LIMIT 100",
            ),
            "headlines": _table(
                "Latest 50 scored headlines",
                [
                    _utc('"timestamp"', "time"),
                    _h("source"),
                    _h("keyword"),
                    "num(score, 2) AS score",
                    _h("headline"),
                ],
                'FROM sentiment_scores ORDER BY "timestamp" DESC, id DESC LIMIT 50',
            ),
        },
    }


RUN_LABELS = (
    "SELECT '#' || id || ' ' || bot || ' ' || substr(period_from, 1, 10) || '..' || "
    "substr(period_to, 1, 10) || COALESCE(' ' || sample, '') || "
    "COALESCE(' ' || strategy, '') FROM backtest_runs ORDER BY id DESC LIMIT 500"
)


def _backtests() -> dict[str, Any]:
    return {
        "title": PAGES["backtests"],
        "description": "Backtest runs and their equity curves (the five newest, or the run "
        "chosen below), and the monthly tuning runs.",
        "filters": {
            "run": {
                "name": "Backtest run",
                "type": "select",
                "db": DB_NAME,
                # datasette-dashboards shows an option's value as its label, so the value is
                # the label ("#12 SubBot-B 2019-01-01..2019-06-30 out_of_sample") and the
                # charts read the id back with CAST(substr(:run, 2) AS INTEGER).
                "query": RUN_LABELS,
            }
        },
        "layout": [
            ["equity", "equity"],
            ["runs", "runs"],
            ["tuning_scores", "tuning"],
        ],
        "charts": {
            "equity": _chart(
                "Backtest equity curves",
                "SELECT '#' || e.run_id || ' ' || r.bot AS run, substr(e.ts, 1, 10) AS day, "
                "e.equity AS equity, MAX(e.ts) AS last_ts FROM backtest_equity AS e "
                "JOIN backtest_runs AS r ON r.id = e.run_id WHERE e.run_id IN (SELECT id FROM "
                "backtest_runs WHERE 1 = 1 [[ AND id = CAST(substr(:run, 2) AS INTEGER) ]] "
                "ORDER BY id DESC LIMIT 5) "
                "GROUP BY e.run_id, substr(e.ts, 1, 10) ORDER BY e.run_id, day",
                "vega-lite",
                _vl(
                    {"type": "line", "point": False, "tooltip": True},
                    {
                        "x": _day(),
                        "y": _q("equity", scale={"zero": False}),
                        "color": _n("run"),
                    },
                ),
            ),
            "runs": _table(
                "Backtest runs",
                [
                    "id",
                    _utc("created_at", "created"),
                    _h("bot"),
                    _h("strategy"),
                    _h("symbol"),
                    "substr(period_from, 1, 10) AS period_from",
                    "substr(period_to, 1, 10) AS period_to",
                    "pct(total_return, 2) AS total_return",
                    "COALESCE(num(sharpe, 2), 'n/a') AS sharpe",
                    "pct(max_drawdown, 2) AS max_drawdown",
                    "pct(win_rate, 1) AS win_rate",
                    "COALESCE(num(profit_factor, 2), 'n/a') AS profit_factor",
                    "trade_count",
                    _h("sample"),
                    "tuning_run_id",
                ],
                "FROM backtest_runs WHERE 1 = 1 [[ AND id = CAST(substr(:run, 2) AS INTEGER) ]] "
                "ORDER BY id DESC LIMIT 50",
            ),
            "tuning": _table(
                "Tuning runs",
                [
                    "id",
                    _h("bot"),
                    _utc("started_at", "started"),
                    _h("status"),
                    _h("target_metric"),
                    "num(current_out_of_sample_score, 3) AS current_oos",
                    "num(out_of_sample_score, 3) AS best_oos",
                    "CASE WHEN applied THEN 'yes' ELSE 'no' END AS applied",
                    _h("reason"),
                ],
                "FROM tuning_runs ORDER BY started_at DESC LIMIT 50",
            ),
            "tuning_scores": _chart(
                "Tuning: in-sample vs out-of-sample score",
                "SELECT substr(started_at, 1, 10) AS day, bot, 'in-sample' AS sample, "
                "in_sample_score AS score FROM tuning_runs WHERE in_sample_score IS NOT NULL "
                "UNION ALL SELECT substr(started_at, 1, 10), bot, 'out-of-sample', "
                "out_of_sample_score FROM tuning_runs WHERE out_of_sample_score IS NOT NULL "
                "ORDER BY day",
                "vega-lite",
                _vl(
                    {"type": "point", "filled": True, "tooltip": True},
                    {
                        "x": _day(),
                        "y": _q("score"),
                        "color": _n("bot"),
                        "shape": _n("sample"),
                    },
                ),
            ),
        },
    }


def intervention_commands(bot_names: list[str], config_path: Path | None = None) -> str:
    """The exact halt/resume/flatten command lines, as markdown (the CLI is the control plane)."""
    base = "jiritsu"
    if config_path is not None:
        base += f" --config {shlex.quote(str(config_path))}"
    why = shlex.quote("manual: <why>")
    lines = [
        "Log in to the server over SSH (`ssh user@server`) as the user that runs Jiritsu "
        "and run:",
        "",
        "**Look first**",
        "",
        "```",
        f"{base} status",
        "```",
        "",
        "**Halt** (no new orders; open positions stay)",
        "",
        "```",
        f"{base} halt --reason {why}",
    ]
    lines += [f"{base} halt --bot {shlex.quote(n)} --reason {why}" for n in bot_names]
    lines += ["```", "", "**Resume** (lift a halt)", "", "```", f"{base} resume"]
    lines += [f"{base} resume --bot {shlex.quote(n)}" for n in bot_names]
    lines += [
        "```",
        "",
        "**Flatten** (cancel every open order, close every position at market, then halt)",
        "",
        "```",
        f"{base} flatten --yes",
    ]
    lines += [f"{base} flatten --bot {shlex.quote(n)} --yes" for n in bot_names]
    lines += ["```", ""]
    return "\n".join(lines)


def _intervention(
    bot_names: list[str], config_path: Path | None, controls_enabled: bool
) -> dict[str, Any]:
    if controls_enabled:
        buttons = (
            f"**[Open the controls]({CONTROL_PATH})**: halt or resume everything or one bot, "
            "or flatten (with a typed confirmation). Users with `can_control` may press; each "
            "press is recorded with the user's name and address and alerted.\n\n"
            "Or, over SSH:\n\n"
        )
    else:
        buttons = "The control buttons are switched off (`dashboard.controls_enabled`).\n\n"
    return {
        "title": PAGES["intervention"],
        "description": "Halt, resume and flatten: the control page, or the same commands "
        "over SSH. Times are UTC.",
        "layout": [["commands", "controls"]],
        "charts": {
            "commands": _markdown(
                "Controls", buttons + intervention_commands(bot_names, config_path)
            ),
            "controls": _table(
                "Halt switches",
                [
                    _h("scope"),
                    "CASE WHEN halted THEN 'HALTED' ELSE 'running' END AS state",
                    _h("reason"),
                    _utc("halted_at", "halted at"),
                    _h("halted_by"),
                    _utc("resumed_at", "resumed at"),
                    _utc("cooldown_until", "cool-down until"),
                ],
                "FROM controls ORDER BY controls.scope = 'global' DESC, controls.scope",
            ),
        },
    }


def dashboards(
    bot_names: list[str], config_path: Path | None = None, controls_enabled: bool = True
) -> dict[str, Any]:
    """datasette-dashboards' configuration: one entry per page, in :data:`PAGES` order."""
    pages = {
        "summary": _summary(),
        "portfolio": _portfolio(),
        "trades": _trades(bot_names),
        "performance": _performance(),
        "log": _log(),
        "decisions": _decisions(),
        "backtests": _backtests(),
        "intervention": _intervention(bot_names, config_path, controls_enabled),
    }
    return {slug: pages[slug] for slug in PAGES}


def canned_queries() -> dict[str, Any]:
    """Canned queries (read-only SELECTs; none has ``write``)."""
    return {
        "log": {
            "title": "Log viewer",
            "description": "system_events, newest first. Leave a field empty to match all.",
            "sql": 'SELECT "timestamp", level, event_type, bot, message, details '
            "FROM system_events WHERE (:level = '' OR level = upper(:level)) "
            "AND (:text = '' OR message LIKE '%' || :text || '%') "
            'ORDER BY "timestamp" DESC, id DESC LIMIT 500',
        },
        "performance_report": {
            "title": "Performance",
            "description": "Win rate, profit factor and daily PnL ratio per bot and overall.",
            "sql": "SELECT * FROM performance ORDER BY scope = 'overall', bot",
        },
        "summary": {
            "title": "Summary",
            "sql": "SELECT * FROM dashboard_summary",
        },
    }


def _tables() -> dict[str, Any]:
    return {
        "trades": {"sort_desc": "timestamp", "facets": ["sub_bot_name", "side", "symbol"]},
        "trade_history": {"sort_desc": "time_utc", "facets": ["bot", "side", "symbol"]},
        "fill_history": {"sort_desc": "time_utc", "facets": ["bot", "side"]},
        "order_history": {"sort_desc": "created_utc", "facets": ["bot", "status"]},
        "transfer_history": {"sort_desc": "created_utc", "facets": ["kind", "status"]},
        "system_events": {"sort_desc": "timestamp", "facets": ["level", "event_type"]},
        "decisions": {"sort_desc": "created_at"},
        "orders": {"sort_desc": "created_at"},
        "executions": {"sort_desc": "exec_time"},
        "transfers": {"sort_desc": "created_at"},
        "sentiment_scores": {"sort_desc": "timestamp"},
        "portfolio_history": {"sort_desc": "timestamp"},
        "alembic_version": {"hidden": True},
    }


def _index_html() -> str:
    links = [f'<a href="/-/dashboards/{slug}">{title}</a>' for slug, title in PAGES.items()]
    links += [f'<a href="{LOG_TAIL_PATH}">Live log</a>', f'<a href="{CONTROL_PATH}">Controls</a>']
    return f"<p>{' · '.join(links)}</p><p>All times are UTC.</p>"


def build_metadata(settings: Settings, *, config_path: Path | None = None) -> dict[str, Any]:
    """The whole Datasette metadata for ``settings``; only operators (the users) see anything."""
    users = [user.username for user in settings.dashboard.users]
    allow = {"id": users}
    auth: dict[str, Any] = {
        f"{user.username}_password_hash": {"$env": user.password_hash_env}
        for user in settings.dashboard.users
    }
    auth["actors"] = {name: {"id": name} for name in users}
    return {
        "title": "Jiritsu",
        "description_html": _index_html(),
        "allow": allow,
        "allow_sql": allow,
        "databases": {
            DB_NAME: {
                "allow": allow,
                "allow_sql": allow,
                "queries": canned_queries(),
                "tables": _tables(),
            }
        },
        "plugins": {
            ALLOWLIST_PLUGIN: {"allowed_ips": list(settings.dashboard.allowed_ips)},
            AUTH_PLUGIN: auth,
            DASHBOARDS_PLUGIN: dashboards(
                settings.bot_names, config_path, settings.dashboard.controls_enabled
            ),
        },
    }


def chart_urls(metadata: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, path) of every page and chart query the dashboard loads, as the browser asks.

    The chart paths are what datasette-dashboards' JavaScript fetches
    (``/<db>.json?sql=...&_shape=objects``); the benchmark and the tests use them.
    """
    import re

    out: list[tuple[str, str]] = [("dashboards", "/-/dashboards")]
    for slug, page in metadata["plugins"][DASHBOARDS_PLUGIN].items():
        out.append((f"page {slug}", f"/-/dashboards/{slug}"))
        for chart_slug, chart in page["charts"].items():
            if chart.get("query"):
                query = re.sub(r"\[\[.*?\]\]", "", chart["query"])  # no filter chosen
                path = f"/{chart['db']}.json?sql={quote(query, safe='')}&_shape=objects"
                out.append((f"chart {slug}/{chart_slug}", path))
    return out
