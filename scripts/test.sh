#!/usr/bin/env bash
# Run the whole test suite: starts a throw-away PostgreSQL server on loopback (installing Debian's
# postgresql package if needed) so the service tests run against a real database.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/start-postgres.sh)"
exec .venv/bin/python -m pytest "$@"
