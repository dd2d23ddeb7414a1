#!/usr/bin/env bash
# Benchmark: builds the server and the load generator in release mode, starts the server with
# demo data on a private PostgreSQL cluster in a temporary folder, and runs fleetfront-bench
# against it over loopback: it seeds its own store (1,000 products, a flash-sale variant), then
# measures each scenario and prints throughput, p50/p99/p999 latency, errors by status and the
# server's and PostgreSQL's CPU per operation.
#
# Usage: scripts/bench.sh [--scenario read write listing cart order flash locations nearest
#                                      dispatch sync sync-local]
#                         [--connections N] [--rate R] [--seconds S] [any other fleetfront-bench option]
# Without --scenario every scenario runs except `locations` (it registers --drivers driver
# accounts first), `nearest` (in process, with Redis GEOSEARCH for comparison), and the sync
# suite (`sync` against the server through fleetfront-core, `sync-local` on a client store
# alone), which run only when named. The server
# (and with it its private PostgreSQL) is stopped and the temporary folder removed on exit, also
# when something fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --locked -p fleetfront-server -p fleetfront-bench
# The flash sale opens a connection per buyer, on both ends.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
data=$(mktemp -d /tmp/fleetfront-bench.XXXXXX)
chmod 755 "$data"
server=
tool=
cleanup() {
  status=$?
  if [ -n "$tool" ]; then kill "$tool" 2>/dev/null || true; wait "$tool" 2>/dev/null || true; fi
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    # The server stops its PostgreSQL cluster on shutdown; give it a bounded time to do so.
    for _ in $(seq 1 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  # A postmaster left behind (server killed hard) is stopped by its pid file.
  if [ -f "$data/postgres/data/postmaster.pid" ]; then
    pg=$(head -n1 "$data/postgres/data/postmaster.pid")
    kill -INT "$pg" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pg" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$data"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
port=${BENCH_PORT:-18080}
FLEETFRONT_LOG=warn FLEETFRONT_MAX_CONNECTIONS=${BENCH_DB_CONNECTIONS:-16} \
  "$CARGO_TARGET_DIR/release/fleetfront" serve --demo --listen "127.0.0.1:$port" --data-dir "$data" &
server=$!
ready=
for _ in $(seq 1 240); do
  if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server" 2>/dev/null || { echo "bench: the server exited during start-up" >&2; exit 1; }
  sleep 0.5
done
[ -n "$ready" ] || { echo "bench: the server did not become ready" >&2; exit 1; }
pids=(--server-pid "$server")
if [ -f "$data/postgres/data/postmaster.pid" ]; then
  pids+=(--postgres-pid "$(head -n1 "$data/postgres/data/postmaster.pid")")
else
  echo "bench: no postmaster.pid under $data/postgres/data; database CPU will not be reported" >&2
fi
# In the background, so a signal to this script runs the clean-up at once.
"$CARGO_TARGET_DIR/release/fleetfront-bench" --url "http://127.0.0.1:$port" "${pids[@]}" "$@" &
tool=$!
wait "$tool"
