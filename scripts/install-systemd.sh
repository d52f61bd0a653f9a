#!/usr/bin/env bash
# Render Jiritsu's systemd units for this server, install them and enable them.
#
#   sudo scripts/install-systemd.sh [options]
#
# The templates in systemd/ are filled in by `python -m jiritsu.ops.systemd render` (run with the
# checkout's own .venv), which reads the configuration as the services will see it (the config
# file plus the env file) for the timers' schedules and the writable paths. Rendered units are
# checked with `systemd-analyze verify` before anything is installed.
#
# Options:
#   --user NAME        service user (default: jiritsu); must exist
#   --group NAME       service group (default: the user's primary group)
#   --workdir DIR      the checkout the units run, with its .venv (default: this checkout).
#                      With scripts/deploy.sh's layout pass /opt/jiritsu/current: every deploy
#                      then switches the units to the new release
#   --config FILE      configuration file (default: /etc/jiritsu/config.toml)
#   --env-file FILE    EnvironmentFile with the secrets (default: /etc/jiritsu/jiritsu.env;
#                      may be absent)
#   --dest DIR         where the unit files go (default: /etc/systemd/system)
#   --no-enable        install the files only: no daemon-reload, enable or start
#   --no-verify        skip `systemd-analyze verify`
#   -n, --dry-run      print the rendered units and the commands; change nothing
#   -h, --help         this text
#
# Then: systemctl daemon-reload; systemctl enable --now every timer and every long-running
# service (jiritsu-trade, jiritsu-dashboard); timers are restarted so that changed schedules
# apply. The data directory (and any other writable path) is created for the user if missing.
#
# Exit status: 0 installed (or printed), 1 a step failed, 2 usage or configuration error.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USAGE="usage: scripts/install-systemd.sh [--user NAME] [--group NAME] [--workdir DIR] [--config FILE] [--env-file FILE] [--dest DIR] [--no-enable] [--no-verify] [--dry-run]"

usage_error() {
  echo "install-systemd: $*" >&2
  echo "$USAGE" >&2
  exit 2
}

fail() {
  echo "install-systemd: $*" >&2
  exit 1
}

help() {
  sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

user="jiritsu"
group=""
workdir="$ROOT"
config="/etc/jiritsu/config.toml"
env_file="/etc/jiritsu/jiritsu.env"
dest="/etc/systemd/system"
enable=1
verify=1
dry_run=0

need_value() {
  if (($# < 2)) || [[ -z "$2" ]]; then usage_error "$1 needs a value"; fi
}

while (($# > 0)); do
  case "$1" in
    --user) need_value "$@"; user="$2"; shift ;;
    --group) need_value "$@"; group="$2"; shift ;;
    --workdir) need_value "$@"; workdir="$2"; shift ;;
    --config) need_value "$@"; config="$2"; shift ;;
    --env-file) need_value "$@"; env_file="$2"; shift ;;
    --dest) need_value "$@"; dest="$2"; shift ;;
    --no-enable) enable=0 ;;
    --no-verify) verify=0 ;;
    -n | --dry-run) dry_run=1 ;;
    -h | --help)
      help
      exit 0
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done

# --- validate before touching anything ---------------------------------------------------------
re_name='^[A-Za-z_][A-Za-z0-9_.-]{0,31}$'
[[ "$user" =~ $re_name ]] || usage_error "not a user name: '$user'"
id -u "$user" >/dev/null 2>&1 || usage_error "user '$user' does not exist (create it first)"
group="${group:-$(id -gn "$user")}"
[[ "$group" =~ $re_name ]] || usage_error "not a group name: '$group'"
getent group "$group" >/dev/null 2>&1 || usage_error "group '$group' does not exist"
for path in "$workdir" "$config" "$env_file" "$dest"; do
  [[ "$path" =~ ^/[A-Za-z0-9._/+@:,=-]*$ ]] ||
    usage_error "not an absolute path of plain characters: '$path'"
done
[[ -f "$config" ]] || usage_error "configuration file not found: $config"
python="$workdir/.venv/bin/python"
[[ -x "$python" && -x "$workdir/.venv/bin/jiritsu" ]] ||
  usage_error "$workdir has no .venv with jiritsu: run scripts/_env.sh there first"
[[ -d "$dest" ]] || usage_error "no such directory: $dest"
if ((enable && !dry_run)) && ! command -v systemctl >/dev/null 2>&1; then
  usage_error "systemctl not found (use --no-enable to install the files only)"
fi

tmp="$(mktemp -d)"
cleanup() { rm -rf -- "$tmp"; }
trap cleanup EXIT

# --- render ------------------------------------------------------------------------------------
set +e
summary="$("$python" -m jiritsu.ops.systemd render --user "$user" --group "$group" \
  --workdir "$workdir" --config "$config" --env-file "$env_file" --out "$tmp/units")"
rc=$?
set -e
((rc == 0)) || { ((rc == 2)) && exit 2; fail "rendering the units failed"; }
units=()
read_write=""
while IFS='=' read -r key value; do
  case "$key" in
    unit) units+=("$value") ;;
    read_write) read_write="$value" ;;
  esac
done <<<"$summary"
((${#units[@]} > 0)) || fail "no unit was rendered"

if ((verify)); then
  if command -v systemd-analyze >/dev/null 2>&1; then
    out="$(systemd-analyze verify "${units[@]/#/$tmp/units/}" 2>&1)" ||
      fail "systemd-analyze verify rejected the units:"$'\n'"$out"
    [[ -z "$out" ]] || fail "systemd-analyze verify warned about the units:"$'\n'"$out"
  else
    echo "install-systemd: systemd-analyze not found; units not verified" >&2
  fi
fi

# Timers and long-running services are enabled; oneshot services are started by their timers.
to_enable=()
timers=()
for unit in "${units[@]}"; do
  case "$unit" in
    *.timer)
      to_enable+=("$unit")
      timers+=("$unit")
      ;;
    *.service) [[ " ${units[*]} " == *" ${unit%.service}.timer "* ]] || to_enable+=("$unit") ;;
  esac
done

run() {
  echo "+ $*"
  ((dry_run)) || "$@"
}

if ((dry_run)); then
  for unit in "${units[@]}"; do
    echo "----- $dest/$unit"
    cat "$tmp/units/$unit"
  done
fi

# --- install -----------------------------------------------------------------------------------
read -r -a writable <<<"$read_write"
for dir in "${writable[@]}"; do
  [[ -d "$dir" ]] || run install -d -o "$user" -g "$group" -m 0750 "$dir"
done
for unit in "${units[@]}"; do
  run install -m 0644 "$tmp/units/$unit" "$dest/$unit"
done
if ((enable)); then
  run systemctl daemon-reload
  run systemctl enable --now "${to_enable[@]}"
  run systemctl restart "${timers[@]}"
  echo "running services keep their previous unit settings until restarted, e.g." \
    "systemctl restart jiritsu-trade.service"
else
  echo "not enabled (--no-enable): systemctl daemon-reload && systemctl enable --now ${to_enable[*]}"
fi
if ((dry_run)); then
  echo "dry run: nothing was changed"
else
  echo "installed ${#units[@]} units into $dest"
fi
