# Sourced by the other scripts: builds .venv from uv.lock (reproducible) and exports $JIRITSU.
# Usage: . scripts/_env.sh [EXTRA ...]   e.g. ". scripts/_env.sh test dev"
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 (>= 3.10) is required" >&2
  exit 2
fi
python3 - <<'PY' || { echo "python3 >= 3.10 is required" >&2; exit 2; }
import sys
sys.exit(0 if sys.version_info >= (3, 10) else 1)
PY
UV="$(python3 scripts/bootstrap.py | tail -n 1)"
export UV_PYTHON_DOWNLOADS=never
extras=()
for e in "$@"; do extras+=(--extra "$e"); done
# --inexact: a runtime-only sync (the demo) must not uninstall the test/dev tools
"$UV" sync --locked --inexact --quiet --python python3 "${extras[@]}"
export PATH="$ROOT/.venv/bin:$PATH"
export JIRITSU="$ROOT/.venv/bin/jiritsu"
