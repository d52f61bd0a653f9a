"""Dashboard views and an index for its newest-first decision list.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27

Views for the dashboard's pages, written per dialect. Both dialects return the same values:
money as floats (SQLite keeps money as decimal text and CASTs it to REAL; PostgreSQL casts
NUMERIC to double precision), days as 'YYYY-MM-DD' text in UTC, flags and counts as integers.

* ``trade_pnl_daily``: per bot and UTC day, the closed trades (rows of ``trades`` with a
  ``pnl`` whose ``position_effect`` is 'close' or unknown), wins (pnl > 0), losses (pnl < 0),
  gross profit, gross loss and PnL.
* ``performance``: one row per bot (scope 'bot') and one overall row (scope 'overall', bot
  NULL; only when there are closed trades): closed trades, wins, losses, ``win_rate`` (wins /
  closed trades), gross profit and loss, ``profit_factor`` (gross profit / gross loss, NULL
  without a loss), net and average PnL, the first and last day with a closed trade, ``days``
  between them (inclusive) and ``sharpe``: mean / sample standard deviation of the daily
  realised PnL over those days (days without a close count as 0) times sqrt(365), risk-free
  rate 0; NULL with fewer than two days or no variance. The overall row sums the bots' PnL per
  day first, so its Sharpe ratio is the portfolio's.
* ``portfolio_daily`` / ``equity_daily``: the last snapshot of each UTC day (highest id among
  the snapshots at the day's last instant): totals and phase / each bot's balance.
* ``sentiment_daily``: scored items per UTC day, their average, and ``avg_score_7d``: the
  average of every scored item of the last 7 calendar days (that day included).
* ``health_latest``: the newest row of each health check.
* ``dashboard_summary``: one row for the Summary page; "24 hours" counts back from the newest
  portfolio snapshot (``as_of``): total equity, equity change since the last snapshot at least
  24 h older, realised PnL of the trades closed since then, profit saved (latest snapshot, else
  the successful profit_save transfers), global halt (0/1), halted bots, health checks and how
  many of them are not 'ok' (case-insensitive).

Index ``ix_decisions_created_at``: the dashboard lists decisions newest first over all bots
(the existing index leads with ``bot``); without it SQLite sorts the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TRADE_PNL_DAILY_SQLITE = """
CREATE VIEW trade_pnl_daily AS
SELECT t.sub_bot_name AS bot,
       substr(t."timestamp", 1, 10) AS day,
       COUNT(*) AS closed_trades,
       SUM(CASE WHEN CAST(t.pnl AS REAL) > 0 THEN 1 ELSE 0 END) AS wins,
       SUM(CASE WHEN CAST(t.pnl AS REAL) < 0 THEN 1 ELSE 0 END) AS losses,
       SUM(CASE WHEN CAST(t.pnl AS REAL) > 0 THEN CAST(t.pnl AS REAL) ELSE 0.0 END)
         AS gross_profit,
       -SUM(CASE WHEN CAST(t.pnl AS REAL) < 0 THEN CAST(t.pnl AS REAL) ELSE 0.0 END)
         AS gross_loss,
       SUM(CAST(t.pnl AS REAL)) AS pnl
  FROM trades AS t
 WHERE t.pnl IS NOT NULL AND (t.position_effect IS NULL OR t.position_effect = 'close')
 GROUP BY t.sub_bot_name, substr(t."timestamp", 1, 10)
"""

TRADE_PNL_DAILY_POSTGRESQL = """
CREATE VIEW trade_pnl_daily AS
SELECT t.sub_bot_name AS bot,
       to_char(t."timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
       COUNT(*) AS closed_trades,
       SUM(CASE WHEN t.pnl > 0 THEN 1 ELSE 0 END) AS wins,
       SUM(CASE WHEN t.pnl < 0 THEN 1 ELSE 0 END) AS losses,
       CAST(SUM(CASE WHEN t.pnl > 0 THEN t.pnl ELSE 0 END) AS double precision) AS gross_profit,
       CAST(-SUM(CASE WHEN t.pnl < 0 THEN t.pnl ELSE 0 END) AS double precision) AS gross_loss,
       CAST(SUM(t.pnl) AS double precision) AS pnl
  FROM trades AS t
 WHERE t.pnl IS NOT NULL AND (t.position_effect IS NULL OR t.position_effect = 'close')
 GROUP BY t.sub_bot_name, to_char(t."timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD')
"""

PERFORMANCE_SQLITE = """CREATE VIEW performance AS
WITH per_bot AS (
  SELECT 'bot' AS scope, bot,
         SUM(closed_trades) AS closed_trades,
         SUM(wins) AS wins, SUM(losses) AS losses,
         SUM(gross_profit) AS gross_profit, SUM(gross_loss) AS gross_loss,
         SUM(pnl) AS net_pnl, SUM(pnl * pnl) AS sum_sq,
         MIN(day) AS first_day, MAX(day) AS last_day
    FROM trade_pnl_daily
   GROUP BY bot
),
portfolio_days AS (
  SELECT day, SUM(pnl) AS pnl FROM trade_pnl_daily GROUP BY day
),
overall AS (
  SELECT 'overall' AS scope, NULL AS bot,
         SUM(closed_trades) AS closed_trades,
         SUM(wins) AS wins, SUM(losses) AS losses,
         SUM(gross_profit) AS gross_profit, SUM(gross_loss) AS gross_loss,
         SUM(pnl) AS net_pnl, (SELECT SUM(pnl * pnl) FROM portfolio_days) AS sum_sq,
         MIN(day) AS first_day, MAX(day) AS last_day
    FROM trade_pnl_daily
),
scopes AS (
  SELECT * FROM per_bot
  UNION ALL
  SELECT * FROM overall WHERE closed_trades > 0
),
spans AS (
  SELECT s.*, CAST(julianday(s.last_day) - julianday(s.first_day) AS INTEGER) + 1 AS days FROM scopes AS s
),
stats AS (
  SELECT sp.*,
         CASE WHEN sp.days > 1
              THEN (sp.sum_sq - sp.net_pnl * sp.net_pnl / sp.days) / (sp.days - 1)
         END AS pnl_variance
    FROM spans AS sp
)
SELECT scope, bot, closed_trades, wins, losses,
       1.0 * wins / closed_trades AS win_rate,
       gross_profit, gross_loss,
       CASE WHEN gross_loss > 0 THEN gross_profit / gross_loss END AS profit_factor,
       net_pnl,
       net_pnl / closed_trades AS avg_pnl,
       first_day, last_day, days,
       CASE WHEN pnl_variance > 0
            THEN (net_pnl / days) / sqrt(pnl_variance) * 19.1049731745428
       END AS sharpe
  FROM stats
"""

PERFORMANCE_POSTGRESQL = """CREATE VIEW performance AS
WITH per_bot AS (
  SELECT 'bot' AS scope, bot,
         CAST(SUM(closed_trades) AS bigint) AS closed_trades,
         CAST(SUM(wins) AS bigint) AS wins, CAST(SUM(losses) AS bigint) AS losses,
         SUM(gross_profit) AS gross_profit, SUM(gross_loss) AS gross_loss,
         SUM(pnl) AS net_pnl, SUM(pnl * pnl) AS sum_sq,
         MIN(day) AS first_day, MAX(day) AS last_day
    FROM trade_pnl_daily
   GROUP BY bot
),
portfolio_days AS (
  SELECT day, SUM(pnl) AS pnl FROM trade_pnl_daily GROUP BY day
),
overall AS (
  SELECT 'overall' AS scope, NULL AS bot,
         CAST(SUM(closed_trades) AS bigint) AS closed_trades,
         CAST(SUM(wins) AS bigint) AS wins, CAST(SUM(losses) AS bigint) AS losses,
         SUM(gross_profit) AS gross_profit, SUM(gross_loss) AS gross_loss,
         SUM(pnl) AS net_pnl, (SELECT SUM(pnl * pnl) FROM portfolio_days) AS sum_sq,
         MIN(day) AS first_day, MAX(day) AS last_day
    FROM trade_pnl_daily
),
scopes AS (
  SELECT * FROM per_bot
  UNION ALL
  SELECT * FROM overall WHERE closed_trades > 0
),
spans AS (
  SELECT s.*, (CAST(s.last_day AS date) - CAST(s.first_day AS date) + 1) AS days FROM scopes AS s
),
stats AS (
  SELECT sp.*,
         CASE WHEN sp.days > 1
              THEN (sp.sum_sq - sp.net_pnl * sp.net_pnl / sp.days) / (sp.days - 1)
         END AS pnl_variance
    FROM spans AS sp
)
SELECT scope, bot, closed_trades, wins, losses,
       CAST(wins AS double precision) / closed_trades AS win_rate,
       gross_profit, gross_loss,
       CASE WHEN gross_loss > 0 THEN gross_profit / gross_loss END AS profit_factor,
       net_pnl,
       net_pnl / closed_trades AS avg_pnl,
       first_day, last_day, days,
       CASE WHEN pnl_variance > 0
            THEN (net_pnl / days) / sqrt(pnl_variance) * 19.1049731745428
       END AS sharpe
  FROM stats
"""

PORTFOLIO_DAILY_SQLITE = """
CREATE VIEW portfolio_daily AS
SELECT d.day AS day,
       h.id AS snapshot_id,
       h."timestamp" AS "timestamp",
       CAST(h.total_balance_usdt AS REAL) AS total_balance_usdt,
       CAST(h.profit_saved_balance AS REAL) AS profit_saved_balance,
       h.phase AS phase
  FROM (SELECT substr("timestamp", 1, 10) AS day, MAX("timestamp") AS ts
          FROM portfolio_history
         GROUP BY substr("timestamp", 1, 10)) AS d
  JOIN portfolio_history AS h
    ON h.id = (SELECT MAX(x.id) FROM portfolio_history AS x WHERE x."timestamp" = d.ts)
"""

PORTFOLIO_DAILY_POSTGRESQL = """
CREATE VIEW portfolio_daily AS
SELECT d.day AS day,
       h.id AS snapshot_id,
       h."timestamp" AS "timestamp",
       CAST(h.total_balance_usdt AS double precision) AS total_balance_usdt,
       CAST(h.profit_saved_balance AS double precision) AS profit_saved_balance,
       h.phase AS phase
  FROM (SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
               MAX("timestamp") AS ts
          FROM portfolio_history
         GROUP BY to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD')) AS d
  JOIN portfolio_history AS h
    ON h.id = (SELECT MAX(x.id) FROM portfolio_history AS x WHERE x."timestamp" = d.ts)
"""

EQUITY_DAILY_SQLITE = """
CREATE VIEW equity_daily AS
SELECT p.day AS day, b.bot_name AS bot, CAST(b.balance AS REAL) AS balance
  FROM portfolio_daily AS p
  JOIN portfolio_bot_balances AS b ON b.snapshot_id = p.snapshot_id
"""

EQUITY_DAILY_POSTGRESQL = """
CREATE VIEW equity_daily AS
SELECT p.day AS day, b.bot_name AS bot, CAST(b.balance AS double precision) AS balance
  FROM portfolio_daily AS p
  JOIN portfolio_bot_balances AS b ON b.snapshot_id = p.snapshot_id
"""

SENTIMENT_DAILY_SQLITE = """
CREATE VIEW sentiment_daily AS
SELECT day, items, score_sum / items AS avg_score,
       SUM(score_sum) OVER w / SUM(items) OVER w AS avg_score_7d
  FROM (SELECT substr("timestamp", 1, 10) AS day, COUNT(*) AS items, SUM(score) AS score_sum
          FROM sentiment_scores
         WHERE score IS NOT NULL
         GROUP BY substr("timestamp", 1, 10)) AS d
WINDOW w AS (ORDER BY julianday(day) RANGE BETWEEN 6 PRECEDING AND CURRENT ROW)
"""

SENTIMENT_DAILY_POSTGRESQL = """
CREATE VIEW sentiment_daily AS
SELECT day, items, score_sum / items AS avg_score,
       SUM(score_sum) OVER w / SUM(items) OVER w AS avg_score_7d
  FROM (SELECT to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
               COUNT(*) AS items,
               CAST(SUM(score) AS double precision) AS score_sum
          FROM sentiment_scores
         WHERE score IS NOT NULL
         GROUP BY to_char("timestamp" AT TIME ZONE 'UTC', 'YYYY-MM-DD')) AS d
WINDOW w AS (ORDER BY CAST(day AS date)
             RANGE BETWEEN INTERVAL '6 days' PRECEDING AND CURRENT ROW)
"""

HEALTH_LATEST = """
CREATE VIEW health_latest AS
SELECT h.check_name AS check_name, h.ts AS ts, h.status AS status, h.value AS value,
       h.message AS message
  FROM health_checks AS h
 WHERE h.id IN (SELECT MAX(id) FROM health_checks GROUP BY check_name)
"""

DASHBOARD_SUMMARY_SQLITE = """CREATE VIEW dashboard_summary AS
WITH latest AS (
  SELECT "timestamp" AS ts, CAST(total_balance_usdt AS REAL) AS total,
         CAST(profit_saved_balance AS REAL) AS saved
    FROM portfolio_history
   ORDER BY "timestamp" DESC, id DESC
   LIMIT 1
),
bounds AS (
  SELECT ts, strftime('%Y-%m-%d %H:%M:%S', ts, '-1 day') || substr(ts, 20) AS since FROM latest
)
SELECT (SELECT ts FROM latest) AS as_of,
       (SELECT total FROM latest) AS total_equity,
       (SELECT total FROM latest)
         - (SELECT CAST(h.total_balance_usdt AS REAL)
              FROM portfolio_history AS h, bounds AS b
             WHERE h."timestamp" <= b.since
             ORDER BY h."timestamp" DESC, h.id DESC
             LIMIT 1) AS equity_change_24h,
       (SELECT COALESCE(SUM(CAST(t.pnl AS REAL)), 0)
          FROM trades AS t, bounds AS b
         WHERE t."timestamp" > b.since AND t.pnl IS NOT NULL AND (t.position_effect IS NULL OR t.position_effect = 'close')) AS realised_pnl_24h,
       COALESCE((SELECT saved FROM latest),
                (SELECT CAST(SUM(amount) AS REAL) FROM transfers
                  WHERE kind = 'profit_save' AND status = 'success')) AS profit_saved,
       (SELECT COUNT(*) FROM controls WHERE scope = 'global' AND halted) AS global_halted,
       (SELECT COUNT(*) FROM controls WHERE scope <> 'global' AND halted) AS halted_bots,
       (SELECT COUNT(*) FROM health_latest) AS health_checks,
       (SELECT COUNT(*) FROM health_latest WHERE lower(status) IN ('warn', 'bad')) AS health_problems
"""

DASHBOARD_SUMMARY_POSTGRESQL = """CREATE VIEW dashboard_summary AS
WITH latest AS (
  SELECT "timestamp" AS ts, CAST(total_balance_usdt AS double precision) AS total,
         CAST(profit_saved_balance AS double precision) AS saved
    FROM portfolio_history
   ORDER BY "timestamp" DESC, id DESC
   LIMIT 1
),
bounds AS (
  SELECT ts, ts - INTERVAL '1 day' AS since FROM latest
)
SELECT (SELECT ts FROM latest) AS as_of,
       (SELECT total FROM latest) AS total_equity,
       (SELECT total FROM latest)
         - (SELECT CAST(h.total_balance_usdt AS double precision)
              FROM portfolio_history AS h, bounds AS b
             WHERE h."timestamp" <= b.since
             ORDER BY h."timestamp" DESC, h.id DESC
             LIMIT 1) AS equity_change_24h,
       (SELECT COALESCE(SUM(CAST(t.pnl AS double precision)), 0)
          FROM trades AS t, bounds AS b
         WHERE t."timestamp" > b.since AND t.pnl IS NOT NULL AND (t.position_effect IS NULL OR t.position_effect = 'close')) AS realised_pnl_24h,
       COALESCE((SELECT saved FROM latest),
                (SELECT CAST(SUM(amount) AS double precision) FROM transfers
                  WHERE kind = 'profit_save' AND status = 'success')) AS profit_saved,
       (SELECT COUNT(*) FROM controls WHERE scope = 'global' AND halted) AS global_halted,
       (SELECT COUNT(*) FROM controls WHERE scope <> 'global' AND halted) AS halted_bots,
       (SELECT COUNT(*) FROM health_latest) AS health_checks,
       (SELECT COUNT(*) FROM health_latest WHERE lower(status) IN ('warn', 'bad')) AS health_problems
"""

# (name, SQLite, PostgreSQL) in creation order: later views read earlier ones.
VIEWS: tuple[tuple[str, str, str], ...] = (
    ("trade_pnl_daily", TRADE_PNL_DAILY_SQLITE, TRADE_PNL_DAILY_POSTGRESQL),
    ("performance", PERFORMANCE_SQLITE, PERFORMANCE_POSTGRESQL),
    ("portfolio_daily", PORTFOLIO_DAILY_SQLITE, PORTFOLIO_DAILY_POSTGRESQL),
    ("equity_daily", EQUITY_DAILY_SQLITE, EQUITY_DAILY_POSTGRESQL),
    ("sentiment_daily", SENTIMENT_DAILY_SQLITE, SENTIMENT_DAILY_POSTGRESQL),
    ("health_latest", HEALTH_LATEST, HEALTH_LATEST),
    ("dashboard_summary", DASHBOARD_SUMMARY_SQLITE, DASHBOARD_SUMMARY_POSTGRESQL),
)


def upgrade() -> None:
    op.create_index("ix_decisions_created_at", "decisions", ["created_at"])
    postgresql = op.get_context().dialect.name == "postgresql"
    for _name, sqlite_sql, postgresql_sql in VIEWS:
        op.execute(postgresql_sql if postgresql else sqlite_sql)


def downgrade() -> None:
    for name, _sqlite_sql, _postgresql_sql in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_index("ix_decisions_created_at", table_name="decisions")
