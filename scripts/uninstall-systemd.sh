#!/usr/bin/env bash
# Stop, disable and remove the systemd units that scripts/install-systemd.sh installed.
#
#   sudo scripts/uninstall-systemd.sh [--dest DIR] [--no-disable] [--dry-run]
#
# Only jiritsu-*.service and jiritsu-*.timer files that carry the renderer's marker line are
# touched, so a unit written by hand is left alone. The data directory, the database, the
# backups, the configuration and the env file are kept.
#
# Options:
#   --dest DIR      where the units were installed (default: /etc/systemd/system)
#   --no-disable    remove the files only: no systemctl calls
#   -n, --dry-run   print what would be done; change nothing
#   -h, --help      this text
#
# Exit status: 0 removed (or nothing to remove), 1 a step failed, 2 usage error.
set -euo pipefail

USAGE="usage: scripts/uninstall-systemd.sh [--dest DIR] [--no-disable] [--dry-run]"
MARKER="# Rendered by jiritsu.ops.systemd"

usage_error() {
  echo "uninstall-systemd: $*" >&2
  echo "$USAGE" >&2
  exit 2
}

help() {
  sed -n '2,/^set -euo pipefail$/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

dest="/etc/systemd/system"
disable=1
dry_run=0
while (($# > 0)); do
  case "$1" in
    --dest)
      if (($# < 2)) || [[ -z "$2" ]]; then usage_error "--dest needs a value"; fi
      dest="$2"
      shift
      ;;
    --no-disable) disable=0 ;;
    -n | --dry-run) dry_run=1 ;;
    -h | --help)
      help
      exit 0
      ;;
    *) usage_error "unknown argument: $1" ;;
  esac
  shift
done
[[ "$dest" =~ ^/[A-Za-z0-9._/+@:,=-]*$ ]] || usage_error "not an absolute path: '$dest'"
[[ -d "$dest" ]] || usage_error "no such directory: $dest"
if ((disable && !dry_run)) && ! command -v systemctl >/dev/null 2>&1; then
  usage_error "systemctl not found (use --no-disable to remove the files only)"
fi

units=()
shopt -s nullglob
for path in "$dest"/jiritsu-*.service "$dest"/jiritsu-*.timer; do
  if [[ -f "$path" ]] && head -n 1 "$path" | grep -qF "$MARKER"; then
    units+=("$(basename "$path")")
  fi
done
shopt -u nullglob
if ((${#units[@]} == 0)); then
  echo "no Jiritsu units installed in $dest"
  exit 0
fi

run() {
  echo "+ $*"
  ((dry_run)) || "$@"
}

# Timers first, so that nothing starts a job while the services are being stopped.
timers=() services=()
for unit in "${units[@]}"; do
  case "$unit" in
    *.timer) timers+=("$unit") ;;
    *) services+=("$unit") ;;
  esac
done
if ((disable)); then
  if ((${#timers[@]} > 0)); then run systemctl disable --now "${timers[@]}"; fi
  if ((${#services[@]} > 0)); then run systemctl disable --now "${services[@]}"; fi
fi
for unit in "${units[@]}"; do
  run rm -f -- "$dest/$unit"
done
if ((disable)); then
  run systemctl daemon-reload
  run systemctl reset-failed "${units[@]}" || true
fi
if ((dry_run)); then
  echo "dry run: nothing was changed"
else
  echo "removed ${#units[@]} units from $dest (data, backups and configuration are kept)"
fi
