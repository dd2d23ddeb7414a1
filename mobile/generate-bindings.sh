#!/usr/bin/env bash
# Builds fleetfront-mobile for this machine and generates its UniFFI bindings.
#
# Usage: mobile/generate-bindings.sh <kotlin|swift|python> <out-dir>
#
# The bindings depend only on the exported interface, not on the target: generate them once
# here, then link them with the library built for each device target (see mobile/README.md).
# For python the library is copied beside the generated module, which loads it from there.
# Nothing generated is checked in.
set -euo pipefail

usage() { echo "usage: $0 <kotlin|swift|python> <out-dir>" >&2; exit 2; }
[ $# -eq 2 ] || usage
language=$1
out=$2
case "$language" in kotlin|swift|python) ;; *) usage ;; esac

cd "$(dirname "$0")/.."
cargo build --locked -p fleetfront-mobile --features bindgen --lib --bin uniffi-bindgen
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
case "$(uname -s)" in
  Darwin) library="$target_dir/debug/libfleetfront_mobile.dylib" ;;
  *) library="$target_dir/debug/libfleetfront_mobile.so" ;;
esac

mkdir -p "$out"
"$target_dir/debug/uniffi-bindgen" generate --library "$library" --language "$language" --out-dir "$out"
if [ "$language" = python ]; then
  cp "$library" "$out/"
fi
echo "$language bindings in $out"
