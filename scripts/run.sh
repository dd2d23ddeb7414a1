#!/usr/bin/env bash
# Runs the platform: the API server with demo data. Without DATABASE_URL it starts (and keeps
# between runs) a private PostgreSQL cluster in .fleetfront/postgres. Extra arguments go to
# `fleetfront serve` (e.g. --listen 127.0.0.1:9000).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
exec cargo run --locked -p fleetfront-server -- serve --demo "$@"
