"""Symbol normalisation: every spelling a user might type maps to the exchange's one."""

from __future__ import annotations

import pytest

from jiritsu.errors import ExitCode, UsageError
from jiritsu.market.symbols import normalize_symbol, split_symbol


@pytest.mark.parametrize(
    "text",
    ["BTC/USDT", "btc/usdt", "BTCUSDT", "btcusdt", "btc-usdt", "BTC_USDT", "  BTC/USDT  "],
)
def test_spellings_of_one_pair_normalise_alike(text: str) -> None:
    assert normalize_symbol(text) == "BTCUSDT"


def test_digits_in_a_symbol_are_kept() -> None:
    assert normalize_symbol("1000pepe/usdt") == "1000PEPEUSDT"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "BTC USDT",
        "BTC//USDT",
        "BTC/USDT/EUR",
        "/USDT",
        "BTC/",
        "btc$usdt",
        "1234",
        "X" * 33,
    ],
)
def test_garbage_is_a_usage_error_naming_the_input(text: str) -> None:
    with pytest.raises(UsageError) as info:
        normalize_symbol(text)
    assert repr(text) in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE


def test_non_text_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        normalize_symbol(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("BTCUSDT", ("BTC", "USDT")),
        ("eth/usdc", ("ETH", "USDC")),
        ("BTCUSD", ("BTC", "USD")),
        ("ETHBTC", ("ETH", "BTC")),
        ("btc-eur", ("BTC", "EUR")),
        ("USDCUSDT", ("USDC", "USDT")),
        ("1000PEPEUSDT", ("1000PEPE", "USDT")),
    ],
)
def test_split_by_known_quote(text: str, expected: tuple[str, str]) -> None:
    assert split_symbol(text) == expected


@pytest.mark.parametrize("text", ["ETHDAI", "USDT", "BTC", "123USDT"])
def test_split_refuses_unknown_or_missing_quote_or_base(text: str) -> None:
    with pytest.raises(UsageError, match=text):
        split_symbol(text)
