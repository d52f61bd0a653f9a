"""``config.toml`` rendered from the models: the models are the one place defaults live.

:func:`render` writes every section with the models' default values, in the models' field order,
under the comments of :data:`DOCS` (documentation only: which key a comment sits above). The
shipped ``config.toml`` is its output (``python scripts/write_config.py`` rewrites it; a test
fails when they differ), so a changed default is changed in the model and nowhere else.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from jiritsu.config.settings import Settings

_BARE = re.compile(r"^[A-Za-z0-9_]+$")
_INLINE_MAX_FIELDS = 3  # a model of at most this many scalars is written as an inline table


def _key(name: str) -> str:
    return name if _BARE.fullmatch(name) else json.dumps(name)


def _relative(value: str, base: Path) -> str:
    """A default that is a path under the shipped file's directory, as written there."""
    path = Path(value)
    if path.is_absolute() and path.is_relative_to(base):
        return str(path.relative_to(base))
    return value


def _scalar(value: Any, base: Path) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Path):
        return json.dumps(_relative(str(value), base))
    if isinstance(value, str):
        return json.dumps(_relative(value, base))
    if isinstance(value, BaseModel):
        return _inline(_fields(value), base)
    if isinstance(value, dict):
        return _inline(value, base)
    if isinstance(value, list):
        items = [_scalar(v, base) for v in value]
        flat = "[" + ", ".join(items) + "]"
        if len(flat) <= 80:
            return flat
        return "[\n" + "".join(f"  {item},\n" for item in items) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _inline(table: dict[str, Any], base: Path) -> str:
    return "{ " + ", ".join(f"{_key(k)} = {_scalar(v, base)}" for k, v in table.items()) + " }"


def _fields(model: BaseModel) -> dict[str, Any]:
    """The model's values in field order, then its extra keys (a strategy's own parameters)."""
    values = {name: getattr(model, name) for name in type(model).model_fields}
    values.update(model.model_extra or {})
    return values


def _is_inline(value: Any) -> bool:
    if isinstance(value, BaseModel):
        values = _fields(value)
        return len(values) <= _INLINE_MAX_FIELDS and not any(
            isinstance(v, (BaseModel, dict, list)) for v in values.values()
        )
    if isinstance(value, dict):  # a table of models (param_ranges) gets a line per entry
        return not any(isinstance(v, BaseModel) for v in value.values())
    return not isinstance(value, list) or not any(isinstance(v, BaseModel) for v in value)


def _docs(path: str) -> list[str]:
    text = DOCS.get(path)
    return [] if text is None else text.split("\n")


def _table(out: list[str], name: str, path: str, values: dict[str, Any], base: Path) -> None:
    """Scalars (and inline tables) first, then each sub-table (TOML requires that order)."""
    later: list[tuple[str, Any]] = []
    for key, value in values.items():
        if value is None:
            continue  # TOML has no null: "not set" is written as nothing (or a comment)
        if not _is_inline(value):
            later.append((key, value))
            continue
        out.extend(_docs(f"{path}.{key}"))
        out.append(f"{_key(key)} = {_scalar(value, base)}")
    for key, value in later:
        sub = f"{name}.{key}" if name else key
        subpath = f"{path}.{key}" if path else key
        if isinstance(value, list):
            for i, item in enumerate(value):
                out.extend(_docs(f"[{subpath}[{i}]]"))
                out.append(f"[[{sub}]]")
                _table(out, sub, f"{subpath}[{i}]", _fields(item), base)
            continue
        out.extend(_docs(f"[{subpath}]"))
        out.append(f"[{sub}]")
        _table(out, sub, subpath, _fields(value) if isinstance(value, BaseModel) else value, base)


def render(settings: Settings | None = None, base: Path | None = None) -> str:
    """The configuration file for ``settings`` (default: the built-in defaults); paths under
    ``base`` (default: the shipped file's directory) are written relative to it."""
    from jiritsu.resources import default_config_path

    base = base or default_config_path().parent
    if settings is None:  # every section validated here, so its paths resolve against base
        sections: dict[str, Any] = {n: {} for n in Settings.model_fields if n != "sub_bots"}
        settings = Settings.model_validate(sections, context={"config_dir": base})
    out: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, list):
            _table(out, "", "", {name: value}, base)
            continue
        out.extend(_docs(f"[{name}]"))
        out.append(f"[{name}]")
        _table(out, name, name, _fields(value), base)
    out.extend(_docs("<end>"))
    return "\n".join(out).rstrip("\n") + "\n"


# The comments written above each key ("@section.key", "@sub_bots[0].key") or table
# ("@[section]"), blank lines included: every line after an "@" line, up to the next one.
# Documentation only: no value here is a default.
_DOCS_TEXT = """
@[general]
# Jiritsu configuration: the complete default, ready for paper trading on SQLite.
#
# Every key is listed with its default value, so this file doubles as the reference.
# Check a configuration with `jiritsu config check`; see the effective values, and where each
# one came from, with `jiritsu config show`.
#
# Where values come from (later wins):
#   1. the defaults built into Jiritsu (this file is written from them)
#   2. this file (or the one given by --config / JIRITSU_CONFIG; else ./config.toml)
#   3. the tuner's overlay <data_dir>/tuned.toml (written by `jiritsu tune`, never this file)
#   4. environment variables JIRITSU_<SECTION>__<KEY>, e.g.
#        JIRITSU_GENERAL__ENVIRONMENT=testnet
#        JIRITSU_MASTER_BOT__MARKET_PHASE__INDICATOR=ADX
#        JIRITSU_SUB_BOTS__0__ENABLED=false        (a sub-bot by index ...)
#        JIRITSU_SUB_BOTS__SUBBOT_C__BASE_LOT=120  (... or by name)
#      Values are read as JSON when they parse (numbers, true/false, lists), else as text.
#
# SECRETS NEVER GO IN THIS FILE. Keys ending in `_env` hold the NAME of an environment variable;
# put the value in the environment or in a .env file (next to this file or in the current
# directory; real environment variables win). Secret values are masked in every log, event,
# notification and in `jiritsu config show`.
#
# Conventions: keys ending in `_pct` or `_rate` are fractions (0.05 = 5 %) unless the comment
# says "percent"; money amounts are USDT; relative paths count from this file's directory; all
# times are stored in UTC.

@general.environment
# paper | testnet | demo | production. Only "production" trades real money. Outside "paper"
# every external URL must use https (loopback addresses excepted).
@general.timezone
# Time zone for display only (an IANA name such as "Europe/Berlin"); everything is stored in UTC.
@general.data_dir
# State directory: SQLite database, tuned.toml overlay, logs, backups.
@general.log_level
# DEBUG | INFO | WARNING | ERROR | CRITICAL
@[database]

@database.db_type
# sqlite | postgresql. Must agree with the URL's scheme.
@database.db_url
# SQLAlchemy URL. Empty: sqlite:///<data_dir>/jiritsu.db. postgresql://... uses psycopg.
# A password embedded here is treated as a secret; prefer db_url_env for PostgreSQL.
@database.db_url_env
# Name of an environment variable holding the URL instead (e.g. "JIRITSU_DB_URL").
# Set db_url or db_url_env, not both.
@database.reconnect_attempts
# Reconnection: bounded retries with exponential back-off from the base delay.
@[api_keys]

@api_keys.bybit_master_key_env
# NAMES of environment variables, never the keys themselves.
@api_keys.gemini_keys_env
# One variable, comma-separated keys: used in turn when one hits its quota.
@api_keys.discord_webhook_env
# The whole webhook URL is secret (its token is part of it). Unset: alerts go to the log only.
@[exchange]
# Per-sub-bot keys: [[sub_bots]] api_key_env / api_secret_env.
# Dashboard password hashes: [[dashboard.users]] password_hash_env.

@exchange.maker_fee
# Fees as fractions of the notional (Bybit VIP0 futures: maker 0.02 %, taker 0.055 %).
@exchange.slippage_bps
# Paper/backtest fills: fixed slippage in basis points, plus this factor x ATR/price.
@exchange.leverage
# Leverage for linear (futures) bots, 1-100. Spot bots never use leverage.
@exchange.base_url
# Empty: Bybit's official host for the environment. Tests point it at a loopback fake.
@exchange.ca_file
# Empty: the system's CA store. A PEM bundle to trust for the exchange's TLS certificate.
@[gemini]

@gemini.daily_request_budget
# Hard daily budgets (UTC day). When spent, no Gemini call is made: gemini/hybrid decisions
# are recorded as skipped (no trade) until 00:00 UTC.
@gemini.base_url
# Empty: Google's official endpoint.
@gemini.ca_file
# Empty: the system's CA store. A PEM bundle to trust for the Gemini endpoint's TLS certificate.
@[strategies]

# ----------------------------------------------------------------------------- strategies
# Your own strategies: every *.py file in these directories (relative to this file) is searched
# for Strategy subclasses (README "Write your own strategy"; examples/strategies/ has one to
# copy). Installed packages can add some through the `jiritsu.strategies` entry-point group.
# A missing directory is fine.
@[sub_bots[0]]

# ----------------------------------------------------------------------------- sub-bots
# Each sub-bot trades one symbol in its own Bybit sub-account.
#   symbol        "BTCUSDT" or "BTC/USDT" (stored as BTCUSDT)
#   category      linear (USDT perpetual) | spot
#   timeframe     Bybit interval: 1 3 5 15 30 60 120 240 360 720 D W M
#   sizing        risk: risk `risk_per_trade` of the bot's capital per trade at the stop
#                 (notional = risk_per_trade x available / (sl_ratio x ATR / price)) |
#                 lot: a fixed `base_lot` of USDT. Dynamic sizing multiplies either.
#   risk_per_trade  fraction of the bot's capital lost when the stop is hit (risk sizing)
#   base_lot      order size in USDT before dynamic sizing (lot sizing)
#   max_capital_pct  at most this fraction of the available balance goes into one entry
#                 (the rest is headroom for fees and slippage)
#   advisor       rules: indicator rules only | gemini: Gemini decides |
#                 hybrid: rules propose, Gemini confirms (rules alone without a key)
#   allow_short   open short positions (linear only; must be false for spot)
#   max_holding_minutes  close a position held longer than this (omit: no limit)
#   member_id     Bybit sub-account UID, for transfers (omit until known)
#   api_key_env / api_secret_env  NAMES of the variables with this sub-account's keys
#
# [sub_bots.dynamic_sizing]  lot = base_lot x multiplier for the current volatility regime,
#   volatility = ATR(atr_period) / price: below `low` -> low, below `medium` -> medium, else high.
# [sub_bots.split_entry]  split an entry into `count` slices, by time (every interval_seconds)
#   or by price (each price_step_pct further); slices not filled after timeout_seconds lapse.
# [sub_bots.strategy_params]
#   rule          the strategy (`jiritsu strategies list` shows them with their parameters):
#                 ema_cross: EMA(fast_period) crossing EMA(slow_period)
#                 rsi_reversion: RSI(rsi_period) below rsi_lower -> buy, above rsi_upper -> sell
#                 donchian_breakout: close beyond the channel_period channel while ADX >= adx_min
#                 or one of your own (see [strategies] and README "Write your own strategy")
#   the strategy's own parameters sit beside rule (fast_period, rsi_lower, ...); the keys
#   below are the kernel's and exist for every strategy
#   tp_ratio / sl_ratio  take-profit / stop-loss distance in multiples of ATR(atr_period)
#   min_confidence       signals (or advisor answers) below this confidence are ignored

# SubBot-A: stable. Spot, long only, hourly candles, small lot, wide stops, slow EMA cross.
@sub_bots[0].api_key_env
# max_holding_minutes = 1440
# member_id = 100000001
@[sub_bots[0].dynamic_sizing]

@[sub_bots[0].split_entry]

@[sub_bots[0].strategy_params]

@[sub_bots[1]]

# SubBot-B: balanced. USDT perpetual, long only, 15-minute candles, split entries.
@sub_bots[1].api_key_env
# max_holding_minutes = 720
# member_id = 100000002
@[sub_bots[1].dynamic_sizing]

@[sub_bots[1].split_entry]

@[sub_bots[1].strategy_params]

@[sub_bots[2]]

# SubBot-C: aggressive. USDT perpetual, long and short, 5-minute candles, RSI mean reversion,
# tight stops, larger lot, Gemini confirms.
@sub_bots[2].api_key_env
# member_id = 100000003
@[sub_bots[2].dynamic_sizing]

@[sub_bots[2].split_entry]

@[sub_bots[2].strategy_params]

@[paper]

@paper.quote_coin
# Paper trading: simulated balances in quote_coin, one per sub-bot (names must exist), plus
# the main account that receives saved profit.
@paper.price_source
# Prices for paper fills: "replay" the stored candles (offline, the default) or "bybit" to poll
# Bybit's public klines live (no key needed; paper money on real prices).
@[master_bot]

# ----------------------------------------------------------------------------- master layer
@master_bot.index_symbol
# Symbol whose trend decides the market phase.
@master_bot.profit_save_day
# Weekly profit saving: on this day (monday..sunday) and UTC hour (0-23), move
# profit_save_rate of each bot's profit since the last saving to the main account.
@master_bot.rebalance_tolerance_pct
# Rebalance only bots whose share deviates by more than this fraction of total capital,
# and never move less than min_transfer_usdt.
@[master_bot.market_phase]
# UID of the main (funding) account for transfers; omit in paper mode.
# main_member_id = 100000000

@master_bot.market_phase.indicator
# EMA_Cross: spread = (EMA(short) - EMA(long)) / EMA(long); |spread| < weak_pct -> ranging,
#   < strong_pct -> weak bull/bear, else strong bull/bear.
# ADX: ADX(long_period) < adx_trend -> ranging, < adx_strong -> weak, else strong; the sign
#   of +DI - -DI (period short_period) decides bull or bear.
@[master_bot.market_phase.thresholds]

@master_bot.market_phase.thresholds.weak_pct
# 0 < weak_pct < strong_pct (fractions of price); 0 < adx_trend < adx_strong < 100.
@[master_bot.allocations]

@master_bot.allocations.strong_bull
# Share of total capital per sub-bot in each market phase. Names must be existing sub-bots,
# shares in [0, 1], each phase adding up to exactly 1. A bot left out gets 0.
@[risk]

# ----------------------------------------------------------------------------- safety
@risk.max_drawdown_pct
# Circuit breakers; each halts trading until `jiritsu resume` or its cool-down below passes.
# Drawdown of total equity from its peak, as a fraction.
@risk.daily_loss_pct
# Loss since 00:00 UTC, as a fraction of the day's starting equity.
@risk.crash_move_pct
# Crash: the index price moves by crash_move_pct within crash_window_minutes.
@risk.max_consecutive_losses
# Per bot: this many losing trades in a row halts the bot.
@risk.exchange_failure_limit
# Per bot: this many exchange failures in a row (failed steps, refused orders) halts the bot.
@risk.cooldown_minutes
# Drawdown and daily loss: 0 means only `jiritsu resume` lifts the halt (a loss that size wants
# a human look); otherwise they lift themselves after this long.
@risk.crash_cooldown_minutes
# A crash halt lifts itself after this long (0: until `jiritsu resume`). A move beyond
# crash_move_pct is a burst of volatility, up or down; with no cool-down the first one (2018-01-11
# in 2018, a rally on 2019-04-02 in 2019) stopped the whole system for the rest of the year.
@risk.loss_streak_cooldown_minutes
# The loss-streak breaker pauses the bot for this long (0: until `jiritsu resume`). A streak of
# losses is usually the market, not a fault: a day off, then the bot tries again.
@[news_sentiment]

# ----------------------------------------------------------------------------- news
@news_sentiment.keywords
# Items mentioning none of these (case-insensitive) are ignored.
@news_sentiment.sources
# RSS/Atom feed URLs (https outside paper mode, loopback excepted) or local file paths
# (relative to this file). examples/news/sample_feed.xml is an offline demo feed whose items are
# dated 2025, so it never moves the live average; remove it when you configure real feeds.
@news_sentiment.moving_average_period_hours
# The advisors use the moving average of item scores over this window.
@news_sentiment.scorer
# lexicon: offline word list (works without keys) | gemini: Gemini scores each item.
@news_sentiment.max_bytes
# Limits per fetch: response size in bytes and text per item sent to the scorer.
@news_sentiment.use_page_text
# Also fetch each item's linked page (slower; more text to score).
@[optimizer]

# ----------------------------------------------------------------------------- tuning
@optimizer.schedule
# Five-field cron, UTC: minute hour day-of-month month day-of-week. Default: 01:00 on the 1st.
@optimizer.target_metric
# sharpe_ratio | profit | max_drawdown (lower is better)
@optimizer.walk_forward_folds
# Walk-forward: the period is split into this many train/test folds.
@optimizer.min_improvement
# Adopt new parameters only if they beat the current ones by this fraction out of sample,
# with at least min_trades trades.
@optimizer.workers
# Parallel backtests: 0 = all cores. scheduler: empty = local processes, or a Dask address
# such as "tcp://10.0.0.5:8786".
@[optimizer.param_ranges]

@optimizer.param_ranges.SubBot-A.strategy_params.sl_ratio
# "BOTNAME.section.key" = { start, end, step }: inclusive grid over a numeric parameter of a
# sub-bot (integer parameters take whole numbers). Each bot's grid is the product of its
# ranges: 5 x 3 = 15 backtests for A, 7 x 3 = 21 for B, 5 x 3 = 15 for C (small enough for a
# simulated year with monthly tuning). Only keys every strategy has: switching a bot's rule
# keeps these ranges valid.
@[notifications]

# ----------------------------------------------------------------------------- operations
@notifications.enabled
# Discord (webhook from api_keys.discord_webhook_env); without a webhook, the log only.
@notifications.min_level
# DEBUG | INFO | WARNING | ERROR | CRITICAL: alerts below this level are not sent.
@notifications.daily_report_hour
# UTC hour of the daily report (0-23).
@notifications.mention_on_critical
# Prepended to CRITICAL alerts, e.g. "@here" or "<@&ROLE_ID>". Empty: no mention.
@[health]

@health.cpu_pct
# Resource alarms, in percent (0-100).
@health.heartbeat_max_age_seconds
# Staleness alarms.
@[dashboard]

@dashboard.host
# The dashboard reads the database; its one write path is the halt/resume/flatten buttons.
# Keep it on loopback unless a reverse proxy terminates TLS.
@dashboard.allowed_ips
# Client addresses or networks allowed in (e.g. "10.0.0.0/8").
@dashboard.mirror_path
# SQLite copy the dashboard reads when the database is PostgreSQL.
# Empty: <data_dir>/dashboard.db.
@dashboard.controls_enabled
# The halt/resume/flatten buttons (POST /-/jiritsu/control); false removes the route.
@[dashboard.users[0]]

@dashboard.users[0].password_hash_env
# NAME of the variable holding the password hash.
@dashboard.users[0].can_control
# May press the control buttons. Unset: yes for the first user, no for the others.
@[backup]

@backup.dir
# Empty: <data_dir>/backups.
@<end>

"""


def _parse_docs(text: str) -> dict[str, str]:
    docs: dict[str, list[str]] = {}
    lines: list[str] = []
    for line in text.split("\n")[1:-1]:
        if line.startswith("@"):
            lines = docs.setdefault(line[1:], [])
        else:
            lines.append(line)
    return {key: "\n".join(lines) for key, lines in docs.items()}


DOCS = _parse_docs(_DOCS_TEXT)
