"""Static checks of CI and delivery, because GitHub Actions and Docker cannot run in the tests.

The workflows parse; every repository script they run exists and is executable; CI runs the
README's test command on every push; the image workflow builds the root Dockerfile on develop
and main; production deploys only from main, behind the ``production`` environment; no workflow
holds a literal secret; the Dockerfile copies only what the build context has; and
scripts/deploy.sh is exercised for real against a fake ``ssh``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
DOCKERFILE = REPO / "Dockerfile"
DEPLOY = REPO / "scripts" / "deploy.sh"

COMMIT = "0123456789abcdef" * 2 + "01234567"  # what the deploy jobs pass: a full commit sha
FAKE_TOKEN = "ghs_FakeRegistryToken0123456789abcdef"

# A token in a `run:` script that names a script of this repository.
SCRIPT_TOKEN = re.compile(r"(?<![\w./-])(?:\./)?((?:scripts|\.ci)/[\w./-]*\w)")
# Mapping keys whose values are credentials.
SECRET_KEY = re.compile(
    r"password|passwd|token|secret|credential|private.?key|ssh.?key|api.?key", re.I
)
SECRET_REF = re.compile(r"^\$\{\{\s*(secrets\.[A-Za-z_][A-Za-z0-9_]*|github\.token)\s*\}\}$")
CREDENTIAL_SHAPES = [
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    re.compile(r"://[^/\s:@${}]+:[^/\s@${}]+@"),  # user:password@ in a URL
]


# --- helpers ------------------------------------------------------------------------------------


def _workflows() -> dict[str, dict[Any, Any]]:
    found = {}
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(data, dict), f"{path.name} is not a YAML mapping"
        found[path.name] = data
    return found


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The ``on:`` section as a dict; YAML 1.1 reads the bare key ``on`` as the boolean True."""
    on = workflow.get("on", workflow.get(True))
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), "a workflow without triggers"
    return on


def _steps(workflow: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


def _runs(workflow: dict[Any, Any]) -> Iterator[tuple[str, str]]:
    for job_id, step in _steps(workflow):
        if "run" in step:
            yield job_id, str(step["run"])


def _walk(node: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, scalar value) pair, depth first; list items inherit their list's key."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, str(k))
    elif isinstance(node, list):
        for v in node:
            yield from _walk(v, key)
    else:
        yield key, node


def _environment(job: dict[str, Any]) -> str | None:
    env = job.get("environment")
    return env.get("name") if isinstance(env, dict) else env


def _expression(text: str) -> str:
    """An ``if:`` condition without ``${{ }}`` and with its whitespace collapsed."""
    text = text.strip()
    if text.startswith("${{") and text.endswith("}}"):
        text = text[3:-2]
    return " ".join(text.split())


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def _dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """Docker's .dockerignore matching: Go filepath.Match plus ``**`` for any directories."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
            continue
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i + 1)
            out += "[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]"
            i = end
        else:
            out += re.escape(c)
        i += 1
    return re.compile(out + r"\Z")


def _dockerignored(rel: str) -> bool:
    """Whether ``rel`` (or a directory above it) is left out of the build context."""
    excluded = False
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip().strip("/")
        regex = _dockerignore_regex(pattern)
        parts = rel.strip("/").split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(regex.match(p) for p in prefixes):
            excluded = not negate
    return excluded


def _uv_version_of_bootstrap() -> str:
    text = (REPO / "scripts" / "bootstrap.py").read_text(encoding="utf-8")
    match = re.search(r'^UV_VERSION = "([^"]+)"', text, re.M)
    assert match, "scripts/bootstrap.py no longer pins UV_VERSION"
    return match.group(1)


# --- workflows ----------------------------------------------------------------------------------


def test_every_workflow_parses_and_every_job_is_complete() -> None:
    workflows = _workflows()
    assert "ci.yml" in workflows
    assert len(workflows) >= 2, "the image/deploy workflow is missing"
    for name, wf in workflows.items():
        assert _triggers(wf), name
        assert wf.get("jobs"), f"{name}: no jobs"
        for job_id, job in wf["jobs"].items():
            where = f"{name}: job {job_id}"
            if "uses" in job:  # a reusable workflow of this repository
                target = str(job["uses"])
                assert target.startswith("./.github/workflows/"), where
                called = REPO / target
                assert called.is_file(), f"{where}: {target} does not exist"
                assert "workflow_call" in _triggers(workflows[called.name]), where
                continue
            assert job.get("runs-on"), f"{where}: no runs-on"
            assert job.get("steps"), f"{where}: no steps"
            for step in job["steps"]:
                assert ("run" in step) != ("uses" in step), f"{where}: {step}"
                if "uses" in step:
                    action, _, ref = str(step["uses"]).partition("@")
                    assert re.fullmatch(
                        r"v\d+(\.\d+)*|[0-9a-f]{40}", ref
                    ), f"{where}: {action} is not pinned to a version ({ref or 'no ref'})"


def test_ci_runs_the_test_script_on_every_push_with_postgresql() -> None:
    ci = _workflows()["ci.yml"]
    on = _triggers(ci)
    assert "push" in on
    push = on["push"] or {}
    assert not {"branches", "branches-ignore", "paths", "paths-ignore", "tags"} & set(
        push
    ), "CI must run on every push, not a filtered subset"
    assert "pull_request" in on

    jobs = [job for job in ci["jobs"].values() if "./scripts/test.sh" in str(job.get("steps"))]
    assert jobs, "no CI job runs ./scripts/test.sh"
    for job in jobs:
        pythons = job["strategy"]["matrix"]["python"]
        assert all(isinstance(v, str) for v in pythons), "quote versions: 3.10 reads as 3.1"
        assert {"3.10", "3.12"} <= set(pythons)
        services = job.get("services", {})
        assert any("postgres" in str(s.get("image", "")) for s in services.values())
        urls = [v for k, v in _walk(job) if k == "JIRITSU_TEST_PG_URL"]
        assert urls, "JIRITSU_TEST_PG_URL is not passed, tests would start pgserver"
        assert all(str(u).startswith("postgresql://") for u in urls)


def test_every_repository_script_a_workflow_runs_exists_and_is_executable() -> None:
    called: set[str] = set()
    for name, wf in _workflows().items():
        for job_id, script in _runs(wf):
            for rel in SCRIPT_TOKEN.findall(script):
                path = REPO / rel
                assert path.is_file(), f"{name}: job {job_id} runs {rel}, which does not exist"
                assert _is_executable(path), f"{name}: job {job_id} runs {rel}, not executable"
                called.add(rel)
    assert {"scripts/test.sh", "scripts/deploy.sh"} <= called, called
    for rel in sorted(called):
        path = REPO / rel
        if path.suffix == ".sh" or "bash" in path.read_text(encoding="utf-8").split("\n", 1)[0]:
            checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
            assert checked.returncode == 0, f"{rel}: {checked.stderr}"


def test_ci_entry_point_runs_the_test_script() -> None:
    run = REPO / ".ci" / "run"
    assert _is_executable(run)
    lines = run.read_text(encoding="utf-8").splitlines()
    commands = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert any("./scripts/test.sh" in shlex.split(line) for line in commands)


def test_image_workflow_builds_the_root_dockerfile_on_develop_and_main() -> None:
    builders = {
        name: wf
        for name, wf in _workflows().items()
        for _, step in _steps(wf)
        if str(step.get("uses", "")).startswith("docker/build-push-action@")
    }
    assert builders, "no workflow builds the Docker image"
    for name, wf in builders.items():
        on = _triggers(wf)
        assert {"develop", "main"} <= set((on.get("push") or {}).get("branches", [])), name
        assert not {"pull_request", "pull_request_target"} & set(
            on
        ), f"{name}: images are pushed, so pull requests must not trigger it"
        for job_id, step in _steps(wf):
            if not str(step.get("uses", "")).startswith("docker/build-push-action@"):
                continue
            args = step.get("with", {})
            context = REPO / str(args.get("context", "."))
            dockerfile = context / str(args.get("file", "Dockerfile"))
            assert dockerfile.resolve() == DOCKERFILE, f"{name}: builds {dockerfile}"
            assert DOCKERFILE.is_file()
            assert args.get("push") is True
            job = wf["jobs"][job_id]
            assert "ghcr.io/" in yaml.safe_dump(job), f"{name}: the image goes to ghcr.io"
            # Nothing is built from a commit that has not passed the tests.
            needs = job.get("needs", [])
            needs = [needs] if isinstance(needs, str) else needs
            assert any(
                str(wf["jobs"][n].get("uses", "")).endswith("/ci.yml") for n in needs
            ), f"{name}: job {job_id} does not wait for ci.yml"


def test_deploy_jobs_follow_git_flow() -> None:
    jobs = {
        (name, job_id): job
        for name, wf in _workflows().items()
        for job_id, job in wf["jobs"].items()
    }
    by_id = {job_id: (name, job) for (name, job_id), job in jobs.items()}
    assert "deploy-staging" in by_id
    assert "deploy-production" in by_id

    name, staging = by_id["deploy-staging"]
    assert _environment(staging) == "staging"
    assert _expression(staging["if"]) == "github.ref == 'refs/heads/develop'"

    name, production = by_id["deploy-production"]
    assert _environment(production) == "production"
    assert _expression(production["if"]) == "github.ref == 'refs/heads/main'"
    assert set(_triggers(_workflows()[name])) == {"push"}, "only pushes may reach production"

    for env, job in (("staging", staging), ("production", production)):
        needs = job["needs"] if isinstance(job["needs"], list) else [job["needs"]]
        assert "image" in needs
        calls = [
            shlex.split(line)
            for step in job["steps"]
            for line in str(step.get("run", "")).splitlines()
            if "scripts/deploy.sh" in line
        ]
        assert calls, f"deploy-{env} does not call scripts/deploy.sh"
        assert all(call[0] == "./scripts/deploy.sh" and call[1] == env for call in calls), calls

    # Nothing else may use the production environment or deploy to production.
    for (name, job_id), job in jobs.items():
        if job_id != "deploy-production":
            assert _environment(job) != "production", f"{name}: {job_id}"
            assert "deploy.sh production" not in str(job.get("steps")), f"{name}: {job_id}"


def test_no_workflow_holds_a_literal_secret() -> None:
    for path in sorted(WORKFLOWS.glob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        for shape in CREDENTIAL_SHAPES:
            assert not shape.search(text), f"{path.name}: looks like a credential: {shape.pattern}"
        wf = yaml.safe_load(text)
        for key, value in _walk(wf):
            # (A boolean is a switch, e.g. persist-credentials: false, never a credential.)
            if SECRET_KEY.search(key) and not isinstance(value, bool):
                assert isinstance(value, str), f"{path.name}: {key} holds a literal value"
                assert SECRET_REF.match(value), f"{path.name}: {key} must be a secrets reference"
            if isinstance(value, str) and "secrets." in value:
                assert SECRET_REF.match(value), f"{path.name}: {key}: secrets only as whole values"
        for job_id, script in _runs(wf):
            # Expressions are pasted into the script before bash reads it: secrets and event
            # data (branch names, titles) go through env: instead.
            assert not re.search(
                r"\$\{\{[^}]*(secrets\.|github\.event\.)", script
            ), f"{path.name}: job {job_id} interpolates a secret or event data into run:"


# --- Dockerfile ---------------------------------------------------------------------------------


def test_dockerfile_builds_the_checkout_as_a_non_root_runtime_image() -> None:
    instructions = _dockerfile_instructions()
    words = [word for word, _ in instructions]

    froms = [rest for word, rest in instructions if word == "FROM"]
    assert froms[0] == "python:3.12-slim"
    # The image's Python is one that CI tests.
    ci_pythons = next(
        job["strategy"]["matrix"]["python"]
        for job in _workflows()["ci.yml"]["jobs"].values()
        if "strategy" in job
    )
    assert froms[-1].split(":")[1].split("-")[0] in ci_pythons

    copies = [rest for word, rest in instructions if word in {"COPY", "ADD"}]
    assert copies
    for rest in copies:
        if rest.startswith("["):
            items = yaml.safe_load(rest)
        else:
            items = [t for t in shlex.split(rest) if not t.startswith("--")]
            assert not any(t.startswith("--from") for t in shlex.split(rest))
        *sources, _dest = items
        for source in sources:
            assert (REPO / source).exists(), f"COPY source {source} does not exist"
            if source not in {".", "./"}:
                assert not _dockerignored(source), f"COPY source {source} is in .dockerignore"

    # What the app and the editable install need at runtime is in the build context ...
    for needed in ["pyproject.toml", "uv.lock", "README.md", "config.toml", "lib", "cli"]:
        assert (REPO / needed).exists(), needed
        assert not _dockerignored(needed), f"{needed} is excluded from the image"
    for needed in ["migrations/env.py", "lib/jiritsu/resources.py"]:
        assert not _dockerignored(needed), f"{needed} is excluded from the image"
    # ... and local state, caches and secrets are not.
    for excluded in [".git", ".venv", ".tools", "var", "var/jiritsu.db", ".env", ".pytest_cache"]:
        assert _dockerignored(excluded), f"{excluded} would be sent to the Docker daemon"
    assert _dockerignored("lib/jiritsu/__pycache__/x.cpython-312.pyc")

    # The pinned uv of scripts/bootstrap.py, runtime dependencies only, from the lock.
    text = " ".join(rest for _, rest in instructions)
    arg_values = dict(
        rest.split("=", 1) for word, rest in instructions if word == "ARG" and "=" in rest
    )
    pins = re.findall(r"uv==([^\s\"']+)", text)
    assert pins
    resolved = {arg_values.get(p[2:-1], p) if p.startswith("${") else p for p in pins}
    assert resolved == {_uv_version_of_bootstrap()}
    syncs = [rest for word, rest in instructions if word == "RUN" and "uv sync" in rest]
    assert syncs
    for rest in syncs:
        assert "--locked" in rest
        assert "--extra" not in rest
        assert "--all-extras" not in rest
        assert "--no-editable" not in rest, "the app runs from its checkout: install editable"

    users = [rest for word, rest in instructions if word == "USER"]
    assert users
    assert users[-1] == "jiritsu"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN")
    entrypoint = [rest for word, rest in instructions if word == "ENTRYPOINT"]
    assert yaml.safe_load(entrypoint[-1]) == ["jiritsu"]
    cmd = [rest for word, rest in instructions if word == "CMD"]
    assert yaml.safe_load(cmd[-1]) == ["status"]
    env = " ".join(rest for word, rest in instructions if word == "ENV")
    assert "JIRITSU_GENERAL__DATA_DIR=/var/lib/jiritsu" in env
    assert any(w == "VOLUME" and "/var/lib/jiritsu" in r for w, r in instructions)


# --- scripts/deploy.sh --------------------------------------------------------------------------


@pytest.fixture
def fake_ssh(tmp_path: Path) -> Path:
    """A directory with an ``ssh`` that records each call (argv, stdin, environment)."""
    bindir = tmp_path / "bin"
    log = tmp_path / "ssh-calls"
    bindir.mkdir()
    log.mkdir()
    ssh = bindir / "ssh"
    ssh.write_text(
        "#!/usr/bin/env bash\n"
        f"log={shlex.quote(str(log))}\n"
        'n=$(( $(ls "$log" | wc -l) / 3 + 1 ))\n'
        'printf "%s\\n" "$@" >"$log/$n.argv"\n'
        'cat >"$log/$n.stdin"\n'
        'env >"$log/$n.env"\n'
        'if [[ -n "${FAKE_SSH_FAIL:-}" && "${!#}" == *"$FAKE_SSH_FAIL"* ]]; then exit 1; fi\n',
        encoding="utf-8",
    )
    ssh.chmod(0o755)
    return bindir


def _calls(fake_ssh: Path) -> list[dict[str, str]]:
    log = fake_ssh.parent / "ssh-calls"
    count = len(list(log.glob("*.argv")))
    return [
        {
            "argv": (log / f"{n}.argv").read_text(),
            "command": (log / f"{n}.argv").read_text().splitlines()[-1],
            "stdin": (log / f"{n}.stdin").read_text(),
            "env": (log / f"{n}.env").read_text(),
        }
        for n in range(1, count + 1)
    ]


def _deploy(
    fake_ssh: Path, *args: str, script: Path = DEPLOY, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": f"{fake_ssh}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(fake_ssh.parent),
        "LC_ALL": "C",
        "DEPLOY_HOST": "staging.example.invalid",
        "DEPLOY_USER": "deploy",
        "DEPLOY_SETTLE_SECONDS": "0",
    }
    base.update(env)
    full = {k: v for k, v in base.items() if v is not None and v != "<unset>"}
    return subprocess.run(
        [str(script), *args], env=full, capture_output=True, text=True, timeout=60
    )


def test_deploy_script_is_executable_strict_bash() -> None:
    assert _is_executable(DEPLOY)
    text = DEPLOY.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


def test_deploy_dry_run_prints_the_ssh_commands_and_runs_none(fake_ssh: Path) -> None:
    result = _deploy(
        fake_ssh,
        "--dry-run",
        "staging",
        COMMIT,
        DEPLOY_PORT="2222",
        DEPLOY_UNITS="jiritsu-trade.service jiritsu-master.service",
        DEPLOY_KNOWN_HOSTS="staging.example.invalid ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake",
        DEPLOY_REGISTRY_TOKEN=FAKE_TOKEN,  # left over by a caller: never needed, never shown
    )
    assert result.returncode == 0, result.stderr
    assert _calls(fake_ssh) == [], "a dry run must not run ssh"
    assert FAKE_TOKEN not in result.stdout + result.stderr

    ssh_lines = [line for line in result.stdout.splitlines() if line.startswith("+ ssh ")]
    assert len(ssh_lines) == 8, result.stdout
    for line in ssh_lines:
        assert "-- deploy@staging.example.invalid " in line
        assert "-p 2222" in line
        assert "-o BatchMode=yes" in line
        assert "-o StrictHostKeyChecking=yes" in line
        assert "-o UserKnownHostsFile=" in line
        assert "deploy@staging.example.invalid sudo -n sh -c '" in line, "non-root: sudo -n"

    def where(fragment: str) -> int:
        return next(i for i, line in enumerate(ssh_lines) if fragment in line)

    release = f"/opt/jiritsu/releases/{COMMIT}"
    fetch = where("git -C /opt/jiritsu/repo fetch --quiet origin")
    unpack = where(f"archive --format=tar {COMMIT}")
    build = where(f"cd {release} && UV_COMPILE_BYTECODE=1 bash scripts/_env.sh")
    upgrade = where(f"{release}/.venv/bin/jiritsu db upgrade")
    switch = where(f"ln -sfn -- releases/{COMMIT} current.new")
    restart = where("systemctl restart jiritsu-trade.service jiritsu-master.service")
    check = where("systemctl is-active jiritsu-trade.service jiritsu-master.service")
    prune = where("cd /opt/jiritsu/releases && ")
    assert fetch < unpack < build < upgrade < switch < restart < check < prune


def test_deploy_runs_each_step_over_ssh_with_nothing_on_stdin(fake_ssh: Path) -> None:
    result = _deploy(
        fake_ssh,
        "production",
        COMMIT,
        DEPLOY_USER="root",
        DEPLOY_UNITS="jiritsu-trade.service",
        DEPLOY_REGISTRY_USER="ci-bot",
        DEPLOY_REGISTRY_TOKEN=FAKE_TOKEN,
    )
    assert result.returncode == 0, result.stderr
    calls = _calls(fake_ssh)
    commands = [c["command"] for c in calls]
    release = f"/opt/jiritsu/releases/{COMMIT}"
    assert commands[:4] == [
        f"git -C /opt/jiritsu/repo fetch --quiet origin && git -C /opt/jiritsu/repo cat-file -e "
        f"{COMMIT}^{{commit}}",
        f"if [ ! -d {release} ]; then rm -rf -- {release}.partial && mkdir -p -- "
        f"{release}.partial && git -C /opt/jiritsu/repo archive --format=tar {COMMIT} | tar -x "
        f"-C {release}.partial && mv -T -- {release}.partial {release}; fi",
        f"cd {release} && UV_COMPILE_BYTECODE=1 bash scripts/_env.sh && .venv/bin/python -m "
        "compileall -q lib cli migrations && .venv/bin/jiritsu --version",
        # The migration runs the NEW release, as the service user, in the units' environment.
        "systemd-run --quiet --wait --pipe --collect --service-type=exec --uid=jiritsu "
        "--property=EnvironmentFile=-/etc/jiritsu/jiritsu.env "
        "--property=WorkingDirectory=/var/lib/jiritsu "
        f"--setenv=JIRITSU_CONFIG=/etc/jiritsu/config.toml -- {release}/.venv/bin/jiritsu "
        "db upgrade",
    ]
    assert commands[4].startswith("cd /opt/jiritsu && ")
    switch = f"ln -sfn -- releases/{COMMIT} current.new && mv -T -- current.new current"
    assert commands[4].endswith(switch)
    assert commands[5:7] == [
        "systemctl restart jiritsu-trade.service",
        "systemctl is-active jiritsu-trade.service",
    ]
    assert commands[7].startswith("cd /opt/jiritsu/releases && ")
    assert len(commands) == 8
    for call in calls:
        assert "root@staging.example.invalid" in call["argv"].splitlines()
        assert call["stdin"] == ""
        assert FAKE_TOKEN not in call["argv"] + call["env"], "no token reaches ssh"
    assert FAKE_TOKEN not in result.stdout + result.stderr
    assert "deployed" in result.stdout


def test_deploy_stops_before_switching_when_the_migration_fails(fake_ssh: Path) -> None:
    result = _deploy(fake_ssh, "staging", COMMIT, FAKE_SSH_FAIL="db upgrade")
    assert result.returncode == 1
    assert "nothing was switched or restarted" in result.stderr
    commands = [c["command"] for c in _calls(fake_ssh)]
    assert commands[-1].endswith("db upgrade'")
    assert not any("current.new" in c or "systemctl" in c for c in commands)


def test_deploy_stops_before_migrating_when_the_build_fails(fake_ssh: Path) -> None:
    result = _deploy(fake_ssh, "staging", COMMIT, FAKE_SSH_FAIL="_env.sh")
    assert result.returncode == 1
    commands = [c["command"] for c in _calls(fake_ssh)]
    assert "_env.sh" in commands[-1]
    assert not any("db upgrade" in c or "systemctl" in c for c in commands)


def test_deploy_fails_when_a_unit_is_not_active_after_the_restart(fake_ssh: Path) -> None:
    result = _deploy(fake_ssh, "staging", COMMIT, FAKE_SSH_FAIL="is-active")
    assert result.returncode == 1
    assert "not active" in result.stderr


def test_deploy_no_restart_switches_the_release_and_restarts_nothing(fake_ssh: Path) -> None:
    result = _deploy(fake_ssh, "--no-restart", "production", COMMIT)
    assert result.returncode == 0, result.stderr
    commands = [c["command"] for c in _calls(fake_ssh)]
    assert any("current.new current" in c for c in commands)
    assert not any("systemctl" in c for c in commands)


@pytest.mark.parametrize(
    ("args", "env"),
    [
        pytest.param([], {}, id="no-arguments"),
        pytest.param(["staging"], {}, id="one-argument"),
        pytest.param(["staging", COMMIT, "extra"], {}, id="three-arguments"),
        pytest.param(["--force", "staging", COMMIT], {}, id="unknown-option"),
        pytest.param(["qa", COMMIT], {}, id="unknown-environment"),
        pytest.param(["staging", COMMIT[:12]], {}, id="short-sha"),
        pytest.param(["staging", COMMIT.upper()], {}, id="upper-case-sha"),
        pytest.param(["staging", "develop"], {}, id="branch-name"),
        pytest.param(["staging", COMMIT[:-1] + ";"], {}, id="shell-in-sha"),
        pytest.param(["production", "ghcr.io/acme/jiritsu@sha256:" + "ab" * 32], {}, id="image"),
        pytest.param(["staging", COMMIT], {"DEPLOY_HOST": "<unset>"}, id="no-host"),
        pytest.param(["staging", COMMIT], {"DEPLOY_USER": "<unset>"}, id="no-user"),
        pytest.param(["staging", COMMIT], {"DEPLOY_HOST": "-oProxyCommand=sh"}, id="host"),
        pytest.param(["staging", COMMIT], {"DEPLOY_PORT": "70000"}, id="port"),
        pytest.param(["staging", COMMIT], {"DEPLOY_UNITS": "a.service;reboot"}, id="unit"),
        pytest.param(["staging", COMMIT], {"DEPLOY_ENV_FILE": "relative.env"}, id="path"),
        pytest.param(["staging", COMMIT], {"DEPLOY_APP_DIR": "/opt/a b"}, id="app-dir"),
        pytest.param(["staging", COMMIT], {"DEPLOY_SERVICE_USER": "-x"}, id="service-user"),
        pytest.param(["staging", COMMIT], {"DEPLOY_REMOTE": "o;reboot"}, id="remote"),
        pytest.param(["staging", COMMIT], {"DEPLOY_KEEP_RELEASES": "0"}, id="keep"),
    ],
)
def test_deploy_usage_errors_exit_2_before_any_ssh(
    fake_ssh: Path, args: list[str], env: dict[str, str]
) -> None:
    result = _deploy(fake_ssh, *args, **env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "usage: scripts/deploy.sh" in result.stderr
    assert _calls(fake_ssh) == []


def test_deploy_help_lists_its_settings(fake_ssh: Path) -> None:
    result = _deploy(fake_ssh, "--help")
    assert result.returncode == 0
    for name in ["DEPLOY_HOST", "DEPLOY_USER", "DEPLOY_PORT", "--dry-run"]:
        assert name in result.stdout


def test_deploy_restarts_the_long_running_units_of_systemd_by_default(
    fake_ssh: Path, tmp_path: Path
) -> None:
    root = tmp_path / "checkout"
    (root / "scripts").mkdir(parents=True)
    script = root / "scripts" / "deploy.sh"
    shutil.copy2(DEPLOY, script)

    def restarted() -> str:
        result = _deploy(fake_ssh, "--dry-run", "staging", COMMIT, script=script)
        assert result.returncode == 0, result.stderr
        line = next(x for x in result.stdout.splitlines() if "systemctl restart" in x)
        return line.split("systemctl restart ", 1)[1].rstrip("'")

    assert restarted() == "jiritsu-trade.service"  # no systemd/ at all

    units = root / "systemd"
    units.mkdir()
    (units / "jiritsu-trade.service").write_text("[Service]\nType=simple\n")
    (units / "jiritsu-web.service").write_text("[Service]\nExecStart=/bin/true\n")
    (units / "jiritsu-tick.service").write_text("[Service]\nType=oneshot\n")
    (units / "jiritsu-tick.timer").write_text("[Timer]\nOnCalendar=minutely\n")
    (units / "jiritsu-backup.service").write_text("[Service]\n  Type = oneshot\n")
    (units / "jiritsu-bot@.service").write_text("[Service]\n")
    assert restarted() == "jiritsu-trade.service jiritsu-web.service"
