"""Fixtures for the dashboard: a seeded SQLite database, config files and a real server process.

The server is ``jiritsu dashboard serve`` started as a subprocess on 127.0.0.1 and a free port;
tests talk to it over HTTP with ``requests`` (cookies, CSRF token and all), as a browser would.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import REPO

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PASSWORD = "correct horse battery staple"
HASH_ENV = "JIRITSU_DASHBOARD_PASSWORD_HASH"
SEED_END = datetime(2026, 3, 1, tzinfo=timezone.utc)
BOTS = ("SubBot-A", "SubBot-B", "SubBot-C")
START_TIMEOUT_S = 60


@pytest.fixture(scope="session")
def password_hash() -> str:
    """The hash of :data:`PASSWORD` (made once: 480 000 PBKDF2 rounds take a moment)."""
    from jiritsu.dashboard.serve import hash_password

    return hash_password(PASSWORD)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with 20 days of synthetic activity (copied per test)."""
    from jiritsu.dashboard.seed import seed_database

    path = tmp_path_factory.mktemp("seeded") / "jiritsu.db"
    seed_database(f"sqlite:///{path}", days=20, end=SEED_END, decision_minutes=30)
    return path


@pytest.fixture
def seeded_db(seeded_template: Path, tmp_path: Path) -> Path:
    """This test's own copy of the seeded database (WAL mode, like production)."""
    path = tmp_path / "db" / "jiritsu.db"
    path.parent.mkdir()
    shutil.copy(seeded_template, path)
    return path


def write_config(path: Path, db_url: str, **dashboard: Any) -> Path:
    """The shipped config.toml with the database URL and ``[dashboard]`` keys replaced."""
    import tomli_w

    data = tomllib.loads((REPO / "config.toml").read_text(encoding="utf-8"))
    data["database"]["db_url"] = db_url
    data["database"]["db_type"] = "sqlite" if db_url.startswith("sqlite") else "postgresql"
    data["database"]["reconnect_attempts"] = 1
    data["dashboard"].update(dashboard)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running dashboard process and what it printed."""

    proc: subprocess.Popen[str]
    port: int
    log_path: Path
    session: requests.Session = field(default_factory=requests.Session)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        return self.session.get(self.url(path), **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def csrftoken(self, path: str = "/-/login") -> str:
        page = self.get(path)
        match = re.search(r'name="csrftoken" value="([^"]+)"', page.text)
        assert match, f"no CSRF token on {path}: {page.status_code}"
        return match.group(1)

    def login(self, username: str = "operator", password: str = PASSWORD) -> requests.Response:
        token = self.csrftoken()
        return self.session.post(
            self.url("/-/login"),
            data={"username": username, "password": password, "csrftoken": token},
            allow_redirects=False,
            timeout=30,
        )


def wait_until_up(proc: subprocess.Popen[str], port: int, log_path: Path) -> None:
    """Poll the login page until it answers; fail (with the server's output) on exit/timeout."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            requests.get(f"http://127.0.0.1:{port}/-/login", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail(f"server did not answer within {START_TIMEOUT_S} s:\n{log_path.read_text()}")


def clean_env(data_dir: Path) -> dict[str, str]:
    """The environment for a server: no JIRITSU_* of the machine, its own data dir."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("JIRITSU_") or k == "JIRITSU_TEST_PG_URL"
    }
    env["JIRITSU_GENERAL__DATA_DIR"] = str(data_dir)
    return env


class ServerFactory:
    """Starts ``jiritsu dashboard serve`` processes in ``workdir``; :meth:`stop_all` ends them."""

    def __init__(self, workdir: Path, password_hash: str) -> None:
        self.workdir = workdir
        self.password_hash = password_hash
        self.started: list[Server] = []

    def __call__(
        self,
        db_url: str,
        *,
        env: dict[str, str] | None = None,
        argv: list[str] | None = None,
        **dashboard: Any,
    ) -> Server:
        port = free_port()
        n = len(self.started)
        config = write_config(self.workdir / f"config-{n}.toml", db_url, **dashboard)
        log_path = self.workdir / f"server-{n}.log"
        full_env = {**clean_env(self.workdir / "data"), HASH_ENV: self.password_hash}
        full_env.update(env or {})
        cmd = argv or [
            sys.executable,
            "-m",
            "jiritsu_cli.main",
            "--config",
            str(config),
            "dashboard",
            "serve",
            "--port",
            str(port),
        ]
        cmd = [part.replace("{port}", str(port)) for part in cmd]
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                text=True,
                cwd=self.workdir,
            )
        server = Server(proc=proc, port=port, log_path=log_path)
        self.started.append(server)
        wait_until_up(proc, port, log_path)
        return server

    def stop_all(self) -> None:
        for server in self.started:
            server.session.close()
            if server.proc.poll() is None:
                server.proc.terminate()
                try:
                    server.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.proc.kill()
                    server.proc.wait(timeout=10)


StartServer = ServerFactory


def assert_pnl_is_numeric(server: Server, exact: dict[int, Decimal], first: int = 10) -> None:
    """``trade_history`` filters ``pnl < -1`` and sorts by pnl as the exact values would."""
    below = sorted(i for i, pnl in exact.items() if pnl < -1)
    assert below
    rows = server.get("/jiritsu/trade_history.json?_shape=array&_size=max&pnl__lt=-1").json()
    assert sorted(row["id"] for row in rows) == below
    ascending = server.get(
        f"/jiritsu/trade_history.json?_shape=array&_size={first}&_sort=pnl&pnl__notblank=1"
    ).json()
    want = sorted(exact.items(), key=lambda item: (item[1], item[0]))[:first]
    assert [row["id"] for row in ascending] == [i for i, _ in want]
    assert ascending[0]["pnl"] == pytest.approx(float(want[0][1]))


@pytest.fixture
def start_server(tmp_path: Path, password_hash: str) -> Iterator[ServerFactory]:
    """start(db_url, **dashboard_keys) -> a running server for this test; stopped after it."""
    factory = ServerFactory(tmp_path, password_hash)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def module_servers(
    tmp_path_factory: pytest.TempPathFactory, password_hash: str
) -> Iterator[ServerFactory]:
    """Like ``start_server``, for servers that a whole module shares (read-only tests)."""
    factory = ServerFactory(tmp_path_factory.mktemp("servers"), password_hash)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def shared_db(seeded_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the seeded database for one module's shared server."""
    path = tmp_path_factory.mktemp("shared") / "jiritsu.db"
    shutil.copy(seeded_template, path)
    return path


@pytest.fixture(scope="module")
def shared_server(module_servers: ServerFactory, shared_db: Path) -> Server:
    """One dashboard over the seeded database (127.0.0.1 allowed) for a whole module."""
    return module_servers(f"sqlite:///{shared_db}", allowed_ips=["127.0.0.1"])


@pytest.fixture
def server(shared_server: Server) -> Iterator[Server]:
    """The module's server with a fresh, anonymous session."""
    shared_server.session = requests.Session()
    yield shared_server
    shared_server.session.close()


@pytest.fixture(scope="module")
def operator_session(shared_server: Server) -> requests.Session:
    """A session logged in as the operator, kept for the module (logging in costs a hash)."""
    session = requests.Session()
    probe = Server(proc=shared_server.proc, port=shared_server.port,
                   log_path=shared_server.log_path, session=session)  # fmt: skip
    response = probe.login()
    assert response.status_code == 302, response.text
    return session


@pytest.fixture
def operator(shared_server: Server, operator_session: requests.Session) -> Server:
    """The module's server with the logged-in operator session."""
    return Server(
        proc=shared_server.proc,
        port=shared_server.port,
        log_path=shared_server.log_path,
        session=operator_session,
    )
