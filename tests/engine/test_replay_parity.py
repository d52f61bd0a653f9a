"""``trade-loop --replay`` (the live code on the paper exchange) and the strategy kernel driven
directly over the same arrays (what the backtester runs) make the same trades.

Same candles, same configuration: every order (time, side, quantity, type, limit price), every
fill (time, side, quantity, price) and every exchange-side TP/SL trigger must agree. The global
breakers are the portfolio's, not a bot's, so they are switched off here; the per-bot loss-streak
breaker is on in both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from jiritsu.db.engine import make_engine
from jiritsu.engine.loop import LoopOptions, run_loop
from jiritsu.market.synth import synth_candles
from jiritsu.strategy import kernel as K
from jiritsu.strategy.inputs import prepare, run
from tests.engine.conftest import load, store_candles

DAY = 86_400_000
ENV = {
    "JIRITSU_SUB_BOTS__SUBBOT_A__TIMEFRAME": "15",  # more spot round trips in a short replay
    "JIRITSU_RISK__COOLDOWN_MINUTES": "120",
    "JIRITSU_RISK__CRASH_COOLDOWN_MINUTES": "120",
}


def kernel_trades(loaded, candles, bot, start: int, end: int):  # type: ignore[no-untyped-def]
    settings = loaded.settings
    inputs = prepare(bot, settings, candles)
    result = run(inputs, float(settings.paper.starting_balances[bot.name]), start, end + 1)
    orders = [
        (int(a[0]), int(a[2]), round(a[3], 6), round(a[4], 2))
        for a in result.acts if a[1] == K.ACT_ORDER
    ]  # fmt: skip
    trades = [(int(f[0]), int(f[1]), round(f[2], 6), round(f[3], 4)) for f in result.fills]
    triggers = [(int(f[0]), int(f[5])) for f in result.fills if f[5] >= 2]
    return orders, trades, triggers


def replay_trades(engine, bot: str):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        orders = conn.execute(sa.text(
            "select accepted_ms, side, qty, price from paper_orders "
            "where account = :a and client_order_id is not null order by accepted_ms, id"
        ), {"a": bot}).all()  # fmt: skip
        fills = conn.execute(sa.text(
            "select exec_ms, side, qty, price, exec_type from paper_fills where account = :a "
            "order by exec_ms, id"
        ), {"a": bot}).all()  # fmt: skip
    sign = {"Buy": 1, "Sell": -1}
    return (
        [(int(o[0]), sign[o[1]], round(float(o[2]), 6), round(float(o[3] or 0), 2))
         for o in orders],
        [(int(f[0]), sign[f[1]], round(float(f[2]), 6), round(float(f[3]), 4)) for f in fills],
        [(int(f[0]), 2 if f[4] == "TakeProfit" else 3) for f in fills if f[4] != "Trade"],
    )  # fmt: skip


def test_replay_and_the_kernel_make_the_same_trades(isolated_env: Path) -> None:
    loaded = load(isolated_env, ENV)
    candles = synth_candles(days=7, seed=42)
    store_candles(loaded, candles)
    first = int(candles["ts"][0])
    start, end = first + 2 * DAY, first + 7 * DAY
    result = run_loop(loaded, LoopOptions(replay=(start, end), install_signals=False))
    assert result.exit_code == 0
    engine = make_engine(loaded.db_url)
    try:
        totals = {"orders": 0, "triggers": 0}
        for bot in loaded.settings.enabled_bots:
            live = replay_trades(engine, bot.name)
            sim = kernel_trades(loaded, candles, bot, start, end)
            assert live[0] == sim[0], f"{bot.name}: orders differ"
            assert [t[:3] for t in live[1]] == [t[:3] for t in sim[1]], f"{bot.name}: fills"
            assert [t[3] for t in live[1]] == pytest.approx([t[3] for t in sim[1]], abs=1e-4)
            assert live[2] == sim[2], f"{bot.name}: TP/SL triggers differ"
            totals["orders"] += len(sim[0])
            totals["triggers"] += len(sim[2])
            assert sim[0], f"{bot.name} never traded: the comparison would prove nothing"
        assert totals["triggers"] > 0
    finally:
        engine.dispose()
