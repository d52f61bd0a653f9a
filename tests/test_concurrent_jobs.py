"""The periodic jobs started together, as the separate processes systemd runs, against the
loopback Bybit fake (real pybit over TLS) on SQLite and on PostgreSQL.

Each round starts ``rebalance``, ``rebalance --dry-run``, ``save-profit --force``,
``snapshot``, ``phase``, ``reconcile`` and ``health`` in the same instant; between rounds money
arrives from outside (a transfer from the main account, which is no profit) so every round's
rebalance has something to move, and the first transfer attempt of each round is slow (the
window in which issue 16 saw snapshots and savings count rebalanced capital). One scenario has
no trading at all, the other a ``trade-loop`` trading SubBot-C throughout. Checked after the
storms:

- no job exits non-zero because of another (health may report the machine, never crash);
- nothing is saved that was not realised trading profit (nothing, when nothing traded);
- money is conserved: all wallets together changed by exactly the realised PnL after fees;
- no transfer was sent twice, and every journalled transfer is final and on the exchange;
- reconcile stays quiet while the loop trades (no RECONCILE event).
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from pybit.unified_trading import HTTP

from jiritsu.db import migrate
from jiritsu.db.engine import make_engine
from tests.exchange.bybit_env import BOTS, KEYS, UIDS
from tests.fakes.bybit import FakeBybit
from tests.processes import fake_bybit_env, jiritsu_env, start_jiritsu

MIN = 60_000
TRANSFER = "/v5/asset/transfer/universal-transfer"
JOBS = {
    "rebalance": ["rebalance"],
    "rebalance --dry-run": ["rebalance", "--dry-run"],
    "save-profit --force": ["save-profit", "--force"],
    "snapshot": ["snapshot"],
    "phase": ["phase"],
    "reconcile": ["reconcile"],
    "health": ["health"],
}
INITIAL = {"main": Decimal(10000), "main/FUND": Decimal(500)} | {b: Decimal(1000) for b in BOTS}


def falling_path(now_ms: int) -> list[tuple[int, float, float, float, float, int]]:
    """1-minute rows from 3 h ago to 1 h ahead, falling 5 a minute: a strong bear phase, and an
    oversold BUY for SubBot-C on every bar."""
    start = (now_ms // MIN) * MIN - 180 * MIN
    return [
        (start + i * MIN, 40000.0 - 5 * i, 40020.0 - 5 * i, 39975.0 - 5 * i, 39995.0 - 5 * i, 2)
        for i in range(240)
    ]


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as server:  # the market clock follows real time
        server.add_account("main", UIDS["main"], *KEYS["main"], usdt=INITIAL["main"],
                           master=True, fund_usdt=INITIAL["main/FUND"])  # fmt: skip
        for bot in BOTS:
            server.add_account(bot, UIDS[bot], *KEYS[bot], usdt=INITIAL[bot])
        server.set_price_path("BTCUSDT", falling_path(int(time.time() * 1000)))
        yield server
        assert server.internal_errors == []


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'jiritsu.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    migrate.upgrade(url)
    return url


def job_env(fake: FakeBybit, data_dir: Path, db_url: str) -> dict[str, str]:
    return jiritsu_env(data_dir, fake_bybit_env(fake), {
        "JIRITSU_DATABASE__DB_TYPE": "sqlite" if db_url.startswith("sqlite") else "postgresql",
        "JIRITSU_DATABASE__DB_URL": db_url,
        "JIRITSU_EXCHANGE__REQUEST_TIMEOUT_SECONDS": "5",
        "JIRITSU_NEWS_SENTIMENT__ENABLED": "false",
        # The phase from the fake's 1-minute bars (EMA 5/20).
        "JIRITSU_MASTER_BOT__MARKET_PHASE__TIMEFRAME": "1",
        "JIRITSU_MASTER_BOT__MARKET_PHASE__SHORT_PERIOD": "5",
        "JIRITSU_MASTER_BOT__MARKET_PHASE__LONG_PERIOD": "20",
        # SubBot-C trades every 1-minute bar when the loop runs.
        "JIRITSU_SUB_BOTS__SUBBOT_C__TIMEFRAME": "1",
        "JIRITSU_SUB_BOTS__SUBBOT_C__STRATEGY_PARAMS__TP_SL_ENABLED": "false",
    })  # fmt: skip


def deposit(fake: FakeBybit, bot: str, amount: int) -> None:
    """Money from outside Jiritsu: a transfer from the main account made by hand."""
    key, secret = KEYS["main"]
    session = HTTP(api_key=key, api_secret=secret, testnet=True, timeout=5, max_retries=1)
    session.endpoint = fake.endpoint
    session.client.verify = str(fake.ca_path)
    session.create_universal_transfer(
        transferId=str(uuid.uuid4()), coin="USDT", amount=str(amount),
        fromMemberId=UIDS["main"], toMemberId=UIDS[bot],
        fromAccountType="UNIFIED", toAccountType="UNIFIED",
    )  # fmt: skip


def storms(
    env: dict[str, str], rounds: int, between: Callable[[int], None]
) -> list[tuple[str, int, str]]:
    """``rounds`` times: ``between(round)``, then every job at once; (job, exit code, output)."""
    results = []
    for r in range(rounds):
        between(r)
        procs = {}
        for name, args in JOBS.items():
            procs[name] = start_jiritsu(args, env, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)  # fmt: skip
        for name, proc in procs.items():
            try:
                out, _ = proc.communicate(timeout=600)  # a loaded machine is slow
            finally:
                if proc.poll() is None:
                    proc.kill()
            results.append((name, proc.returncode, out))
    return results


def assert_every_job_succeeded(results: list[tuple[str, int, str]]) -> None:
    for name, code, out in results:
        assert "Traceback" not in out, (name, out)
        assert "unexpected" not in out, (name, out)
        allowed = (0, 1) if name == "health" else (0,)  # health judges the machine too
        assert code in allowed, (name, code, out)


def money_on_the_exchange(fake: FakeBybit) -> tuple[Decimal, Decimal]:
    """(every wallet together, every position's realised PnL after fees)."""
    with fake.exchange.lock:
        fake.exchange.sync()
        accounts = [fake.exchange.account(a) for a in ("main", *BOTS)]
        wallets = sum(
            (a.unified.get("USDT", Decimal(0)) + a.fund.get("USDT", Decimal(0)) for a in accounts),
            Decimal(0),
        )
        realised = sum(
            (p.cum_realised_pnl for a in accounts for p in a.positions.values()), Decimal(0)
        )
    return wallets, realised


def assert_books_agree(fake: FakeBybit, db_url: str) -> dict[str, Decimal]:
    """Money conserved, every transfer once, nothing saved beyond realised trading profit;
    returns the realised PnL per bot recorded in the database."""
    wallets, realised = money_on_the_exchange(fake)
    assert wallets == sum(INITIAL.values()) + realised

    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT idempotency_key, kind, from_account, amount, status FROM transfers"
            )).all()  # fmt: skip
            pnl = conn.execute(sa.text(
                "SELECT sub_bot_name, pnl FROM trades WHERE pnl IS NOT NULL"
            )).all()  # fmt: skip
            reconcile_events = conn.execute(sa.text(
                "SELECT count(*) FROM system_events WHERE event_type = 'RECONCILE'"
            )).scalar_one()  # fmt: skip
    finally:
        engine.dispose()
    on_exchange = [t.transfer_id for t in fake.transfers]
    assert len(on_exchange) == len(set(on_exchange))
    assert {r.status for r in rows} <= {"success", "failed"}  # nothing left in flight
    succeeded = {r.idempotency_key for r in rows if r.status == "success"}
    assert succeeded <= set(on_exchange)
    assert not {r.idempotency_key for r in rows if r.status == "failed"} & set(on_exchange)
    assert any(r.kind == "rebalance" and r.status == "success" for r in rows)
    by_bot: dict[str, Decimal] = {}
    for bot, value in pnl:
        by_bot[bot] = by_bot.get(bot, Decimal(0)) + Decimal(value)
    saved: dict[str, Decimal] = {}
    for r in rows:
        if r.kind == "profit_save" and r.status == "success":
            saved[r.from_account] = saved.get(r.from_account, Decimal(0)) + Decimal(r.amount)
    for bot, amount in saved.items():  # at most half (the rate) of what the bot realised
        assert amount <= max(by_bot.get(bot, Decimal(0)), Decimal(0)) / 2, (bot, amount)
    assert fake.balance("main", account_type="FUND") == INITIAL["main/FUND"] + sum(
        saved.values(), Decimal(0)
    )
    assert reconcile_events == 0
    return by_bot


def slow_first_transfer_and_a_deposit(fake: FakeBybit) -> Callable[[int], None]:
    def between(r: int) -> None:
        fake.clear_faults()  # a slow attempt nobody made last round is not for the deposit
        if r:
            deposit(fake, BOTS[r % 2], 400)  # A or B out of its band again
        fake.inject(TRANSFER, "timeout", times=1, seconds=1.5)

    return between


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_jobs_started_together_without_trading(
    fake: FakeBybit, db_url: str, isolated_env: Path
) -> None:
    env = job_env(fake, isolated_env, db_url)
    results = storms(env, 2, slow_first_transfer_and_a_deposit(fake))
    assert_every_job_succeeded(results)
    assert assert_books_agree(fake, db_url) == {}  # nothing traded ...
    assert fake.balance("main", account_type="FUND") == INITIAL["main/FUND"]  # ... nothing saved


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_jobs_started_together_while_the_loop_trades(
    fake: FakeBybit, db_url: str, isolated_env: Path
) -> None:
    env = job_env(fake, isolated_env, db_url)
    log = (isolated_env.parent / "loop.out").open("w")
    loop = start_jiritsu(["trade-loop", "--bot", "SubBot-C"], env, stdout=log,
                         stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not any(o.account == "SubBot-C" for o in fake.orders):
            assert time.monotonic() < deadline, (isolated_env.parent / "loop.out").read_text()
            assert loop.poll() is None, (isolated_env.parent / "loop.out").read_text()
            time.sleep(0.2)
        results = storms(env, 2, slow_first_transfer_and_a_deposit(fake))
        loop.send_signal(signal.SIGTERM)
        loop.wait(timeout=60)
    finally:
        if loop.poll() is None:
            loop.kill()
    out = (isolated_env.parent / "loop.out").read_text()
    assert loop.returncode == 0, out
    assert_every_job_succeeded(results)
    reconciled = [o for name, _, o in results if name == "reconcile"]
    assert all("SubBot-C: skipped" in o for o in reconciled), reconciled
    assert_books_agree(fake, db_url)
