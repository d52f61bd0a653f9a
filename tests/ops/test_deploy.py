"""scripts/deploy.sh end to end against a simulated server: git, tar, sh (dash on Debian) and
the remote command lines are real; ssh, sudo, systemd-run and systemctl are local stand-ins.

The release's ``scripts/_env.sh`` is a stand-in too (it links a .venv with a fake ``jiritsu``),
written like the real one: no shebang, ``set -euo pipefail``, so a deploy that ran it with ``sh``
would fail here as it would on the server."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

DEPLOY = REPO / "scripts" / "deploy.sh"

ENV_SH = """\
# Stand-in for scripts/_env.sh: sourced or run with bash, like the real one.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$ROOT/.venv/bin"
ln -sfn "$TEST_PYTHON" "$ROOT/.venv/bin/python"
install -m 0755 "$ROOT/scripts/jiritsu-stub" "$ROOT/.venv/bin/jiritsu"
if [ -n "${TEST_FAIL_BUILD:-}" ]; then echo "uv sync failed" >&2; exit 1; fi
"""
JIRITSU_STUB = """\
#!/bin/sh
release="$(cd "$(dirname "$0")/../.." && pwd -P)"
case "$1" in
  --version) echo "jiritsu test $(cat "$release/VERSION")" ;;
  db) echo "upgrade $(cat "$release/VERSION") cwd=$(pwd) config=$JIRITSU_CONFIG" \
"secret=${SERVER_SECRET:-unset} current=$(readlink "$TEST_APP/current" || echo none)" \
>>"$TEST_LOG" ;;
esac
"""
STANDINS = {
    # ssh [options] -- user@host COMMAND: run COMMAND in the login shell (bash) here.
    "ssh": 'exec bash -c "${!#}"\n',
    "sudo": '[ "$1" = -n ] && shift\nexec "$@"\n',
    # systemd-run: apply the environment file, working directory and variables, then run.
    "systemd-run": """\
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  case "$1" in
    --setenv=*) export "${1#--setenv=}" ;;
    --property=WorkingDirectory=*) cd "${1#--property=WorkingDirectory=}" ;;
    --property=EnvironmentFile=*)
      f="${1#--property=EnvironmentFile=}"; f="${f#-}"
      if [ -f "$f" ]; then set -a; . "$f"; set +a; fi ;;
    --uid=*) echo "as ${1#--uid=}" >>"$TEST_LOG" ;;
  esac
  shift
done
shift
exec "$@"
""",
    "systemctl": 'echo "systemctl $*" >>"$TEST_LOG"\n',
}


@dataclass
class Server:
    root: Path
    origin: Path
    app: Path
    data: Path
    log: Path
    env: dict[str, str]

    def commit(self, version: str) -> str:
        (self.origin / "VERSION").write_text(version)
        git = ["git", "-C", str(self.origin), "-c", "user.name=t", "-c", "user.email=t@t"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", version], check=True)
        return subprocess.run(
            [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()

    def deploy(self, sha: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DEPLOY), *args, "staging", sha],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )

    def link(self, name: str) -> str | None:
        path = self.app / name
        return os.readlink(path) if path.is_symlink() else None

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def server(tmp_path: Path) -> Server:
    origin = tmp_path / "origin"
    for sub in ("scripts", "lib/pkg", "cli", "migrations"):
        (origin / sub).mkdir(parents=True)
    (origin / "scripts" / "_env.sh").write_text(ENV_SH)
    (origin / "scripts" / "_env.sh").chmod(0o755)
    (origin / "scripts" / "jiritsu-stub").write_text(JIRITSU_STUB)
    for sub in ("lib/pkg", "cli", "migrations"):
        (origin / sub / "mod.py").write_text("X = 1\n")
    subprocess.run(["git", "init", "-q", str(origin)], check=True)
    app = tmp_path / "app"
    app.mkdir()
    subprocess.run(
        ["git", "clone", "-q", str(origin), str(app / "repo")],
        check=True,
        env={**os.environ, "GIT_TEMPLATE_DIR": ""},
    )
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in STANDINS.items():
        (bindir / name).write_text("#!/usr/bin/env bash\n" + body)
        (bindir / name).chmod(0o755)
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "config.toml"
    config.write_text("")
    env_file = tmp_path / "jiritsu.env"
    env_file.write_text("SERVER_SECRET=from-the-env-file\n")
    log = tmp_path / "server.log"
    env = {
        "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LC_ALL": "C",
        "DEPLOY_HOST": "server.example.invalid",
        "DEPLOY_USER": "root",
        "DEPLOY_APP_DIR": str(app),
        "DEPLOY_DATA_DIR": str(data),
        "DEPLOY_CONFIG": str(config),
        "DEPLOY_ENV_FILE": str(env_file),
        "DEPLOY_SETTLE_SECONDS": "0",
        "DEPLOY_UNITS": "jiritsu-trade.service",
        "TEST_PYTHON": sys.executable,
        "TEST_APP": str(app),
        "TEST_LOG": str(log),
    }
    return Server(tmp_path, origin, app, data, log, env)


def test_deploys_switch_releases_after_migrating_and_keep_the_previous_one(
    server: Server,
) -> None:
    first = server.commit("v1")
    done = server.deploy(first)
    assert done.returncode == 0, done.stdout + done.stderr
    assert server.link("current") == f"releases/{first}"
    assert server.link("previous") is None
    release = server.app / "releases" / first
    assert (release / "VERSION").read_text() == "v1"
    assert list((release / "lib" / "pkg" / "__pycache__").glob("mod.*.pyc")), "bytecode compiled"
    assert server.lines() == [
        "as jiritsu",
        f"upgrade v1 cwd={server.data} config={server.root / 'config.toml'} "
        "secret=from-the-env-file current=none",
        "systemctl restart jiritsu-trade.service",
        "systemctl is-active jiritsu-trade.service",
    ]

    # A non-root SSH user: every step goes through `sudo -n sh -c '...'` (dash on Debian).
    second = server.commit("v2")
    server.log.unlink()
    done = server.deploy(second, DEPLOY_USER="deploy")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (server.link("current"), server.link("previous")) == (
        f"releases/{second}",
        f"releases/{first}",
    )
    # The new release migrated while the old one was still current.
    assert f"upgrade v2 cwd={server.data}" in server.lines()[1]
    assert server.lines()[1].endswith(f"current=releases/{first}")

    again = server.deploy(second, DEPLOY_USER="deploy")
    assert again.returncode == 0, again.stderr
    assert server.link("previous") == f"releases/{first}", "a redeploy keeps the rollback target"


def test_a_failed_build_changes_nothing_and_old_releases_are_pruned(server: Server) -> None:
    shas = [server.commit(f"v{i}") for i in (1, 2, 3)]
    for sha in shas[:2]:
        assert server.deploy(sha).returncode == 0
    server.log.unlink()

    failed = server.deploy(shas[2], TEST_FAIL_BUILD="1")
    assert failed.returncode == 1
    assert "nothing was switched or restarted" in failed.stderr
    assert server.link("current") == f"releases/{shas[1]}"
    assert not any("upgrade" in line or "systemctl" in line for line in server.lines())

    done = server.deploy(shas[2], "--no-restart", DEPLOY_KEEP_RELEASES="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any("systemctl" in line for line in server.lines())
    assert server.link("current") == f"releases/{shas[2]}"
    releases = sorted(p.name for p in (server.app / "releases").iterdir())
    assert releases == sorted(shas[1:]), "current and previous are kept, older ones deleted"


def test_an_unknown_commit_stops_before_anything_changes(server: Server) -> None:
    server.commit("v1")
    done = server.deploy("f" * 40)
    assert done.returncode == 1
    assert "nothing was changed" in done.stderr
    assert not (server.app / "releases").exists()
    assert server.lines() == []


def test_the_default_units_are_the_long_running_services_of_systemd_dir(server: Server) -> None:
    env = {k: v for k, v in server.env.items() if k != "DEPLOY_UNITS"}
    done = subprocess.run(
        [str(DEPLOY), "--dry-run", "production", "a" * 40],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "units: jiritsu-dashboard.service jiritsu-trade.service" in done.stdout
