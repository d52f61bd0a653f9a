"""``jiritsu doctor`` against the loopback Bybit fake through pybit's real client: the three
sub-accounts with their UIDs and balances, a configured member_id that does not exist, keys with
the wrong role, permissions, IP binding or expiry, the clock, the database, Discord, exit codes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from jiritsu.config import LoadedConfig, load_config
from jiritsu.db import migrate
from jiritsu.ops.doctor import DoctorReport, run_doctor
from tests.conftest import REPO
from tests.exchange.bybit_env import KEYS, UIDS
from tests.fakes.bybit import ApiKeySettings, FakeBybit
from tests.fakes.discord import FakeDiscord
from tests.processes import fake_bybit_env, jiritsu_env, run_jiritsu


def start_fake(fake: FakeBybit, keys: dict[str, ApiKeySettings] | None = None) -> None:
    keys = keys or {}
    fake.add_account("main", UIDS["main"], *KEYS["main"], usdt=5000, master=True,
                     api_key=keys.get("main"))  # fmt: skip
    for i, bot in enumerate(("SubBot-A", "SubBot-B", "SubBot-C")):
        fake.add_account(bot, UIDS[bot], *KEYS[bot], usdt=Decimal(1000 + 100 * i),
                         username=f"jiritsu-{bot[-1].lower()}", api_key=keys.get(bot))  # fmt: skip


def environ(fake: FakeBybit, data_dir: Path, **extra: str) -> dict[str, str]:
    env = jiritsu_env(
        data_dir,
        fake_bybit_env(fake),
        JIRITSU_MASTER_BOT__MAIN_MEMBER_ID=str(UIDS["main"]),
        JIRITSU_DATABASE__RECONNECT_ATTEMPTS="1",
    )
    for bot in ("SubBot-A", "SubBot-B", "SubBot-C"):
        stem = bot.upper().replace("-", "_")
        env[f"JIRITSU_SUB_BOTS__{stem}__MEMBER_ID"] = str(UIDS[bot])
    env.update(extra)
    return env


def loaded_for(env: dict[str, str]) -> LoadedConfig:
    return load_config(REPO / "config.toml", environ=env)


@pytest.fixture
def data_dir(isolated_env: Path) -> Path:
    migrate.upgrade(f"sqlite:///{isolated_env / 'jiritsu.db'}")
    return isolated_env


@pytest.fixture
def fake() -> Iterator[FakeBybit]:
    with FakeBybit() as running:
        yield running
        assert running.internal_errors == []


def statuses(report: DoctorReport) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in report.findings:
        found.setdefault(f.check, []).append(f.status)
    return found


def test_a_complete_testnet_setup_is_ready_and_lists_the_three_sub_accounts(
    fake: FakeBybit, data_dir: Path
) -> None:
    start_fake(fake)
    report = run_doctor(loaded_for(environ(fake, data_dir)))
    assert report.ready, [f for f in report.findings if f.status == "bad"]
    assert int(report.exit_code) == 0
    assert report.sub_accounts is not None
    subs = {(s.uid, s.username, s.bot, s.balance_usdt) for s in report.sub_accounts}
    assert subs == {
        (1002, "jiritsu-a", "SubBot-A", Decimal(1000)),
        (1003, "jiritsu-b", "SubBot-B", Decimal(1100)),
        (1004, "jiritsu-c", "SubBot-C", Decimal(1200)),
    }
    found = statuses(report)
    for label in ("master key", "SubBot-A key", "SubBot-B key", "SubBot-C key"):
        assert found[label] == ["ok"], label
    assert found["clock"] == ["ok"]
    assert found["database"] == ["ok"]
    assert found["discord"] == ["warn"]  # testnet: no webhook is a warning, not a blocker
    # Each key was asked about itself, with its own key, through pybit.
    asked = {r.account for r in fake.requests if r.path == "/v5/user/query-api"}
    assert asked == {"main", "SubBot-A", "SubBot-B", "SubBot-C"}
    assert not [r for r in fake.requests if r.method == "POST"], "doctor must not write"


def test_a_member_id_that_does_not_exist_is_flagged_with_the_real_uids(
    fake: FakeBybit, data_dir: Path
) -> None:
    start_fake(fake)
    env = environ(fake, data_dir, JIRITSU_SUB_BOTS__SUBBOT_B__MEMBER_ID="999999")
    report = run_doctor(loaded_for(env))
    assert not report.ready
    assert int(report.exit_code) == 1
    (missing,) = [f for f in report.findings if f.check == "config sub_bots[1].member_id"]
    assert missing.status == "bad"
    assert "UID 999999 is not a sub-account of this master" in missing.message
    assert "1003 (jiritsu-b)" in missing.message
    (key,) = [f for f in report.findings if f.check == "SubBot-B key"]
    assert "belongs to UID 1003, but its member_id is 999999" in key.message
    assert "set SubBot-B's member_id = 1003" in " ".join(report.fixes)
    assert report.sub_accounts is not None
    assert {s.uid: s.bot for s in report.sub_accounts}[1003] is None


def test_keys_with_the_wrong_role_permissions_binding_or_expiry_are_named(
    fake: FakeBybit, data_dir: Path
) -> None:
    now_ms = int(time.time() * 1000)
    start_fake(
        fake,
        {
            "SubBot-A": ApiKeySettings(read_only=True),
            "SubBot-B": ApiKeySettings(
                permissions={"ContractTrade": [], "Spot": [], "Wallet": ["Withdraw"]}
            ),
            "SubBot-C": ApiKeySettings(ips=["203.0.113.7"]),  # not this machine
            "main": ApiKeySettings(expires_at_ms=now_ms + 3 * 86_400_000),
        },
    )
    report = run_doctor(loaded_for(environ(fake, data_dir)))
    assert int(report.exit_code) == 1
    by_check: dict[str, list[str]] = {}
    for f in report.findings:
        by_check.setdefault(f.check, []).append(f"{f.status}: {f.message} -> {f.fix}")
    text = json.dumps(by_check)
    assert "bad: UID 1002: is read-only" in text
    assert any("may withdraw" in line for line in by_check["SubBot-B key"])
    assert any("bound to other IPs" in line for line in by_check["SubBot-C key"])
    assert any(line.startswith("warn:") and "expires on" in line for line in by_check["master key"])


def test_outside_paper_missing_keys_and_uids_are_each_a_line_to_fix(
    fake: FakeBybit, data_dir: Path
) -> None:
    start_fake(fake)
    env = environ(fake, data_dir)
    for name in ("BYBIT_SUBBOT_C_API_KEY", "BYBIT_SUBBOT_C_API_SECRET",
                 "JIRITSU_SUB_BOTS__SUBBOT_A__MEMBER_ID"):  # fmt: skip
        del env[name]
    report = run_doctor(loaded_for(env))
    assert int(report.exit_code) == 1
    fixes = "\n".join(report.fixes)
    assert "BYBIT_SUBBOT_C_API_KEY and BYBIT_SUBBOT_C_API_SECRET are not set" in fixes
    assert "sub_bots[0].member_id" in fixes
    assert "SubBot-C key" not in statuses(report)  # no key: nothing to ask


def test_cli_exit_codes_json_and_a_discord_test_message(
    fake: FakeBybit, data_dir: Path, tmp_path: Path
) -> None:
    start_fake(fake)
    with FakeDiscord() as discord:
        env = environ(fake, data_dir, DISCORD_WEBHOOK_URL=discord.url_for("3", "tok-doctor"))
        ready = run_jiritsu(["doctor", "--notify"], env)
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert "testnet: ready" in ready.stdout
        assert "1002" in ready.stdout
        assert "jiritsu-c" in ready.stdout
        assert len(discord.messages) == 1  # only with --notify
        assert run_jiritsu(["doctor"], env).returncode == 0
        assert len(discord.messages) == 1

    bad = run_jiritsu(
        ["doctor", "--json"], {**env, "JIRITSU_SUB_BOTS__SUBBOT_B__MEMBER_ID": "424242"}
    )
    assert bad.returncode == 1, bad.stderr
    doc = json.loads(bad.stdout)
    assert doc["ready"] is False
    assert [s["uid"] for s in doc["sub_accounts"]] == [1002, 1003, 1004]
    assert any("424242" in line for line in doc["fixes"] + [f["message"] for f in doc["findings"]])
    for secret in (s for pair in KEYS.values() for s in pair):
        assert secret not in bad.stdout + bad.stderr

    no_db = run_jiritsu(
        ["doctor"], {**env, "JIRITSU_GENERAL__DATA_DIR": str(tmp_path / "elsewhere")}
    )
    assert no_db.returncode == 3, no_db.stdout + no_db.stderr
    assert "jiritsu db upgrade" in no_db.stdout
    assert "Traceback" not in no_db.stdout + no_db.stderr
