"""What the paper exchange needs to know, and nothing more: built by the composition root
(:func:`jiritsu.runtime.paper_config`) from ``[paper]``, ``[exchange]`` and the sub-bots, so the
exchange neither reads the whole configuration nor knows what a bot is."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class PaperConfig:
    """The paper exchange's accounts, fee and slippage model, and the symbols it prices."""

    # Each trading account's UNIFIED wallet in ``quote_coin`` when the ledger is first seeded.
    starting_balances: Mapping[str, Decimal]
    # What a live price source fetches ahead of each transaction (outside the ledger's lock).
    symbols: tuple[str, ...] = ()
    quote_coin: str = "USDT"
    main_balance: Decimal = Decimal(0)  # MAIN's FUND wallet (saved profit) at seeding
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.00055")
    slippage_bps: float = 0.0
    slippage_volatility_factor: float = 0.0
    leverage: int = 1  # for new linear positions
    # Per account, the bar interval the slippage's ATR is measured on (the interval its
    # decisions are made on, so paper fills match the backtester's); others: 1-minute bars.
    volatility_intervals: Mapping[str, str] = field(default_factory=dict)
