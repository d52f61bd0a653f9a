"""A loopback HTTPS fake of the Bybit V5 REST API for tests (and manual trials).

    from tests.fakes.bybit import FakeBybit

    with FakeBybit() as fake:
        fake.add_account("main", 1001, "KEY", "SECRET", usdt=Decimal("10000"), master=True)
        fake.set_price_path("BTCUSDT", rows)   # 1-minute OHLCV rows
        fake.clock = rows[0][0]
        session = HTTP(api_key="KEY", api_secret="SECRET", testnet=True)
        session.endpoint = fake.endpoint
        session.client.verify = fake.ca_path

Standalone: ``python -m tests.fakes.bybit --port 8443 --symbol BTCUSDT --synthetic``.
"""

from .candles import Candle, PricePath, synthetic_path
from .engine import (
    Account,
    ApiError,
    ApiKeySettings,
    Exchange,
    Execution,
    Instrument,
    Order,
    Position,
    Transfer,
)
from .server import FakeBybit, Fault, RequestRecord

__all__ = [
    "Account",
    "ApiError",
    "ApiKeySettings",
    "Candle",
    "Exchange",
    "Execution",
    "FakeBybit",
    "Fault",
    "Instrument",
    "Order",
    "Position",
    "PricePath",
    "RequestRecord",
    "Transfer",
    "synthetic_path",
]
