#!/usr/bin/env bash
# Deploy one image to one environment's server over SSH (called by .github/workflows/release.yml).
#
#   scripts/deploy.sh [--dry-run] <staging|production> <image-ref>
#
# On the server, one ssh command per step, each printed before it runs:
#   1. docker pull <image-ref>; when DEPLOY_REGISTRY_TOKEN is set, log in to the registry first
#      (the token travels on ssh's stdin, never on a command line) and log out right after
#   2. jiritsu db upgrade, run in the new image with the server's env file and data dir
#   3. tag the new image jiritsu:current (the one it replaces becomes jiritsu:previous)
#   4. systemctl restart the long-running units, wait, and check that they are active
# Nothing is tagged or restarted unless the migration succeeded.
#
# Environment:
#   DEPLOY_HOST            server name or address (required)
#   DEPLOY_USER            SSH user (required); unless root, docker and systemctl run via `sudo -n`
#   DEPLOY_PORT            SSH port (default 22)
#   DEPLOY_KNOWN_HOSTS     known_hosts lines for the server (default: ~/.ssh/known_hosts);
#                          host keys are always checked, never accepted blindly
#   DEPLOY_UNITS           units to restart, space-separated (default: every long-running service
#                          in systemd/, i.e. no .timer sibling, not oneshot, not a template;
#                          jiritsu-trade.service when there is none)
#   DEPLOY_ENV_FILE        env file on the server for the containers (default /etc/jiritsu/jiritsu.env)
#   DEPLOY_CONFIG_DIR      config dir on the server, mounted read-only at /etc/jiritsu
#                          (default /etc/jiritsu; e.g. JIRITSU_CONFIG=/etc/jiritsu/config.toml)
#   DEPLOY_DATA_DIR        data dir on the server, mounted at /var/lib/jiritsu (default /var/lib/jiritsu)
#   DEPLOY_REGISTRY_USER, DEPLOY_REGISTRY_TOKEN
#                          registry login for the pull (optional; both or neither)
#   DEPLOY_SETTLE_SECONDS  wait between restart and the is-active check (default 10)
# The SSH key comes from ssh-agent; ssh runs in batch mode and never prompts.
#
# Exit status: 0 deployed (or, with --dry-run, the commands printed), 1 a step failed,
# 2 usage or configuration error. No secret is ever printed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USAGE="usage: scripts/deploy.sh [--dry-run] <staging|production> <image-ref>"

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
args=()
while (($# > 0)); do
  case "$1" in
    -n | --dry-run) dry_run=1 ;;
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
image="${args[1]}"

# --- validate everything before touching the server --------------------------------------------
case "$environment" in
  staging | production) ;;
  *) usage_error "environment must be staging or production, not '$environment'" ;;
esac

# registry/name[:tag][@sha256:digest], lower-case repository, tag or digest required.
re_host='[a-z0-9]+([.-][a-z0-9]+)*(:[0-9]+)?'
re_path='[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*'
re_tag=':[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}'
re_digest='@sha256:[0-9a-f]{64}'
if ! [[ "$image" =~ ^($re_host/)?$re_path($re_tag)?($re_digest)?$ ]]; then
  usage_error "not an image reference: '$image'"
fi
if [[ "$image" != *@sha256:* ]] && ! [[ "$image" =~ $re_tag$ ]]; then
  usage_error "the image reference needs a tag or a digest: '$image'"
fi
if [[ "$environment" == production && "$image" != *@sha256:* ]]; then
  usage_error "production deploys an immutable reference: use <image>@sha256:<digest>"
fi
registry="${image%%/*}"
if [[ "$image" != */* || ! "$registry" =~ [.:] && "$registry" != localhost ]]; then
  registry="docker.io"
fi

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

env_file="${DEPLOY_ENV_FILE:-/etc/jiritsu/jiritsu.env}"
data_dir="${DEPLOY_DATA_DIR:-/var/lib/jiritsu}"
config_dir="${DEPLOY_CONFIG_DIR:-/etc/jiritsu}"
for path in "$env_file" "$data_dir" "$config_dir"; do
  [[ "$path" =~ ^/[A-Za-z0-9._/-]+$ ]] || usage_error "not an absolute path: '$path'"
done

settle="${DEPLOY_SETTLE_SECONDS:-10}"
[[ "$settle" =~ ^[0-9]+$ ]] || usage_error "DEPLOY_SETTLE_SECONDS is not a number of seconds"

default_units() {
  local f name found=()
  shopt -s nullglob
  for f in "$ROOT"/systemd/*.service; do
    name="$(basename "$f")"
    [[ "$name" == *@* ]] && continue                  # templates are started by something else
    [[ -e "${f%.service}.timer" ]] && continue         # timer jobs pick up the new image next run
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

# Secrets are kept in unexported shell variables: no child process (ssh, sleep) inherits them.
registry_user="${DEPLOY_REGISTRY_USER:-}"
registry_token="${DEPLOY_REGISTRY_TOKEN:-}"
unset DEPLOY_REGISTRY_TOKEN
if [[ -n "$registry_token" && -z "$registry_user" ]] || [[ -z "$registry_token" && -n "$registry_user" ]]; then
  usage_error "set both DEPLOY_REGISTRY_USER and DEPLOY_REGISTRY_TOKEN, or neither"
fi
re_user='^[A-Za-z0-9][][A-Za-z0-9_.-]*$' # GitHub actors may look like "name[bot]"
if [[ -n "$registry_user" && ! "$registry_user" =~ $re_user ]]; then
  usage_error "DEPLOY_REGISTRY_USER is not a user name"
fi

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

sudo=""
[[ "$user" == root ]] || sudo="sudo -n "

q() { printf '%q' "$1"; }

# Print a command line the way a shell would read it back.
show() {
  local a out=()
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:@=,+%-]+$ ]]; then
      out+=("$a")
    else
      out+=("'${a//\'/\'\\\'\'}'")
    fi
  done
  echo "+ ${out[*]}"
}

step=0
announce() {
  step=$((step + 1))
  echo "==> [$step] $1"
}

# remote DESCRIPTION COMMAND: run COMMAND on the server (stdin closed).
remote() {
  announce "$1"
  show "${ssh_cmd[@]}" "$2"
  ((dry_run)) && return 0
  "${ssh_cmd[@]}" "$2" </dev/null
}

# remote_with_token DESCRIPTION COMMAND: as remote, with the registry token on stdin.
remote_with_token() {
  announce "$1"
  show "${ssh_cmd[@]}" "$2"
  echo "  (registry token on stdin)"
  ((dry_run)) && return 0
  printf '%s\n' "$registry_token" | "${ssh_cmd[@]}" "$2"
}

# --- deploy ------------------------------------------------------------------------------------
mode=""
((dry_run)) && mode=" (dry run: nothing is executed)"
echo "deploy $image to $environment on $user@$host:$port$mode"
echo "units: ${units[*]}"

if [[ -n "$registry_token" ]]; then
  remote_with_token "log in to $registry" \
    "${sudo}docker login $(q "$registry") --username $(q "$registry_user") --password-stdin" ||
    fail "registry login failed"
fi
pulled=1
remote "pull the image" "${sudo}docker pull $(q "$image")" || pulled=0
if [[ -n "$registry_token" ]]; then
  remote "log out of $registry" "${sudo}docker logout $(q "$registry")" ||
    echo "deploy: warning: registry logout failed" >&2
fi
((pulled)) || fail "pulling $image failed"

remote "migrate the database (jiritsu db upgrade)" \
  "${sudo}docker run --rm --init --network host --env-file $(q "$env_file") --volume $(q "$data_dir"):/var/lib/jiritsu --volume $(q "$config_dir"):/etc/jiritsu:ro $(q "$image") db upgrade" ||
  fail "the migration failed; nothing was restarted and jiritsu:current is unchanged"

remote "tag the image jiritsu:current (the old one becomes jiritsu:previous)" \
  "if ${sudo}docker image inspect jiritsu:current >/dev/null 2>&1; then ${sudo}docker tag jiritsu:current jiritsu:previous; fi && ${sudo}docker tag $(q "$image") jiritsu:current" ||
  fail "tagging the image failed; nothing was restarted"

remote "restart ${units[*]}" "${sudo}systemctl restart ${units[*]}" ||
  fail "restarting the units failed (to roll back: tag jiritsu:previous as jiritsu:current and restart)"

announce "wait ${settle}s for the units to settle"
((dry_run)) || sleep "$settle"

remote "check that the units are active" "${sudo}systemctl is-active ${units[*]}" ||
  fail "a unit is not active after the restart; see journalctl on the server (the previous image is jiritsu:previous)"

if ((dry_run)); then
  echo "dry run complete: nothing was executed"
else
  echo "deployed $image to $environment"
fi
