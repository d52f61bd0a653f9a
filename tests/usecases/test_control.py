"""The operator's controls as library use-cases (the CLI and the dashboard call these)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from jiritsu import controls
from jiritsu.clock import SimClock
from jiritsu.config import LoadedConfig, load_config
from jiritsu.errors import UsageError
from jiritsu.notify import build_notifier
from jiritsu.usecases import control
from tests.conftest import REPO
from tests.fakes.discord import FakeDiscord

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
CLOCK = SimClock(NOW)
ALICE = control.Requester("alice", via="dashboard", address="10.1.2.3")


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


def configured(data_dir: Path, db_url: str) -> LoadedConfig:
    environ = {
        "JIRITSU_GENERAL__DATA_DIR": str(data_dir),
        "JIRITSU_DATABASE__DB_URL": db_url,
        "JIRITSU_DATABASE__DB_TYPE": "sqlite" if db_url.startswith("sqlite") else "postgresql",
        "JIRITSU_EXCHANGE__BASE_URL": "http://127.0.0.1:9",
        "JIRITSU_EXCHANGE__MAX_RETRIES": "0",
    }
    return load_config(REPO / "config.toml", environ=environ)


def events(engine: Engine) -> list[tuple[str, str, str, dict]]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select level, event_type, message, details from system_events order by id")
        ).all()
    import json

    return [(r[0], r[1], r[2], r[3] if isinstance(r[3], dict) else json.loads(r[3])) for r in rows]


def test_halt_and_resume_record_who_and_where_and_alert(
    engine: Engine, db_url: str, isolated_env: Path, discord: FakeDiscord
) -> None:
    settings = configured(isolated_env, db_url).settings
    notifier = build_notifier(discord.url_for(), min_level="WARNING")
    done = control.halt(engine, settings, bot="SubBot-B", reason="manual: news", by=ALICE,
                        clock=CLOCK, notifier=notifier)  # fmt: skip
    assert (done.action, done.scope, done.changed) == ("halt", "SubBot-B", True)
    state = controls.state(engine, "SubBot-B", now=NOW)
    assert (state.halted, state.halted_by, state.reason) == (True, "alice", "manual: news")
    assert not controls.halted(engine, "SubBot-A", now=NOW).halted

    again = control.halt(engine, settings, bot="SubBot-B", reason="twice", by=ALICE, clock=CLOCK)
    assert not again.changed
    assert controls.state(engine, "SubBot-B", now=NOW).reason == "manual: news"

    lifted = control.resume(engine, settings, bot="SubBot-B", by=ALICE, clock=CLOCK,
                            notifier=notifier)  # fmt: skip
    assert lifted.changed
    assert not controls.state(engine, "SubBot-B", now=NOW).halted
    assert not control.resume(engine, settings, bot="SubBot-B", by=ALICE, clock=CLOCK).changed

    halt, resume = events(engine)
    assert halt[:3] == (
        "WARNING", "HALT", "SubBot-B halted by alice (dashboard from 10.1.2.3): manual: news"
    )  # fmt: skip
    assert (halt[3]["by"], halt[3]["address"]) == ("alice", "10.1.2.3")
    assert resume[:3] == (
        "WARNING",
        "RESUME",
        "SubBot-B resumed by alice (dashboard from 10.1.2.3)",
    )
    titles = [m["embeds"][0]["title"] for m in discord.messages]
    assert [("HALT" in titles[0]), ("RESUME" in titles[1])] == [True, True]
    assert len(titles) == 2


def test_a_halt_needs_a_known_bot_and_a_reason(sqlite_engine: Engine, isolated_env: Path) -> None:
    settings = configured(isolated_env, "sqlite:///x.db").settings
    with pytest.raises(UsageError, match="no bot named 'SubBot-X'"):
        control.halt(sqlite_engine, settings, bot="SubBot-X", reason="x", by=ALICE, clock=CLOCK)
    with pytest.raises(UsageError, match="needs a reason"):
        control.halt(sqlite_engine, settings, bot=None, reason="  ", by=ALICE, clock=CLOCK)
    assert controls.all_states(sqlite_engine) == []


def test_flatten_halts_reports_and_names_the_requester(
    sqlite_engine: Engine, sqlite_url: str, isolated_env: Path
) -> None:
    loaded = configured(isolated_env, sqlite_url)
    result = control.flatten(sqlite_engine, loaded, bot=None, by=ALICE, clock=CLOCK)
    assert result.report is not None
    assert [line.action for line in result.report.lines] == ["flat"] * len(loaded.settings.sub_bots)
    assert result.message.startswith("global flattened: 0 order(s) cancelled, 0 position(s)")
    assert controls.halted(sqlite_engine, now=NOW).halted
    assert [s.scope for s in control.halt_states(sqlite_engine)] == ["global"]
    ((level, kind, message, details),) = events(sqlite_engine)
    assert (level, kind) == ("CRITICAL", "HALT")
    assert message.endswith("(by alice (dashboard from 10.1.2.3))")
    assert details["requested_by"] == "alice (dashboard from 10.1.2.3)"
