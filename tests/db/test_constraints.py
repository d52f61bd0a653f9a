"""The database itself enforces the idempotency keys and lifecycle values, on both backends."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from jiritsu.db.models import (
    Base,
    Candle,
    Control,
    Execution,
    Order,
    PortfolioBotBalance,
    PortfolioSnapshot,
    SentimentScore,
    Trade,
    Transfer,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _order(**kw: Any) -> Order:
    base: dict[str, Any] = dict(
        client_order_id="jr-alpha-1",
        bot="alpha",
        symbol="BTCUSDT",
        category="linear",
        side="Buy",
        order_type="Market",
        qty=Decimal("0.001"),
    )
    return Order(**{**base, **kw})


def _execution(**kw: Any) -> Execution:
    base: dict[str, Any] = dict(
        exec_id="e-1",
        order_id="o-1",
        bot="alpha",
        symbol="BTCUSDT",
        side="Buy",
        price=Decimal("65000.5"),
        qty=Decimal("0.001"),
        exec_time=T0,
    )
    return Execution(**{**base, **kw})


def _trade(**kw: Any) -> Trade:
    base: dict[str, Any] = dict(
        timestamp=T0,
        sub_bot_name="alpha",
        symbol="BTCUSDT",
        order_id="o-1",
        side="Buy",
        price=Decimal("65000.5"),
        quantity=Decimal("0.001"),
    )
    return Trade(**{**base, **kw})


def _candle(**kw: Any) -> Candle:
    base: dict[str, Any] = dict(
        symbol="BTCUSDT",
        interval="1",
        ts=1767225600000,
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=10.0,
    )
    return Candle(**{**base, **kw})


def _transfer(**kw: Any) -> Transfer:
    base: dict[str, Any] = dict(
        idempotency_key="6f1c1d4e-0000-4000-8000-000000000001",
        kind="rebalance",
        from_account="main",
        to_account="alpha",
        coin="USDT",
        amount=Decimal("100"),
    )
    return Transfer(**{**base, **kw})


def _news(**kw: Any) -> SentimentScore:
    base: dict[str, Any] = dict(timestamp=T0, source="coindesk", item_key="k1", headline="h")
    return SentimentScore(**{**base, **kw})


UNIQUE_CASES: dict[str, tuple[Callable[..., Base], dict[str, Any]]] = {
    "orders.client_order_id": (_order, {"exchange_order_id": "other"}),
    "executions.exec_id": (_execution, {"order_id": "o-2"}),
    "trades.order_id": (_trade, {"exec_id": "x-2"}),
    "candles.symbol_interval_ts": (_candle, {"close": 9.0}),
    "transfers.idempotency_key": (_transfer, {"amount": Decimal("1")}),
    "controls.scope": (lambda **kw: Control(scope="global", **kw), {"halted": True}),
    "sentiment_scores.item_key": (_news, {"headline": "other"}),
}


def _add(engine: Engine, *objs: Base) -> None:
    with Session(engine, expire_on_commit=False) as session:
        session.add_all(objs)
        session.commit()


@pytest.mark.parametrize("case", sorted(UNIQUE_CASES))
def test_unique_keys_are_enforced(engine: Engine, case: str) -> None:
    make, differing = UNIQUE_CASES[case]
    _add(engine, make())
    with pytest.raises(IntegrityError):
        _add(engine, make(**differing))


def test_candles_differ_by_interval_or_ts(engine: Engine) -> None:
    _add(engine, _candle(), _candle(interval="5"), _candle(ts=1767225660000))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(Candle)).scalar_one() == 3


def test_lifecycle_values_are_checked(engine: Engine) -> None:
    with pytest.raises(IntegrityError):
        _add(engine, _order(status="canceled"))  # ours is "cancelled"
    with pytest.raises(IntegrityError):
        _add(engine, _order(side="BUY"))  # Bybit spelling: "Buy"
    with pytest.raises(IntegrityError):
        _add(engine, _transfer(status="done"))
    _add(engine, _order(status="partially_filled"))


def test_order_defaults(engine: Engine) -> None:
    _add(engine, _order())
    with Session(engine) as session:
        order = session.scalars(sa.select(Order)).one()
    assert order.status == "pending"
    assert order.filled_qty == Decimal(0)
    assert order.reduce_only is False
    assert order.created_at.tzinfo == timezone.utc


def test_foreign_keys_are_enforced_and_cascade(engine: Engine) -> None:
    with pytest.raises(IntegrityError):
        _add(engine, PortfolioBotBalance(snapshot_id=999, bot_name="alpha", balance=Decimal(1)))
    snap = PortfolioSnapshot(timestamp=T0, total_balance_usdt=Decimal("3"))
    _add(engine, snap)
    _add(
        engine,
        PortfolioBotBalance(snapshot_id=snap.id, bot_name="alpha", balance=Decimal(1)),
        PortfolioBotBalance(snapshot_id=snap.id, bot_name="beta", balance=Decimal(2)),
    )
    with pytest.raises(IntegrityError):
        _add(engine, PortfolioBotBalance(snapshot_id=snap.id, bot_name="beta", balance=Decimal(5)))
    with engine.begin() as conn:
        conn.execute(sa.delete(PortfolioSnapshot).where(PortfolioSnapshot.id == snap.id))
    with engine.connect() as conn:
        left = conn.execute(sa.select(sa.func.count()).select_from(PortfolioBotBalance))
        assert left.scalar_one() == 0
