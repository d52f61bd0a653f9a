"""``jiritsu`` as a process of its own, as cron, systemd and a shell start it: one place for the
executable, the environment such a process starts from and the way a test runs one."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.conftest import REPO
from tests.exchange.bybit_env import ENV_NAMES, KEYS

if TYPE_CHECKING:
    from tests.fakes.bybit import FakeBybit

JIRITSU = str(REPO / ".venv" / "bin" / "jiritsu")
_MACHINE = ("JIRITSU_", "BYBIT_")  # the developer's settings and keys never reach a test
_DROPPED = {"GEMINI_API_KEYS", "HTTP_PROXY", "HTTPS_PROXY"}  # a proxy would take loopback calls


def jiritsu_env(data_dir: Path, *layers: Mapping[str, str], **extra: str) -> dict[str, str]:
    """A ``jiritsu`` process's environment: this one's without any JIRITSU_*/BYBIT_* variable
    (but the test PostgreSQL URL), Gemini key or proxy; then the shipped config.toml and
    ``data_dir``; then ``layers`` and ``extra``, later ones winning."""
    env = {
        k: v
        for k, v in os.environ.items()
        if (not k.startswith(_MACHINE) or k == "JIRITSU_TEST_PG_URL") and k.upper() not in _DROPPED
    }
    env["JIRITSU_CONFIG"] = str(REPO / "config.toml")
    env["JIRITSU_GENERAL__DATA_DIR"] = str(data_dir)
    for layer in layers:
        env.update(layer)
    env.update(extra)
    return env


def fake_bybit_env(fake: FakeBybit, environment: str = "testnet") -> dict[str, str]:
    """``environment`` on the loopback Bybit fake: its endpoint and CA, every account's keys."""
    env = {
        "JIRITSU_GENERAL__ENVIRONMENT": environment,
        "JIRITSU_EXCHANGE__BASE_URL": fake.endpoint,
        "JIRITSU_EXCHANGE__CA_FILE": str(fake.ca_path),
    }
    for account, (key_env, secret_env) in ENV_NAMES.items():
        env[key_env], env[secret_env] = KEYS[account]
    return env


def run_jiritsu(
    args: Sequence[str], env: Mapping[str, str], *, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``jiritsu ARGS`` to its end, output captured as text; the exit code is the test's to
    check (a timeout fails the test instead of hanging it)."""
    return subprocess.run(
        [JIRITSU, *args], env=dict(env), input=stdin, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def start_jiritsu(args: Sequence[str], env: Mapping[str, str], **popen: Any) -> subprocess.Popen:
    """``jiritsu ARGS`` started in the background (a loop, a server); the test ends it."""
    return subprocess.Popen([JIRITSU, *args], env=dict(env), **popen)
