#!/usr/bin/env bash
# Create .venv (if needed) and install trialkit with its runtime and development dependencies.
# Re-running is cheap: the install is skipped while pyproject.toml is unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "trialkit needs Python >= 3.11 (found: $("$python" --version 2>&1)) — set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=.venv/.trialkit-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip >/dev/null
  .venv/bin/python -m pip install --quiet -e ".[dev,pdf]"
  touch "$stamp"
fi
# Headless Chromium (Debian's package): the design-report test opens the HTML report in it.
# Pango: WeasyPrint lays out the PDF report with it.
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    && { ! command -v chromium >/dev/null 2>&1 || ! ldconfig -p | grep -q libpangoft2-1.0; }; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
      libpango-1.0-0 libpangoft2-1.0-0; } \
    >/dev/null 2>&1 || echo "setup: could not install chromium or pango (the browser and PDF tests will be skipped)" >&2
fi
