"""Universal transfers (master key), their idempotency, lookups and sub-account queries."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest

from jiritsu.exchange import MAIN, InsufficientBalance, OrderRejected
from jiritsu.exchange.ids import new_transfer_id
from jiritsu.exchange.types import SubAccount, TransferRequest
from tests.exchange.bybit_env import UIDS, BybitEnv, bybit_env

TRANSFER = "/v5/asset/transfer/universal-transfer"


@pytest.fixture
def env():
    with bybit_env() as e:
        yield e


def to_bot(amount: str, bot: str = "SubBot-C", tid: str | None = None) -> TransferRequest:
    return TransferRequest(
        transfer_id=tid or new_transfer_id(),
        coin="USDT",
        amount=Decimal(amount),
        from_account=MAIN,
        to_account=bot,
        from_wallet="FUND",
        to_wallet="UNIFIED",
    )


def test_transfer_from_the_main_fund_wallet_to_a_bot(env: BybitEnv):
    ex = env.exchange()
    req = to_bot("100")
    result = ex.transfer(req)
    assert (result.transfer_id, result.status, result.detail) == (req.transfer_id, "success", None)
    assert env.fake.balance("main", account_type="FUND") == 400
    assert env.fake.balance("SubBot-C") == 1100
    [call] = env.calls(TRANSFER)
    body = json.loads(call.body)
    assert call.account == "main"  # always with the master key
    assert body == {
        "transferId": req.transfer_id,
        "coin": "USDT",
        "amount": "100",
        "fromMemberId": UIDS["main"],
        "toMemberId": UIDS["SubBot-C"],
        "fromAccountType": "FUND",
        "toAccountType": "UNIFIED",
    }
    assert ex.balance(MAIN).wallet_balance == 400  # MAIN's balance is its FUND wallet
    assert ex.balance("SubBot-C").wallet_balance == 1100


def test_member_ids_are_looked_up_once_with_each_accounts_own_key(env: BybitEnv):
    ex = env.exchange()
    ex.transfer(to_bot("1"))
    ex.transfer(to_bot("1"))
    lookups = [
        r.account
        for r in env.fake.requests
        if r.path in ("/v5/user/query-api", "/v5/asset/transfer/query-account-coins-balance")
        and r.status == 200
    ]
    assert sorted(lookups) == ["SubBot-C", "main"]  # cached after the first transfer
    assert ex.member_id("SubBot-C") == UIDS["SubBot-C"]


def test_member_ids_from_the_config_need_no_lookup(env: BybitEnv):
    ex = env.exchange(
        {
            "JIRITSU_MASTER_BOT__MAIN_MEMBER_ID": str(UIDS["main"]),
            "JIRITSU_SUB_BOTS__SUBBOT_C__MEMBER_ID": str(UIDS["SubBot-C"]),
        }
    )
    ex.transfer(to_bot("5"))
    assert [r.path for r in env.fake.requests] == [TRANSFER]


def test_bot_profit_back_to_the_main_fund_wallet(env: BybitEnv):
    ex = env.exchange()
    req = TransferRequest(
        new_transfer_id(), "USDT", Decimal("25.5"), "SubBot-A", MAIN, "UNIFIED", "FUND"
    )
    assert ex.transfer(req).status == "success"
    assert env.fake.balance("main", account_type="FUND") == Decimal("525.5")
    assert env.fake.balance("SubBot-A") == Decimal("974.5")


def test_accept_then_drop_on_transfer_returns_it_exactly_once(env: BybitEnv):
    env.fake.inject(TRANSFER, "accept_then_drop")
    ex = env.exchange()
    req = to_bot("50")
    result = ex.transfer(req)
    assert (result.transfer_id, result.status) == (req.transfer_id, "success")
    assert [(c.fault, c.ret_code) for c in env.calls(TRANSFER)] == [
        ("accept_then_drop", 0),
        (None, 131214),
    ]
    assert len(env.fake.transfers) == 1
    assert env.fake.balance("SubBot-C") == 1050


def test_a_resent_transfer_id_is_already_done(env: BybitEnv):
    ex = env.exchange()
    req = to_bot("10")
    ex.transfer(req)
    assert env.exchange().transfer(req).status == "success"  # e.g. after a restart
    assert len(env.fake.transfers) == 1
    assert env.fake.balance("SubBot-C") == 1010


def test_a_transfer_id_reused_for_another_transfer_is_refused(env: BybitEnv):
    ex = env.exchange()
    req = to_bot("10")
    ex.transfer(req)
    with pytest.raises(OrderRejected, match="different transfer"):
        ex.transfer(to_bot("20", tid=req.transfer_id))
    assert len(env.fake.transfers) == 1


def test_insufficient_transfer_balance(env: BybitEnv):
    ex = env.exchange()
    with pytest.raises(InsufficientBalance) as exc:
        ex.transfer(to_bot("501"))
    assert exc.value.code == 131212
    assert len(env.calls(TRANSFER)) == 1  # not retried
    assert env.fake.transfers == []


def test_transfer_amount_is_rounded_down_and_checked(env: BybitEnv):
    ex = env.exchange()
    result = ex.transfer(to_bot("10.123456"))
    assert result.detail == "amount rounded down to 10.1234"
    assert json.loads(env.calls(TRANSFER)[0].body)["amount"] == "10.1234"
    assert env.fake.balance("SubBot-C") == Decimal("1010.1234")
    with pytest.raises(OrderRejected, match="not positive"):
        ex.transfer(to_bot("0.00001"))
    with pytest.raises(OrderRejected, match="UUID"):
        ex.transfer(to_bot("1", tid="not-a-uuid"))
    with pytest.raises(OrderRejected, match="same"):
        ex.transfer(
            TransferRequest(new_transfer_id(), "USDT", Decimal(1), MAIN, MAIN, "FUND", "FUND")
        )
    assert len(env.calls(TRANSFER)) == 1


def test_get_transfer(env: BybitEnv):
    ex = env.exchange()
    req = to_bot("7")
    ex.transfer(req)
    found = ex.get_transfer(req.transfer_id)
    assert found is not None
    assert (found.transfer_id, found.status) == (req.transfer_id, "success")
    assert ex.get_transfer(str(uuid.uuid4())) is None


def test_sub_accounts(env: BybitEnv):
    subs = env.exchange().sub_accounts()
    assert subs == [
        SubAccount(UIDS[name], name, "normal") for name in ("SubBot-A", "SubBot-B", "SubBot-C")
    ]


def test_main_key_is_required_for_transfers(env: BybitEnv):
    from jiritsu.errors import UsageError

    ex = env.exchange(keys={MAIN: None}, require_keys=False)
    with pytest.raises(UsageError, match="BYBIT_MASTER_API_KEY"):
        ex.transfer(to_bot("1"))
    assert env.calls(TRANSFER) == []
