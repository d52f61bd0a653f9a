#!/usr/bin/env bash
# Deploy one commit to one environment's server over SSH (called by .github/workflows/release.yml).
#
#   scripts/deploy.sh [--dry-run] [--no-restart] <staging|production> <commit-sha>
#
# The server runs Jiritsu from releases of a git clone (CONTRIBUTING.md, "The server"):
#   <app>/repo                 the clone deploys fetch into
#   <app>/releases/<sha>/      one directory per deployed commit, with its own .venv
#   <app>/current              symlink to the release the systemd units run
#                              (scripts/install-systemd.sh --workdir <app>/current)
#   <app>/previous             symlink to the release before it, for a rollback
#
# On the server, one ssh command per step, each printed before it runs:
#   1. git fetch in the clone, and check that <commit-sha> is there
#   2. unpack the commit into releases/<sha> (git archive; an existing release is reused)
#   3. build its .venv from uv.lock (scripts/_env.sh), compile bytecode, run `jiritsu --version`
#   4. jiritsu db upgrade with the NEW release, as the service user, with the units' config and
#      env file (through systemd-run, so the environment is exactly the units')
#   5. switch `current` to the new release (the one it replaces becomes `previous`)
#   6. systemctl restart the long-running units, wait, and check that they are active
#   7. delete old releases (current, previous and the newest DEPLOY_KEEP_RELEASES are kept)
# Nothing is switched or restarted unless the build and the migration succeeded. Timer jobs run
# the new release from their next start. --no-restart skips step 6: the first deploy, before
# scripts/install-systemd.sh has installed the units.
#
# Environment:
#   DEPLOY_HOST            server name or address (required)
#   DEPLOY_USER            SSH user (required); unless root, every step runs via `sudo -n`
#   DEPLOY_PORT            SSH port (default 22)
#   DEPLOY_KNOWN_HOSTS     known_hosts lines for the server (default: ~/.ssh/known_hosts);
#                          host keys are always checked, never accepted blindly
#   DEPLOY_UNITS           units to restart, space-separated (default: every long-running service
#                          in systemd/, i.e. no .timer sibling, not oneshot, not a template;
#                          jiritsu-trade.service when there is none)
#   DEPLOY_APP_DIR         base directory on the server (default /opt/jiritsu)
#   DEPLOY_REMOTE          remote of the clone to fetch from (default origin)
#   DEPLOY_SERVICE_USER    user the units run as; the migration runs as it (default jiritsu)
#   DEPLOY_CONFIG          configuration file of the units (default /etc/jiritsu/config.toml)
#   DEPLOY_ENV_FILE        env file of the units (default /etc/jiritsu/jiritsu.env)
#   DEPLOY_DATA_DIR        working directory of the units (default /var/lib/jiritsu)
#   DEPLOY_KEEP_RELEASES   how many of the newest releases to keep (default 3)
#   DEPLOY_SETTLE_SECONDS  wait between restart and the is-active check (default 10)
# The SSH key comes from ssh-agent; ssh runs in batch mode and never prompts. The server fetches
# with its own read-only credentials (a deploy key of the repository): no token is sent to it,
# and a DEPLOY_REGISTRY_TOKEN left in the environment by a caller is dropped unused.
#
# Exit status: 0 deployed (or, with --dry-run, the commands printed), 1 a step failed,
# 2 usage or configuration error. No secret is ever printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USAGE="usage: scripts/deploy.sh [--dry-run] [--no-restart] <staging|production> <commit-sha>"

# Nothing below needs a registry token; make sure no child process inherits one.
unset DEPLOY_REGISTRY_TOKEN DEPLOY_REGISTRY_USER

usage_error() {
  echo "deploy: $*" >&2
  echo "$USAGE" >&2
  exit 2
}

fail() {
  echo "deploy: $*" >&2
  exit 1
}

help() {
  # The header comment above is the manual.
  sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

dry_run=0
restart=1
args=()
while (($# > 0)); do
  case "$1" in
    -n | --dry-run) dry_run=1 ;;
    --no-restart) restart=0 ;;
    -h | --help)
      help
      exit 0
      ;;
    --)
      shift
      args+=("$@")
      break
      ;;
    -*) usage_error "unknown option: $1" ;;
    *) args+=("$1") ;;
  esac
  shift
done
((${#args[@]} == 2)) || usage_error "expected 2 arguments, got ${#args[@]}"
environment="${args[0]}"
sha="${args[1]}"

# --- validate everything before touching the server --------------------------------------------
case "$environment" in
  staging | production) ;;
  *) usage_error "environment must be staging or production, not '$environment'" ;;
esac
# A full commit id: immutable, unlike a branch or tag, and safe in a path and a command line.
[[ "$sha" =~ ^[0-9a-f]{40}$ ]] || usage_error "not a full 40-character commit sha: '$sha'"

host="${DEPLOY_HOST:-}"
user="${DEPLOY_USER:-}"
port="${DEPLOY_PORT:-}"
port="${port:-22}"
[[ -n "$host" ]] || usage_error "DEPLOY_HOST is not set"
[[ -n "$user" ]] || usage_error "DEPLOY_USER is not set"
# A leading '-' would turn the destination into an ssh option.
[[ "$host" =~ ^[A-Za-z0-9][A-Za-z0-9.:_-]*$ ]] || usage_error "DEPLOY_HOST is not a host name"
[[ "$user" =~ ^[A-Za-z_][A-Za-z0-9_.-]*$ ]] || usage_error "DEPLOY_USER is not a user name"
if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || ((10#$port < 1 || 10#$port > 65535)); then
  usage_error "DEPLOY_PORT is not a port number"
fi

app_dir="${DEPLOY_APP_DIR:-/opt/jiritsu}"
config="${DEPLOY_CONFIG:-/etc/jiritsu/config.toml}"
env_file="${DEPLOY_ENV_FILE:-/etc/jiritsu/jiritsu.env}"
data_dir="${DEPLOY_DATA_DIR:-/var/lib/jiritsu}"
for path in "$app_dir" "$config" "$env_file" "$data_dir"; do
  [[ "$path" =~ ^/[A-Za-z0-9._/-]+$ ]] || usage_error "not an absolute path: '$path'"
done
app_dir="${app_dir%/}"
remote_name="${DEPLOY_REMOTE:-origin}"
[[ "$remote_name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || usage_error "DEPLOY_REMOTE is not a remote name"
service_user="${DEPLOY_SERVICE_USER:-jiritsu}"
[[ "$service_user" =~ ^[A-Za-z_][A-Za-z0-9_.-]*$ ]] ||
  usage_error "DEPLOY_SERVICE_USER is not a user name"

settle="${DEPLOY_SETTLE_SECONDS:-10}"
[[ "$settle" =~ ^[0-9]+$ ]] || usage_error "DEPLOY_SETTLE_SECONDS is not a number of seconds"
keep="${DEPLOY_KEEP_RELEASES:-3}"
if ! [[ "$keep" =~ ^[0-9]+$ ]] || ((10#$keep < 1)); then
  usage_error "DEPLOY_KEEP_RELEASES is not a number >= 1"
fi

default_units() {
  local f name found=()
  shopt -s nullglob
  for f in "$ROOT"/systemd/*.service; do
    name="$(basename "$f")"
    [[ "$name" == *@* ]] && continue                  # templates are started by something else
    [[ -e "${f%.service}.timer" ]] && continue         # timer jobs run the new release next time
    grep -Eq '^[[:space:]]*Type[[:space:]]*=[[:space:]]*oneshot' "$f" && continue
    found+=("$name")
  done
  shopt -u nullglob
  ((${#found[@]} > 0)) || found=(jiritsu-trade.service)
  echo "${found[*]}"
}
read -r -a units <<<"${DEPLOY_UNITS:-$(default_units)}"
((${#units[@]} > 0)) || read -r -a units <<<"$(default_units)"
for unit in "${units[@]}"; do
  [[ "$unit" =~ ^[A-Za-z0-9@._:-]+\.(service|timer|target)$ ]] ||
    usage_error "not a systemd unit name: '$unit'"
done

# --- the ssh command ---------------------------------------------------------------------------
ssh_cmd=(ssh -T -p "$port"
  -o BatchMode=yes -o StrictHostKeyChecking=yes
  -o ConnectTimeout=20 -o ServerAliveInterval=15 -o ServerAliveCountMax=4)
tmp=""
cleanup() {
  if [[ -n "$tmp" ]]; then rm -rf -- "$tmp"; fi
}
trap cleanup EXIT
if [[ -n "${DEPLOY_KNOWN_HOSTS:-}" ]]; then
  tmp="$(mktemp -d)"
  printf '%s\n' "$DEPLOY_KNOWN_HOSTS" >"$tmp/known_hosts"
  ssh_cmd+=(-o "UserKnownHostsFile=$tmp/known_hosts")
fi
ssh_cmd+=(-- "$user@$host")

q() { printf '%q' "$1"; }

# as_root COMMAND: COMMAND for a root shell on the server (through `sudo -n sh -c` unless root).
as_root() {
  if [[ "$user" == root ]]; then
    printf '%s' "$1"
  else
    printf "sudo -n sh -c '%s'" "${1//\'/\'\\\'\'}"
  fi
}

# Print the ssh command: its arguments as a shell would read them back, then the remote command
# as the server's shell receives it (ssh passes it on as one string).
show() {
  local a out=()
  for a in "${@:1:$#-1}"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:@=,+%-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//\'/\'\\\'\'}'")
    fi
  done
  echo "+ ${out[*]} ${!#}"
}

step=0
announce() {
  step=$((step + 1))
  echo "==> [$step] $1"
}

# remote DESCRIPTION COMMAND: run COMMAND on the server as root (stdin closed).
remote() {
  local command
  command="$(as_root "$2")"
  announce "$1"
  show "${ssh_cmd[@]}" "$command"
  ((dry_run)) && return 0
  "${ssh_cmd[@]}" "$command" </dev/null
}

# --- deploy ------------------------------------------------------------------------------------
repo="$app_dir/repo"
release="$app_dir/releases/$sha"
mode=""
((dry_run)) && mode=" (dry run: nothing is executed)"
echo "deploy $sha to $environment on $user@$host:$port$mode"
if ((restart)); then echo "units: ${units[*]}"; else echo "units: none restarted (--no-restart)"; fi

remote "fetch $sha into $repo" \
  "git -C $(q "$repo") fetch --quiet $(q "$remote_name") && git -C $(q "$repo") cat-file -e $sha^{commit}" ||
  fail "fetching failed or $sha is not in $remote_name; nothing was changed"

remote "unpack the release into $release" \
  "if [ ! -d $(q "$release") ]; then rm -rf -- $(q "$release.partial") && mkdir -p -- $(q "$release.partial") && git -C $(q "$repo") archive --format=tar $sha | tar -x -C $(q "$release.partial") && mv -T -- $(q "$release.partial") $(q "$release"); fi" ||
  fail "unpacking the release failed; nothing was changed"

remote "build the environment (scripts/_env.sh, uv.lock)" \
  "cd $(q "$release") && UV_COMPILE_BYTECODE=1 bash scripts/_env.sh && .venv/bin/python -m compileall -q lib cli migrations && .venv/bin/jiritsu --version" ||
  fail "building the environment failed; nothing was switched or restarted"

remote "migrate the database (jiritsu db upgrade, as $service_user)" \
  "systemd-run --quiet --wait --pipe --collect --service-type=exec --uid=$(q "$service_user") --property=EnvironmentFile=-$(q "$env_file") --property=WorkingDirectory=$(q "$data_dir") --setenv=JIRITSU_CONFIG=$(q "$config") -- $(q "$release/.venv/bin/jiritsu") db upgrade" ||
  fail "the migration failed; nothing was switched or restarted"

remote "switch current to $sha (the old release becomes previous)" \
  "cd $(q "$app_dir") && old=\"\$(readlink current || true)\" && if [ -n \"\$old\" ] && [ \"\$old\" != releases/$sha ]; then ln -sfn -- \"\$old\" previous.new && mv -T -- previous.new previous; fi && ln -sfn -- releases/$sha current.new && mv -T -- current.new current" ||
  fail "switching the release failed; the units still run the previous one"

if ((restart)); then
  remote "restart ${units[*]}" "systemctl restart ${units[*]}" ||
    fail "restarting the units failed (to roll back: point current at the target of previous and restart)"

  announce "wait ${settle}s for the units to settle"
  ((dry_run)) || sleep "$settle"

  remote "check that the units are active" "systemctl is-active ${units[*]}" ||
    fail "a unit is not active after the restart; see journalctl on the server (the previous release is $app_dir/previous)"
fi

remote "delete old releases (keeping current, previous and the newest $keep)" \
  "cd $(q "$app_dir/releases") && cur=\"\$(basename \"\$(readlink ../current)\")\" && prev=\"\$(basename \"\$(readlink ../previous || echo none)\")\" && ls -1t | tail -n +$((10#$keep + 1)) | while read -r d; do case \"\$d\" in \"\$cur\" | \"\$prev\") ;; *) rm -rf -- \"\$d\" ;; esac; done" ||
  echo "deploy: warning: deleting old releases failed" >&2

if ((dry_run)); then
  echo "dry run complete: nothing was executed"
else
  echo "deployed $sha to $environment"
fi
