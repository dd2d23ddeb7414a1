#!/usr/bin/env bash
# Runs every test of the workspace against a real PostgreSQL.
#
# With DATABASE_URL set (a superuser URL), the tests use that server; otherwise a temporary
# cluster is started from the installed PostgreSQL binaries (as the postgres user when run as
# root) on a private Unix socket and removed afterwards. Each database test clones its own fresh
# database from a migrated template.
#
# Usage: scripts/test.sh [extra cargo test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

cleanup() { :; }
trap 'cleanup' EXIT

if [ -n "${DATABASE_URL:-}" ]; then
  export FLEETFRONT_TEST_DATABASE_URL="$DATABASE_URL"
else
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$pg_bin/initdb" ] || { echo "PostgreSQL server binaries not found: apt-get install postgresql" >&2; exit 1; }
  tmp=$(mktemp -d /tmp/fleetfront-test-pg.XXXXXX)
  chmod 755 "$tmp"
  as_pg=()
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$tmp"
    as_pg=(runuser -u postgres --)
  fi
  "${as_pg[@]}" "$pg_bin/initdb" -D "$tmp/data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  "${as_pg[@]}" "$pg_bin/pg_ctl" start -w -D "$tmp/data" -l "$tmp/server.log" \
    -o "-c listen_addresses='' -c unix_socket_directories='$tmp' -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null
  cleanup() {
    "${as_pg[@]}" "$pg_bin/pg_ctl" stop -m immediate -D "$tmp/data" >/dev/null 2>&1 || true
    rm -rf "$tmp"
  }
  export FLEETFRONT_TEST_DATABASE_URL="postgres://postgres@localhost/postgres?host=$tmp"
  echo "test PostgreSQL: temporary cluster in $tmp"
fi

# The domain core must keep building for the web (wasm32), where clients will run it too.
if [ $# -eq 0 ]; then
  rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
  cargo check --locked -p fleetfront-domain --target wasm32-unknown-unknown
fi

cargo test --workspace --locked "$@"
