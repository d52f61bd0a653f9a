"""The numbers of a finished simulation, read back from its database (what ``--json`` prints).

Equity = the bots' equity + the savings (the main account): transfers between them are not
returns. Curves come from the hourly portfolio snapshots; the Sharpe ratio is annualised from
their hourly returns. Buy-and-hold is the index symbol's close at the end over its close at the
start, over the same period.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jiritsu.clock import from_ms, to_ms

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from jiritsu.simulate import SimRun

HOURS_PER_YEAR = 24 * 365
ZERO = Decimal(0)


@dataclass(frozen=True)
class Curves:
    """Hourly series from the snapshots: time (ms), total equity, savings, equity per bot."""

    ts: list[int]
    equity: list[float]
    savings: list[float]
    bots: dict[str, list[float]]


def curves(engine: Engine) -> Curves:
    import sqlalchemy as sa

    from jiritsu.db.models import PortfolioBotBalance as B
    from jiritsu.db.models import PortfolioSnapshot as S

    with engine.connect() as conn:
        snaps = conn.execute(
            sa.select(S.id, S.timestamp, S.profit_saved_balance).order_by(S.timestamp, S.id)
        ).all()
        rows = conn.execute(sa.select(B.snapshot_id, B.bot_name, B.balance)).all()
    per: dict[int, dict[str, Decimal]] = {}
    names: set[str] = set()
    for sid, name, bal in rows:
        per.setdefault(sid, {})[name] = bal
        names.add(name)
    ts: list[int] = []
    equity: list[float] = []
    savings: list[float] = []
    bots: dict[str, list[float]] = {n: [] for n in sorted(names)}
    for sid, when, saved in snaps:
        stamp = to_ms(when)
        if ts and ts[-1] == stamp:  # two snapshots at one time: the later one counts
            ts.pop(), equity.pop(), savings.pop()
            for series in bots.values():
                series.pop()
        bals = per.get(sid, {})
        ts.append(stamp)
        savings.append(float(saved or ZERO))
        equity.append(float(sum(bals.values(), ZERO) + (saved or ZERO)))
        for n in bots:
            bots[n].append(float(bals.get(n, ZERO)))
    return Curves(ts, equity, savings, bots)


def max_drawdown(values: list[float]) -> float:
    peak, worst = -math.inf, 0.0
    for v in values:
        peak = max(peak, v)
        if peak > 0:
            worst = max(worst, (peak - v) / peak)
    return worst


def sharpe(values: list[float]) -> float:
    """Annualised Sharpe ratio of the hourly returns (0 without variation)."""
    rets = [b / a - 1.0 for a, b in itertools.pairwise(values) if a > 0]
    if len(rets) < 2:
        return 0.0
    mean = sum(rets) / len(rets)
    var = sum((r - mean) ** 2 for r in rets) / (len(rets) - 1)
    return 0.0 if var <= 0 else mean / math.sqrt(var) * math.sqrt(HOURS_PER_YEAR)


def buy_and_hold(engine: Engine, settings: Any, start_ms: int, end_ms: int) -> float | None:
    """The index symbol's return from the last close before ``start`` to the last before
    ``end``."""
    from jiritsu.market.store import CandleStore, cache_root

    store = CandleStore(engine, cache_root(settings.general.data_dir))
    symbol = settings.master_bot.index_symbol
    first = store.load(symbol, "1", start_ms - 86_400_000, start_ms)
    last = store.load(symbol, "1", end_ms - 86_400_000, end_ms)
    if first.height == 0 or last.height == 0:
        return None
    return float(last["close"][-1]) / float(first["close"][-1]) - 1.0


def _transfers(engine: Engine) -> dict[str, int]:
    import sqlalchemy as sa

    from jiritsu.db.models import Transfer

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Transfer.kind, sa.func.count())
            .where(Transfer.status == "success")
            .group_by(Transfer.kind)
        ).all()
    return {kind: int(n) for kind, n in rows}


def breaker_trips(engine: Engine) -> list[dict[str, Any]]:
    """Every circuit-breaker trip: time, scope (``global`` or the bot), breaker, message."""
    import sqlalchemy as sa

    from jiritsu.db.models import SystemEvent

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(SystemEvent.timestamp, SystemEvent.bot, SystemEvent.details,
                      SystemEvent.message)
            .where(SystemEvent.event_type == "CIRCUIT_BREAKER")
            .order_by(SystemEvent.timestamp, SystemEvent.id)
        ).all()  # fmt: skip
    out = []
    for when, bot, details, message in rows:
        breaker = details.get("breaker") if isinstance(details, dict) else None
        out.append(
            {"time": _iso(when), "scope": bot or "global", "breaker": breaker, "message": message}
        )
    return out


def bot_figures(engine: Engine, curves_: Curves, quote: str) -> dict[str, dict[str, Any]]:
    """Per bot: closing trades, realised PnL (after fees), fees in the quote coin, end equity."""
    import sqlalchemy as sa

    from jiritsu.db.models import Trade

    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Trade.sub_bot_name, Trade.position_effect, Trade.pnl, Trade.fee,
                      Trade.fee_coin, Trade.price)
        ).all()  # fmt: skip
    out: dict[str, dict[str, Any]] = {
        name: {"trades": 0, "pnl": 0.0, "fees": 0.0, "end_equity": series[-1] if series else None}
        for name, series in curves_.bots.items()
    }
    for bot, effect, pnl, fee, fee_coin, price in rows:
        fig = out.setdefault(bot, {"trades": 0, "pnl": 0.0, "fees": 0.0, "end_equity": None})
        if effect == "close":
            fig["trades"] += 1
            fig["pnl"] += float(pnl or ZERO)
        in_quote = fee if (fee_coin or quote) == quote else fee * price
        fig["fees"] += float(in_quote or ZERO)
    for fig in out.values():
        fig["pnl"] = round(fig["pnl"], 2)
        fig["fees"] = round(fig["fees"], 2)
        if fig["end_equity"] is not None:
            fig["end_equity"] = round(fig["end_equity"], 2)
    return out


def _iso(when: datetime) -> str:
    return when.isoformat()


def summarize(run: SimRun) -> dict[str, Any]:
    """The simulation's result document (see the module docstring)."""
    from jiritsu.db.migrate import open_database

    settings = run.loaded.settings
    opts = run.options
    paper = settings.paper
    start_equity = float(sum(paper.starting_balances.values(), ZERO) + paper.main_balance)
    with open_database(run.loaded) as engine:
        c = curves(engine)
        bh = buy_and_hold(engine, settings, opts.start_ms, opts.end_ms)
        transfers = _transfers(engine)
        trips = breaker_trips(engine)
        bots = bot_figures(engine, c, paper.quote_coin)
    end_equity = c.equity[-1] if c.equity else start_equity
    series = [start_equity, *c.equity]
    saved = (c.savings[-1] if c.savings else 0.0) - float(paper.main_balance)
    return {
        "from": from_ms(opts.start_ms).isoformat(),
        "to": from_ms(opts.end_ms).isoformat(),
        "start_equity": round(start_equity, 2),
        "end_equity": round(end_equity, 2),
        "total_return": end_equity / start_equity - 1.0 if start_equity else None,
        "max_drawdown": max_drawdown(series),
        "sharpe": sharpe(series),
        "buy_and_hold_return": bh,
        "profit_saved": round(saved, 2),
        "transfers": transfers.get("rebalance", 0),
        "savings": transfers.get("profit_save", 0),
        "tunings": run.tunings,
        "breaker_trips": trips,
        "bots": bots,
        "advisors": run.advisors,
        "jobs": {
            "tune": run.options.tune,
            "rebalance": run.options.rebalance,
            "save_profit": run.options.save_profit,
        },
        "data_dir": str(opts.data_dir),
        "wall_seconds": round(run.wall_seconds, 2),
    }


def job_profile(run: SimRun) -> dict[str, dict[str, float]]:
    """Wall and CPU time per job kind (runs, seconds, cpu), plus the loop without them and the
    set-up."""
    prof: dict[str, dict[str, float]] = {}
    for j in run.jobs:
        p = prof.setdefault(j.job, {"runs": 0, "seconds": 0.0, "cpu": 0.0})
        p["runs"] += 1
        p["seconds"] += j.seconds
        p["cpu"] += j.cpu
    jobs_wall = sum(p["seconds"] for p in prof.values())
    jobs_cpu = sum(p["cpu"] for p in prof.values())
    prof["trade loop (bots, breakers, snapshots)"] = {
        "runs": 1, "seconds": max(run.loop_seconds - jobs_wall, 0.0),
        "cpu": max(run.loop_cpu - jobs_cpu, 0.0),
    }  # fmt: skip
    prof["set-up (fresh database, candle copy)"] = {
        "runs": 1, "seconds": run.setup_seconds, "cpu": run.setup_cpu
    }  # fmt: skip
    return prof
