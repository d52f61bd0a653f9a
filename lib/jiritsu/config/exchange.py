"""``[exchange]``: Bybit's fees, the paper/backtest slippage model, leverage and the HTTP client."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field, ValidationInfo, field_validator

from jiritsu.config.base import Dec, DecRate, Float, Int, Model, checked_ca_file, checked_url


class ExchangeSettings(Model):
    maker_fee: DecRate = Decimal("0.0002")
    taker_fee: DecRate = Decimal("0.00055")
    slippage_bps: Dec = Field(default=Decimal("2"), ge=0, le=10_000)
    slippage_volatility_factor: Dec = Field(default=Decimal("0.0"), ge=0)
    leverage: Int = Field(default=1, ge=1, le=100)
    request_timeout_seconds: Float = Field(default=10, gt=0)
    max_retries: Int = Field(default=3, ge=0)
    base_url: str = ""
    # A CA bundle for the exchange's TLS certificate (a TLS-inspecting proxy, or the tests'
    # loopback fake). pybit ignores REQUESTS_CA_BUNDLE, so it has to be passed explicitly.
    ca_file: str = ""
    recv_window_ms: Int = Field(default=5000, ge=1, le=60_000)

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str, info: ValidationInfo) -> str:
        return checked_url(value, info)

    @field_validator("ca_file")
    @classmethod
    def _ca(cls, value: str) -> str:
        return checked_ca_file(value)
