"""Shared set-up for the master layer's tests: a paper exchange on hand-made prices, ledger
credits that stand in for trading PnL, and candle frames with a known shape.

Paper defaults used throughout (the shipped config): SubBot-A 3000, SubBot-B 4000, SubBot-C
3000 USDT; MAIN's FUND wallet 0 unless a test says otherwise; tolerance 5 %, minimum transfer 10.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy.engine import Engine

from jiritsu.clock import SimClock
from jiritsu.config import Settings
from jiritsu.exchange.paper import PaperExchange
from jiritsu.market.frames import CANDLE_SCHEMA
from jiritsu.market.source import ReplaySource
from jiritsu.runtime import paper_config

D = Decimal
A, B, C = "SubBot-A", "SubBot-B", "SubBot-C"
M = 60_000
H = 60 * M
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, a Thursday


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)  # type: ignore[misc]


def settings(data_dir: Path, **sections: Any) -> Settings:
    """The default configuration (paper), state in ``data_dir``, slippage 0, plus ``sections``."""
    raw: dict[str, Any] = {
        "general": {"data_dir": str(data_dir)},
        "exchange": {"slippage_bps": 0},
        "paper": {"main_balance": "0"},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    return Settings.model_validate(raw)


def flat_frame(start_ms: int, minutes: int, price: float = 100.0) -> pl.DataFrame:
    """``minutes`` 1-minute bars at one price (no PnL moves while a test runs)."""
    return pl.DataFrame(
        [(start_ms + i * M, price, price, price, price, 1.0) for i in range(minutes)],
        schema=CANDLE_SCHEMA,
        orient="row",
    )


def closes_frame(start_ms: int, closes: list[float], step_ms: int = M) -> pl.DataFrame:
    """Bars whose open/high/low equal their close (``step_ms`` apart)."""
    return pl.DataFrame(
        [(start_ms + i * step_ms, c, c, c, c, 1.0) for i, c in enumerate(closes)],
        schema=CANDLE_SCHEMA,
        orient="row",
    )


def paper(
    engine: Engine, cfg: Settings, *, start_ms: int = T0, minutes: int = 600
) -> tuple[PaperExchange, SimClock]:
    """A paper exchange over flat BTCUSDT bars at 100, its clock one minute after ``start_ms``."""
    clock = SimClock(start_ms + M)
    source = ReplaySource(clock, {"BTCUSDT": flat_frame(start_ms, minutes)})
    exchange = PaperExchange(engine, paper_config(cfg), source, clock)
    exchange.seed()  # wallets exist before a test credits them
    return exchange, clock


def credit(engine: Engine, account: str, amount: str, at: datetime, *, trade: bool = True) -> None:
    """Book ``amount`` USDT into a paper wallet and, with ``trade``, record it as the PnL of a
    closing trade: stands in for realised trading PnL (without ``trade``: money from outside)."""
    import uuid

    from jiritsu.db.models import Trade
    from jiritsu.exchange import ledger

    with ledger.locked_session(engine) as session:
        ledger.credit(session, account, "UNIFIED", "USDT", D(amount), at)
        if trade:
            session.add(
                Trade(timestamp=at, sub_bot_name=account, symbol="BTCUSDT",
                      order_id=str(uuid.uuid4()), side="Sell", price=D(100), quantity=D(1),
                      pnl=D(amount), position_effect="close", environment="paper")
            )  # fmt: skip
