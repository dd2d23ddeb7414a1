#!/usr/bin/env bash
# Benchmark: builds the server and the load generator in release mode, starts the server with
# demo data on a private PostgreSQL cluster in a temporary folder, and measures an
# authenticated read and write over loopback. Prints throughput and p50/p90/p99 latency.
#
# Usage: scripts/bench.sh [--connections N] [--seconds S]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p fleetfront-server -p fleetfront-bench
data=$(mktemp -d /tmp/fleetfront-bench.XXXXXX)
chmod 755 "$data"
port=${BENCH_PORT:-18080}
FLEETFRONT_LOG=warn FLEETFRONT_MAX_CONNECTIONS=${BENCH_DB_CONNECTIONS:-16} \
  "$CARGO_TARGET_DIR/release/fleetfront" serve --demo --listen "127.0.0.1:$port" --data-dir "$data" &
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
"$CARGO_TARGET_DIR/release/fleetfront-bench" --url "http://127.0.0.1:$port" "$@"
