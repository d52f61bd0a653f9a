#!/usr/bin/env bash
# Quick start, command 1: build the environment and show the system working on the embedded
# default configuration (paper trading, SQLite under ./var, fully offline).
# It grows with the system: today it validates the configuration, creates the database and prints
# the status; the trading engine will add a replay of synthetic markets here.
set -euo pipefail
. "$(dirname "$0")/_env.sh"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "configuration (paper mode, offline)"
jiritsu config check
step "database schema"
jiritsu db upgrade
jiritsu db current
step "status"
jiritsu status
