"""Run the fake Bybit by hand: ``python -m tests.fakes.bybit --port 8443 --synthetic``.

The market clock follows real time; with ``--synthetic`` each symbol gets a seeded random walk
from ``--days`` days ago to ``--days`` days ahead, so klines, tickers and fills behave like a
live (if boring) market. Demo accounts are created and their keys printed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from decimal import Decimal

from .candles import MINUTE_MS, synthetic_path
from .server import FakeBybit

DEMO_ACCOUNTS = (
    # name, uid, key, secret, unified USDT, master
    ("main", 100001, "DEMO-MAIN-KEY", "DEMO-MAIN-SECRET", Decimal("10000"), True),
    ("sub1", 100002, "DEMO-SUB1-KEY", "DEMO-SUB1-SECRET", Decimal("1000"), False),
    ("sub2", 100003, "DEMO-SUB2-KEY", "DEMO-SUB2-SECRET", Decimal("1000"), False),
)
BASE_PRICES = {"BTCUSDT": ("60000", "0.1"), "ETHUSDT": ("3000", "0.01"), "SOLUSDT": ("150", "0.01")}


def build(args: argparse.Namespace) -> FakeBybit:
    fake = FakeBybit(port=args.port, cert_dir=args.cert_dir)
    for name, uid, key, secret, usdt, master in DEMO_ACCOUNTS:
        fake.add_account(name, uid, key, secret, usdt=usdt, master=master, fund_usdt=Decimal(500))
    if args.synthetic:
        now = int(time.time() * 1000)
        minutes = args.days * 2 * 1440
        for n, symbol in enumerate(args.symbol or ["BTCUSDT"]):
            price, tick = BASE_PRICES.get(symbol, ("100", "0.01"))
            rows = synthetic_path(
                now - args.days * 1440 * MINUTE_MS,
                minutes,
                price=price,
                tick=tick,
                seed=args.seed + n,
            )
            fake.set_price_path(symbol, rows)
    return fake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.bybit", description=__doc__)
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--symbol", action="append", help="symbol with a price path (repeatable)")
    parser.add_argument("--synthetic", action="store_true", help="generate random-walk paths")
    parser.add_argument("--days", type=int, default=7, help="days of path before and after now")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cert-dir", default=None, help="where to write ca.pem (default: temp)")
    args = parser.parse_args(argv)

    fake = build(args)
    fake.start()
    print(f"endpoint: {fake.endpoint}")
    print(f"CA file:  {fake.ca_path}")
    for name, uid, key, secret, usdt, master in DEMO_ACCOUNTS:
        role = "main" if master else "sub "
        print(f"{role} {name:5} uid={uid} key={key} secret={secret} UNIFIED USDT={usdt}")
    print("pybit:    s = HTTP(api_key=KEY, api_secret=SECRET, testnet=True)")
    print(f"          s.endpoint = {fake.endpoint!r}; s.client.verify = {fake.ca_path!r}")
    print("Ctrl-C to stop.")
    sys.stdout.flush()

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
