#!/usr/bin/env bash
# Quick start, command 1: build the environment and run the whole system offline.
#
#   ./scripts/demo.sh            # a synthetic 32-day BTC market (seed 42)
#   ./scripts/demo.sh FILE       # your own 1-minute candles (CSV(.gz)/Parquet, see README)
#
# A fresh data directory (./var/demo, wiped at start), SQLite, paper trading, no keys: the three
# sub-bots trade the stored candles through `jiritsu trade-loop --replay` (the live code on the
# paper exchange with a simulated clock), circuit breakers armed; then `jiritsu status` with a
# performance summary per bot. Takes about a minute.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$(date +%s)

export JIRITSU_CONFIG="$ROOT/config.toml"
export JIRITSU_GENERAL__DATA_DIR="$ROOT/var/demo"
export JIRITSU_GENERAL__ENVIRONMENT=paper
# Circuit-breaker halts lift themselves after 4 hours here, so a 30-day replay shows them
# tripping AND trading on; in production only `jiritsu resume` lifts them (cooldown 0).
export JIRITSU_RISK__COOLDOWN_MINUTES=240
# No live news in an offline replay.
export JIRITSU_NEWS_SENTIMENT__ENABLED=false
rm -rf "$JIRITSU_GENERAL__DATA_DIR"

step "configuration (paper mode, offline)"
jiritsu config check
step "database schema (SQLite in $JIRITSU_GENERAL__DATA_DIR)"
jiritsu db upgrade
step "market data"
if [ $# -ge 1 ]; then
  jiritsu data import "$1"
else
  jiritsu data synth --days 32 --seed 42
fi
step "trade loop, replay of the stored candles (first 2 days: indicator warm-up)"
jiritsu trade-loop --replay ..
step "status"
jiritsu status --performance
step "done in $(( $(date +%s) - started )) s"
cat <<EOF
The database is $JIRITSU_GENERAL__DATA_DIR/jiritsu.db. To look at it in the dashboard:

  . scripts/_env.sh
  export JIRITSU_GENERAL__DATA_DIR=$JIRITSU_GENERAL__DATA_DIR
  export JIRITSU_DASHBOARD_PASSWORD_HASH="\$(jiritsu dashboard hash-password)"   # login: operator
  jiritsu dashboard serve
  # from your own machine when this runs on a server, then open http://127.0.0.1:8001 :
  ssh -L 8001:127.0.0.1:8001 user@server
EOF
