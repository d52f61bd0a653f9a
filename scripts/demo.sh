#!/usr/bin/env bash
# Quick start, command 1: build the environment and run the whole system offline.
#
#   ./scripts/demo.sh            # a synthetic 36-day BTC market (seed 11)
#   ./scripts/demo.sh FILE       # your own 1-minute candles (CSV(.gz)/Parquet, see README)
#
# A fresh data directory (./var/demo, wiped at start), SQLite, paper trading, no keys:
# `jiritsu simulate` runs the whole autonomous system on a simulated clock over the stored
# candles -- the three sub-bots, the circuit breakers, a rebalance every 4 hours with transfers,
# the weekly profit saving on Sundays, the monthly tuning on the 1st -- then prints the summary,
# writes a report (HTML + charts) and shows `jiritsu status` on the simulation's database.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
started=$(date +%s)

export JIRITSU_CONFIG="$ROOT/config.toml"
export JIRITSU_GENERAL__DATA_DIR="$ROOT/var/demo"
export JIRITSU_GENERAL__ENVIRONMENT=paper
# The demo's tuner looks back one month (the default six would need half a year of candles).
export JIRITSU_OPTIMIZER__BACKTEST_PERIOD_MONTHS=1
# Drawdown and daily-loss halts lift themselves after 4 hours here, so the simulation shows them
# tripping AND trading on; in production only `jiritsu resume` lifts those (cooldown_minutes 0).
# A crash halt lifts itself after risk.crash_cooldown_minutes (4 hours) everywhere.
export JIRITSU_RISK__COOLDOWN_MINUTES=240
# No live news in an offline simulation.
export JIRITSU_NEWS_SENTIMENT__ENABLED=false
rm -rf "$JIRITSU_GENERAL__DATA_DIR"

step "configuration (paper mode, offline)"
jiritsu config check
step "market data"
period=()
if [ $# -ge 1 ]; then
  jiritsu data import "$1"  # simulated: the stored range after a week of warm-up
else
  jiritsu data synth --days 36 --seed 11 --start 2024-01-01
  # two weeks of warm-up and tuning history, then three weeks: three Sundays, February 1st.
  # Seed 11: a market where a bot's realised profit grows in two of those weeks (a saving is a
  # share of realised trading profit only; on seed 42 the bots' profit grew in one week).
  period=(--from 2024-01-15 --to 2024-02-04)
fi
step "the whole system on a simulated clock"
jiritsu simulate "${period[@]}" --report "$JIRITSU_GENERAL__DATA_DIR/report"
step "status of the simulated portfolio"
JIRITSU_GENERAL__DATA_DIR="$JIRITSU_GENERAL__DATA_DIR/sim" jiritsu status
step "done in $(( $(date +%s) - started )) s"
cat <<EOF
The report is $JIRITSU_GENERAL__DATA_DIR/report/report.html (self-contained: open it in a
browser). The simulation's database is $JIRITSU_GENERAL__DATA_DIR/sim/jiritsu.db; to look at it
in the dashboard:

  . scripts/_env.sh
  export JIRITSU_GENERAL__DATA_DIR=$JIRITSU_GENERAL__DATA_DIR/sim
  export JIRITSU_DASHBOARD_PASSWORD_HASH="\$(jiritsu dashboard hash-password)"   # login: operator
  jiritsu dashboard serve
  # from your own machine when this runs on a server, then open http://127.0.0.1:8001 :
  ssh -L 8001:127.0.0.1:8001 user@server
EOF
