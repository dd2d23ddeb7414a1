#!/usr/bin/env bash
# Installs the system packages the build and the tests need, when they are missing.
# Safe to run repeatedly; does nothing when everything is present.
set -euo pipefail

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
# `--bench`: Redis too, for the nearest-driver comparison (GEOSEARCH); the tests do not need it.
if [ "${1:-}" = "--bench" ]; then
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  sudo_cmd=()
  [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need[@]}"
fi
