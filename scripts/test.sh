#!/usr/bin/env bash
# The README's test command: formatting, lint, types, and the whole test suite on SQLite and
# PostgreSQL.
# PostgreSQL is JIRITSU_TEST_PG_URL when set, else a private server started by pgserver.
set -euo pipefail
. "$(dirname "$0")/_env.sh" test dev
echo "== black"
black --check --quiet lib cli tests migrations scripts
echo "== ruff"
ruff check lib cli tests migrations scripts
echo "== mypy"
mypy  # lib/ and cli/, configured in pyproject.toml
echo "== pytest"
pytest "$@"
