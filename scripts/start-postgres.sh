#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on loopback for the test suite and print its URL.
# Installs Debian's postgresql package when no server binaries are present.
# Usage: eval "$(scripts/start-postgres.sh)"   # exports TRIALKIT_TEST_PG_URL
set -euo pipefail
port="${TRIALKIT_PG_PORT:-54329}"
dir="${TRIALKIT_PG_DIR:-/tmp/trialkit-pg-$port}"

find_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

bindir=$(find_bin || true)
if [ -z "$bindir" ]; then
  echo "installing PostgreSQL from Debian packages..." >&2
  export DEBIAN_FRONTEND=noninteractive
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq >&2
  $sudo_cmd apt-get install -y -qq postgresql >&2
  bindir=$(find_bin)
fi

# PostgreSQL refuses to run as root: run it as the 'postgres' user when we are root.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home "$dir" postgres
    su postgres -s /bin/bash -c "$*"
  else
    bash -c "$*"
  fi
}

if ! as_pg "'$bindir/pg_ctl' -D '$dir' status" >/dev/null 2>&1; then
  rm -rf "$dir"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  as_pg "'$bindir/initdb' -D '$dir' -A trust -U trialkit >/dev/null"
  as_pg "'$bindir/pg_ctl' -D '$dir' -l '$dir/server.log' -w \
    -o \"-h 127.0.0.1 -p $port -k '$dir' -c max_connections=200 -c fsync=off\" start >/dev/null"
  as_pg "'$bindir/createdb' -h 127.0.0.1 -p $port -U trialkit trialkit_test"
fi
echo "export TRIALKIT_TEST_PG_URL=postgresql://trialkit@127.0.0.1:$port/trialkit_test"
