#!/usr/bin/env bash
# The main job on the bundled examples: validate the designs and show the factorial experiment.
set -euo pipefail
cd "$(dirname "$0")/.."
tk=.venv/bin/trialkit
set -x
$tk design validate designs/*.toml
$tk design show designs/app-components-factorial.toml
