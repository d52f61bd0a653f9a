"""Seed a database with synthetic activity (a year by default) for tests and the benchmark.

The dashboard's speed target is stated for "a database holding a year of activity", so this
writes one, through the models' types (money as Decimal, aware UTC times), on SQLite or
PostgreSQL: hourly portfolio snapshots and market phases for three bots, a few thousand trades
with their orders and fills, an advisor decision every few minutes (100k+ rows), system
events, news sentiment, health checks, transfers, backtests with hourly equity curves and
monthly tuning runs. Prices come from :func:`jiritsu.market.synth.synth_candles`; everything is
deterministic for a given ``seed`` and ``end``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.clock import wall_now

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

DEFAULT_BOTS: tuple[str, ...] = ("SubBot-A", "SubBot-B", "SubBot-C")
START_CAPITAL = {0: Decimal(3000), 1: Decimal(4000), 2: Decimal(3000)}
PROVIDERS = ("rules", "gemini", "hybrid")
SYMBOL = "BTCUSDT"
_CHUNK = 5000
_HOUR = timedelta(hours=1)


@dataclass
class SeedReport:
    """Rows written per table, and the period covered."""

    start: datetime
    end: datetime
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _d(value: float, places: int = 8) -> Decimal:
    """A float as an exact Decimal with ``places`` decimals (Money refuses floats)."""
    return Decimal(f"{value:.{places}f}")


def _chunks(rows: Iterable[dict[str, Any]], size: int = _CHUNK) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class _Writer:
    def __init__(self, conn: Connection, report: SeedReport) -> None:
        self.conn = conn
        self.report = report

    def insert(self, model: Any, rows: Iterable[dict[str, Any]]) -> None:
        table = model.__table__
        for batch in _chunks(rows):
            self.conn.execute(table.insert(), batch)
            self.report.rows[table.name] = self.report.rows.get(table.name, 0) + len(batch)

    def insert_returning_ids(self, model: Any, rows: list[dict[str, Any]]) -> list[int]:
        """Insert one by one where later rows need the generated ids (few rows only)."""
        table = model.__table__
        ids: list[int] = []
        for row in rows:
            key = self.conn.execute(table.insert().values(**row)).inserted_primary_key
            assert key is not None  # an INSERT always has one
            ids.append(int(key[0]))
        self.report.rows[table.name] = self.report.rows.get(table.name, 0) + len(rows)
        return ids


def _phase(deviation: float) -> str:
    if deviation > 0.03:
        return "strong_bull"
    if deviation > 0.01:
        return "weak_bull"
    if deviation < -0.03:
        return "strong_bear"
    if deviation < -0.01:
        return "weak_bear"
    return "ranging"


def _prices(start: datetime, hours: int, seed: int) -> list[float]:
    from jiritsu.market.synth import synth_candles

    days = max(1, math.ceil(hours / 24))
    frame = synth_candles(days=days, seed=seed, start=start, interval_minutes=60)
    return [float(x) for x in frame["close"].to_list()[:hours]]


def seed_database(
    url: str,
    *,
    days: int = 365,
    end: datetime | None = None,
    bots: Sequence[str] = DEFAULT_BOTS,
    decision_minutes: int = 10,
    health_minutes: int = 30,
    seed: int = 7,
    migrate: bool = True,
) -> SeedReport:
    """Write ``days`` of synthetic activity ending at ``end`` (default: this hour) to ``url``.

    ``migrate`` upgrades the schema first. The tables should be empty (ids are generated).
    """
    from jiritsu.db import migrate as migrations
    from jiritsu.db.engine import make_engine

    if days < 1:
        raise ValueError("days must be at least 1")
    end = (end or wall_now()).astimezone(timezone.utc)
    end = end.replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    if migrate:
        migrations.upgrade(url)
    report = SeedReport(start=start, end=end)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _Seeder(_Writer(conn, report), start, days * 24, list(bots), seed).run(
                decision_minutes, health_minutes
            )
            if conn.dialect.name == "postgresql":
                _fix_sequences(conn, report.rows)
    finally:
        engine.dispose()
    return report


def _fix_sequences(conn: Connection, tables: Iterable[str]) -> None:
    """Explicit ids do not move PostgreSQL's sequences: move them past the seeded rows."""
    import sqlalchemy as sa

    for table in tables:
        conn.execute(
            sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}"  # model table names
            )
        )


class _Seeder:
    def __init__(self, w: _Writer, start: datetime, hours: int, bots: list[str], seed: int):
        self.w = w
        self.start = start
        self.hours = hours
        self.bots = bots
        self.rng = random.Random(seed)
        self.prices = _prices(start, hours, seed)
        self.times = [start + _HOUR * (i + 1) for i in range(hours)]
        self.end = self.times[-1]

    def run(self, decision_minutes: int, health_minutes: int) -> None:
        balances, saved, phases = self._trades_and_balances()
        self._snapshots(balances, saved, phases)
        self._decisions(decision_minutes)
        self._events()
        self._sentiment()
        self._health(health_minutes)
        self._operations()
        self._backtests()

    # --- trading -------------------------------------------------------------------------

    def _trades_and_balances(self) -> tuple[list[list[float]], list[float], list[str]]:
        from jiritsu.db.models import Execution, Order, Trade

        rng = self.rng
        trades: list[dict[str, Any]] = []
        orders: list[dict[str, Any]] = []
        fills: list[dict[str, Any]] = []
        balances: list[list[float]] = []
        realised = [0.0] * len(self.bots)
        position: list[tuple[int, float, float] | None] = [None] * len(self.bots)
        n = 0

        def record(b: int, i: int, side: str, qty: float, pnl: float | None) -> None:
            nonlocal n
            n += 1
            when = self.times[i] - timedelta(minutes=rng.randint(1, 50))
            price = self.prices[i]
            fee = price * qty * 0.001
            oid, cid = f"ex-{n:08d}", f"jr-{n:08d}"
            common = {"bot": self.bots[b], "symbol": SYMBOL, "side": side, "environment": "paper"}
            orders.append({
                **common, "id": n, "client_order_id": cid, "exchange_order_id": oid,
                "category": "spot", "order_type": "Market", "qty": _d(qty),
                "filled_qty": _d(qty), "avg_price": _d(price, 2), "fee": _d(fee),
                "status": "filled", "exchange_status": "Filled", "reduce_only": False,
                "created_at": when, "updated_at": when, "sent_at": when,
            })  # fmt: skip
            fills.append({
                **common, "exec_id": f"fill-{n:08d}", "order_id": oid, "client_order_id": cid,
                "order_row_id": n, "price": _d(price, 2), "qty": _d(qty), "fee": _d(fee),
                "fee_coin": "USDT", "is_maker": False, "exec_type": "Trade", "exec_time": when,
                "recorded_at": when,
            })  # fmt: skip
            trades.append({
                "timestamp": when, "sub_bot_name": self.bots[b], "symbol": SYMBOL,
                "order_id": oid, "client_order_id": cid, "order_row_id": n,
                "exec_id": f"fill-{n:08d}", "side": side, "price": _d(price, 2),
                "quantity": _d(qty), "fee": _d(fee), "fee_coin": "USDT",
                "pnl": None if pnl is None else _d(pnl), "is_maker": False,
                "position_effect": "open" if pnl is None else "close",
                "entry_reason": rng.choice(("ema_cross", "breakout", "mean_reversion")),
                "environment": "paper", "created_at": when, "updated_at": when,
            })  # fmt: skip

        for i, price in enumerate(self.prices):
            row = []
            for b in range(len(self.bots)):
                capital = float(START_CAPITAL.get(b, Decimal(3000)))
                pos = position[b]
                if pos is None and rng.random() < 1 / 14:
                    qty = round(capital * 0.3 / price, 6)
                    position[b] = pos = (i, price, qty)
                    record(b, i, "Buy", qty, None)
                elif pos is not None and (i - pos[0] >= rng.randint(2, 30)):
                    _, entry, qty = pos
                    pnl = (price - entry) * qty - price * qty * 0.001
                    realised[b] += pnl
                    position[b] = pos = None
                    record(b, i, "Sell", qty, pnl)
                unrealised = (price - pos[1]) * pos[2] if pos else 0.0
                row.append(capital + realised[b] + unrealised)
            balances.append(row)

        self.w.insert(Order, orders)
        self.w.insert(Execution, fills)
        self.w.insert(Trade, trades)

        saved, total_saved = [], 0.0
        for i in range(len(self.prices)):
            if i and i % (24 * 7) == 0:
                total_saved += max(0.0, sum(balances[i]) - sum(balances[i - 24 * 7])) * 0.1
            saved.append(total_saved)
        phases = []
        for i, price in enumerate(self.prices):
            window = self.prices[max(0, i - 24 * 7) : i + 1]
            phases.append(_phase(price / (sum(window) / len(window)) - 1))
        return balances, saved, phases

    def _snapshots(
        self, balances: list[list[float]], saved: list[float], phases: list[str]
    ) -> None:
        from jiritsu.db.models import MarketPhase, PortfolioBotBalance, PortfolioSnapshot

        snapshots, per_bot, readings = [], [], []
        for i, when in enumerate(self.times):
            sid = i + 1
            snapshots.append({
                "id": sid, "timestamp": when, "total_balance_usdt": _d(sum(balances[i]), 2),
                "profit_saved_balance": _d(saved[i], 2), "phase": phases[i],
                "environment": "paper",
            })  # fmt: skip
            for b, bot in enumerate(self.bots):
                bal = _d(balances[i][b], 2)
                per_bot.append(
                    {"snapshot_id": sid, "bot_name": bot, "balance": bal, "available_balance": bal}
                )
            window = self.prices[max(0, i - 24 * 7) : i + 1]
            readings.append({
                "ts": when, "symbol": SYMBOL, "phase": phases[i], "indicator": "SMA168",
                "value": self.prices[i] / (sum(window) / len(window)) - 1,
                "details": {"price": self.prices[i]},
            })  # fmt: skip
        self.w.insert(PortfolioSnapshot, snapshots)
        self.w.insert(PortfolioBotBalance, per_bot)
        self.w.insert(MarketPhase, readings)

    def _decisions(self, every_minutes: int) -> None:
        from jiritsu.db.models import Decision

        rng = self.rng
        step = timedelta(minutes=every_minutes)
        reasons = {
            "BUY": ("fast EMA crossed above slow EMA", "breakout above the 20-bar high"),
            "SELL": ("take profit reached", "trend weakening, RSI above 70"),
            "HOLD": ("no signal", "waiting for confirmation", "spread too wide"),
        }

        def rows() -> Iterator[dict[str, Any]]:
            t = self.start + step
            while t <= self.end:
                i = min(int((t - self.start) / _HOUR), len(self.prices) - 1)
                for b, bot in enumerate(self.bots):
                    provider = PROVIDERS[b % len(PROVIDERS)]
                    roll = rng.random()
                    action = "BUY" if roll < 0.08 else "SELL" if roll < 0.16 else "HOLD"
                    failed = provider != "rules" and rng.random() < 0.01
                    tokens = rng.randint(300, 900) if provider != "rules" else None
                    yield {
                        "bot": bot, "created_at": t, "bar_ts": self.times[i], "symbol": SYMBOL,
                        "provider": provider,
                        "model": None if provider == "rules" else "gemini-2.5-flash",
                        "action": None if failed else action,
                        "outcome": "error" if failed else "ok",
                        "confidence": None if failed else round(rng.uniform(0.4, 0.95), 3),
                        "reason": None if failed else rng.choice(reasons[action]),
                        "latency_ms": rng.randint(2, 40) if provider == "rules"
                        else rng.randint(400, 3000),
                        "prompt_tokens": tokens, "output_tokens": 40 if tokens else None,
                        "total_tokens": tokens + 40 if tokens else None,
                        "error": "timeout after 20 s" if failed else None,
                        "input_summary": {"close": self.prices[i]},
                    }  # fmt: skip
                t += step

        self.w.insert(Decision, rows())

    def _events(self) -> None:
        from jiritsu.db.models import SystemEvent

        rng = self.rng

        def rows() -> Iterator[dict[str, Any]]:
            for i, when in enumerate(self.times):
                yield {
                    "timestamp": when - timedelta(minutes=59), "level": "INFO",
                    "event_type": "RECONCILE", "message": "reconciled orders and positions",
                    "details": {"checked": len(self.bots)}, "bot": None,
                }  # fmt: skip
                yield {
                    "timestamp": when - timedelta(minutes=1), "level": "INFO",
                    "event_type": "ORDER", "message": f"trade tick done at {self.prices[i]:.2f}",
                    "details": None, "bot": rng.choice(self.bots),
                }  # fmt: skip
                roll = rng.random()
                if roll < 0.12:
                    yield {
                        "timestamp": when - timedelta(minutes=30), "level": "WARNING",
                        "event_type": "EXCHANGE_ERROR",
                        "message": "rate limited by the exchange, retried", "details": None,
                        "bot": rng.choice(self.bots),
                    }  # fmt: skip
                elif roll < 0.14:
                    yield {
                        "timestamp": when - timedelta(minutes=20), "level": "ERROR",
                        "event_type": "ADVISOR_ERROR", "message": "advisor timed out",
                        "details": {"after_s": 20}, "bot": rng.choice(self.bots),
                    }  # fmt: skip
                if i % (24 * 7) == 0:
                    yield {
                        "timestamp": when, "level": "INFO", "event_type": "PROFIT_SAVE",
                        "message": "weekly profit saved", "details": None, "bot": None,
                    }  # fmt: skip
                if i % 24 == 12:
                    yield {
                        "timestamp": when, "level": "INFO", "event_type": "REBALANCE",
                        "message": "rebalanced by market phase", "details": None, "bot": None,
                    }  # fmt: skip
                if i % (24 * 60) == 100:
                    yield {
                        "timestamp": when, "level": "CRITICAL", "event_type": "CIRCUIT_BREAKER",
                        "message": "drawdown limit hit: halted", "details": None, "bot": None,
                    }  # fmt: skip

        self.w.insert(SystemEvent, rows())

    def _sentiment(self) -> None:
        from jiritsu.db.models import SentimentScore

        rng = self.rng
        sources = ("coindesk", "cointelegraph", "decrypt", "theblock")
        words = ("ETF inflows", "exchange hack", "rate decision", "whale moves", "new highs")

        def rows() -> Iterator[dict[str, Any]]:
            n, mood = 0, 0.0
            for when in self.times:
                mood = max(-0.8, min(0.8, mood + rng.gauss(0, 0.03)))
                for _ in range(rng.randint(0, 2)):
                    n += 1
                    topic = rng.choice(words)
                    yield {
                        "timestamp": when - timedelta(minutes=rng.randint(0, 59)),
                        "fetched_at": when, "source": rng.choice(sources),
                        "url": f"https://news.example/{n}", "guid": f"g{n}",
                        "item_key": f"seed-{n:08d}", "keyword": rng.choice(("BTC", "crypto")),
                        "score": round(max(-1.0, min(1.0, rng.gauss(mood, 0.35))), 3),
                        "headline": f"Bitcoin: {topic} ({n})", "scorer": "gemini",
                        "model": "gemini-2.5-flash", "scored_at": when,
                    }  # fmt: skip

        self.w.insert(SentimentScore, rows())

    def _health(self, every_minutes: int) -> None:
        from jiritsu.db.models import HealthCheck, Heartbeat

        rng = self.rng
        checks = ("disk", "memory", "db_latency", "heartbeat", "candles")
        step = timedelta(minutes=every_minutes)

        def rows() -> Iterator[dict[str, Any]]:
            t = self.start + step
            while t <= self.end:
                for name in checks:
                    bad = rng.random() < 0.01 and t < self.end - timedelta(days=1)
                    yield {
                        "ts": t, "check_name": name, "status": "warn" if bad else "ok",
                        "value": round(rng.uniform(10, 60), 1),
                        "message": "above threshold" if bad else None, "details": None,
                    }  # fmt: skip
                t += step

        self.w.insert(HealthCheck, rows())
        self.w.insert(
            Heartbeat,
            [
                {"component": c, "last_seen": self.end, "started_at": self.start, "pid": 100 + i,
                 "host": "server", "details": None}
                for i, c in enumerate(("trade-loop", "dashboard", "health"))
            ],
        )  # fmt: skip

    def _operations(self) -> None:
        from jiritsu.db.models import Control, Transfer

        rows, n = [], 0
        for i, when in enumerate(self.times):
            kind = "profit_save" if i % (24 * 7) == 0 else "rebalance" if i % 24 == 12 else None
            if kind is None:
                continue
            for bot in self.bots:
                n += 1
                rows.append({
                    "idempotency_key": f"00000000-0000-4000-8000-{n:012d}", "kind": kind,
                    "environment": "paper", "from_account": bot,
                    "to_account": "savings" if kind == "profit_save" else "main", "coin": "USDT",
                    "amount": _d(self.rng.uniform(1, 50), 2), "status": "success",
                    "created_at": when, "updated_at": when,
                })  # fmt: skip
        self.w.insert(Transfer, rows)
        idle = {"halted": False, "reason": None, "halted_at": None, "halted_by": None,
                "cooldown_until": None, "updated_at": self.end}  # fmt: skip
        controls = [{"scope": scope, **idle} for scope in ("global", *self.bots)]
        if len(self.bots) > 1:  # one bot sits out a circuit-breaker cooldown
            controls[-1].update(
                halted=True,
                reason="drawdown limit hit",
                halted_at=self.end - timedelta(hours=3),
                halted_by="circuit-breaker",
                cooldown_until=self.end + timedelta(hours=21),
            )
        self.w.insert(Control, controls)

    def _backtests(self) -> None:
        from jiritsu.db.models import BacktestEquity, BacktestRun, TuningRun

        rng = self.rng
        months = max(1, self.hours // (24 * 30))
        tuning: list[dict[str, Any]] = []
        for m in range(months):
            when = self.start + timedelta(days=30 * m + 1)
            for bot in self.bots:
                ins, oos = rng.uniform(0.5, 2.5), rng.uniform(-0.5, 1.8)
                applied = oos > 1.0
                tuning.append({
                    "bot": bot, "started_at": when, "finished_at": when + timedelta(minutes=40),
                    "status": "finished", "target_metric": "sharpe_ratio",
                    "grid": {"fast_period": [10, 20, 30]}, "current_params": {"fast_period": 20},
                    "best_params": {"fast_period": rng.choice((10, 30))},
                    "current_in_sample_score": ins - 0.2, "current_out_of_sample_score": oos - 0.3,
                    "in_sample_score": ins, "out_of_sample_score": oos,
                    "in_sample_from": when - timedelta(days=90),
                    "in_sample_to": when - timedelta(days=30),
                    "out_of_sample_from": when - timedelta(days=30), "out_of_sample_to": when,
                    "applied": applied, "applied_at": when if applied else None,
                    "reason": "out-of-sample better" if applied else "not better out of sample",
                })  # fmt: skip
        tuning_ids = self.w.insert_returning_ids(TuningRun, tuning)

        runs = []
        for k, tid in enumerate(tuning_ids):
            for sample in ("in_sample", "out_of_sample"):
                runs.append(self._run(tuning[k]["bot"], tuning[k]["started_at"], sample, tid))
        standalone = [self._run(self.bots[k % len(self.bots)], self.end, None, None)
                      for k in range(2 * len(self.bots))]  # fmt: skip
        self.w.insert_returning_ids(BacktestRun, runs)
        ids = self.w.insert_returning_ids(BacktestRun, standalone)

        def curves() -> Iterator[dict[str, Any]]:
            for run_id in ids:
                equity = 10000.0
                drift = rng.uniform(-0.00002, 0.00008)
                for when in self.times:
                    equity *= math.exp(rng.gauss(drift, 0.004))
                    yield {"run_id": run_id, "ts": when, "equity": round(equity, 4)}

        self.w.insert(BacktestEquity, curves())

    def _run(
        self, bot: str, when: datetime, sample: str | None, tuning_id: int | None
    ) -> dict[str, Any]:
        rng = self.rng
        return {
            "created_at": when, "bot": bot, "strategy": "ema_cross", "symbol": SYMBOL,
            "interval": "60", "params": {"fast_period": 20, "slow_period": 50},
            "period_from": self.start, "period_to": self.end, "initial_equity": 10000.0,
            "metrics": {"note": "synthetic"}, "total_return": rng.uniform(-0.2, 0.6),
            "sharpe": rng.uniform(-0.5, 2.5), "sortino": rng.uniform(-0.5, 3.0),
            "max_drawdown": rng.uniform(0.05, 0.35), "win_rate": rng.uniform(0.35, 0.65),
            "profit_factor": rng.uniform(0.7, 2.2), "trade_count": rng.randint(50, 400),
            "source": "tune" if tuning_id else "cli", "sample": sample,
            "tuning_run_id": tuning_id,
        }  # fmt: skip
