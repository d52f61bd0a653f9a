"""``[paper]``: the simulated balances and where paper trading's prices come from."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator

from jiritsu.config.base import CTX_BOTS, Dec, Model, from_context, raise_if, unknown_bots, upper


class PaperSettings(Model):
    quote_coin: Annotated[str, BeforeValidator(upper), Field(pattern=r"^[A-Z0-9]{2,10}$")] = "USDT"
    starting_balances: dict[str, Annotated[Dec, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "SubBot-A": Decimal("3000"),
            "SubBot-B": Decimal("4000"),
            "SubBot-C": Decimal("3000"),
        },
        validate_default=True,  # the defaults name bots too: check them against the real ones
    )
    main_balance: Dec = Field(default=Decimal("0"), ge=0)
    # Where paper trading gets its prices: "replay" the stored candles (offline; demos, tests)
    # or "bybit": Bybit's public klines, polled as time passes (no key needed).
    price_source: Literal["replay", "bybit"] = "replay"

    @field_validator("starting_balances")
    @classmethod
    def _known_bots(cls, value: dict[str, Decimal], info: ValidationInfo) -> dict[str, Decimal]:
        raise_if(unknown_bots(value, from_context(info, CTX_BOTS)))
        return value
