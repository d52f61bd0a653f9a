"""End-to-end runs of the real console script: status, exit codes, and no secret in any output."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from jiritsu.db.engine import make_engine
from jiritsu.db.models import Control
from tests.conftest import REPO
from tests.fakes.discord import FakeDiscord
from tests.processes import jiritsu_env, run_jiritsu

SECRETS = {
    "BYBIT_MASTER_API_KEY": "mk-SECRETmasterkey01",
    "BYBIT_MASTER_API_SECRET": "ms-SECRETmastersecret02",
    "BYBIT_SUBBOT_A_API_KEY": "ak-SECRETbotakey03",
    "BYBIT_SUBBOT_A_API_SECRET": "as-SECRETbotasecret04",
    "GEMINI_API_KEYS": "gk-SECRETgeminione05,gk-SECRETgeminitwo06",
    "JIRITSU_DASHBOARD_PASSWORD_HASH": "pbkdf2_sha256$480000$SECRETsalt07$SECREThash08",
}


@pytest.fixture
def env(isolated_env: Path) -> dict[str, str]:
    return jiritsu_env(isolated_env)


def test_status_shows_halts_and_exits_1_until_the_schema_exists(env: dict[str, str]) -> None:
    data_dir = Path(env["JIRITSU_GENERAL__DATA_DIR"])
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "jiritsu.db").touch()  # an empty, never migrated database
    before = run_jiritsu(["status"], env)
    assert before.returncode == 1
    assert "jiritsu db upgrade" in before.stdout
    assert run_jiritsu(["db", "upgrade"], env).returncode == 0
    engine = make_engine(f"sqlite:///{env['JIRITSU_GENERAL__DATA_DIR']}/jiritsu.db")
    with Session(engine) as session, session.begin():
        now = datetime.now(timezone.utc)
        session.add(Control(scope="SubBot-B", halted=True, reason="manual test", halted_at=now))
    engine.dispose()
    after = run_jiritsu(["status"], env)
    assert after.returncode == 0, after.stderr
    assert "halted" in after.stdout
    assert "manual test" in after.stdout
    assert "MIGRATION" in after.stdout  # the upgrade left an event


def test_unreachable_database_exits_3_with_critical_log_and_no_traceback(
    env: dict[str, str],
) -> None:
    env = {
        **env,
        "JIRITSU_DATABASE__DB_TYPE": "postgresql",
        "JIRITSU_DATABASE__DB_URL": "postgresql://jiritsu:pw-SECRETdb09@127.0.0.1:1/jiritsu",
        "JIRITSU_DATABASE__RECONNECT_ATTEMPTS": "2",
        "JIRITSU_DATABASE__RECONNECT_BASE_DELAY_SECONDS": "0.01",
    }
    for args in (["status"], ["db", "current"], ["db", "upgrade"]):
        result = run_jiritsu(args, env)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stdout + result.stderr
        assert "[CRITICAL]" in result.stdout
        assert "pw-SECRETdb09" not in result.stdout + result.stderr
    logs = "".join(p.read_text() for p in Path(env["JIRITSU_GENERAL__DATA_DIR"]).rglob("*.log"))
    assert "[CRITICAL] [jiritsu.cli] database unreachable" in logs
    assert "pw-SECRETdb09" not in logs


def test_no_secret_reaches_any_output_of_a_run(env: dict[str, str]) -> None:
    """Scan stdout, stderr, the log files, the database file and what Discord received."""
    with FakeDiscord() as fake:
        env = {**env, **SECRETS, "DISCORD_WEBHOOK_URL": fake.url_for("42", "SECRETtoken10abc")}
        outputs = []
        for args in (
            ["config", "check"],
            ["config", "show"],
            ["config", "show", "--json"],
            ["db", "upgrade"],
            ["status"],
            ["status", "--json"],
            ["--debug", "config", "show"],
        ):
            result = run_jiritsu(args, env)
            assert result.returncode == 0, (args, result.stderr)
            outputs += [result.stdout, result.stderr]
        # An alert whose text quotes a secret, as an exception message might.
        code = (
            "from jiritsu.clock import wall_now\n"
            "from jiritsu.config import load_config\n"
            "from jiritsu.db.engine import make_engine\n"
            "from jiritsu.events import record_event\n"
            "from jiritsu.log import setup_file_logging\n"
            "from jiritsu.notify import build_notifier\n"
            "loaded = load_config()\n"
            "setup_file_logging(loaded.settings.general.data_dir)\n"
            "n = build_notifier(loaded.secrets.discord_webhook())\n"
            "record_event(make_engine(loaded.db_url), 'ERROR', 'EXCHANGE_ERROR',\n"
            f"    'signature failed for key {SECRETS['BYBIT_MASTER_API_KEY']}', notifier=n,\n"
            "    now=wall_now())\n"
        )
        py = REPO / ".venv" / "bin" / "python"
        alert = subprocess.run(
            [str(py), "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert alert.returncode == 0, alert.stderr
        outputs += [alert.stdout, alert.stderr]
        assert len(fake.messages) == 1
        sent = b"".join(r.body for r in fake.requests)
    data_dir = Path(env["JIRITSU_GENERAL__DATA_DIR"])
    files = b"".join(p.read_bytes() for p in data_dir.rglob("*") if p.is_file())
    assert b"EXCHANGE_ERROR" in files  # the event did reach the database and the log
    values = [v for s in SECRETS.values() for v in s.split(",")] + ["SECRETtoken10abc"]
    for value in values:
        assert all(value not in text for text in outputs), value
        assert value.encode() not in files, value
        assert value.encode() not in sent, value
    assert '"is_set": true' in "".join(outputs)  # config show says the secret is there
