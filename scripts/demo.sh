#!/usr/bin/env bash
# The main job on the bundled examples: plan the trials, randomise participants into the factorial
# screening experiment, and rehearse its analysis on the real allocation.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/trialkit-demo-XXXXXX")
db="sqlite:///$work/trial.db"
step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "== 1. Plan: check the design files, then power and sample size"
step trialkit design validate designs/*.toml
step trialkit design show designs/app-components-factorial.toml
step trialkit power designs/app-components-factorial.toml
step trialkit samplesize designs/checkin-prompts-mrt.toml --outcome mood
step trialkit simulate designs/three-arm-adaptive.toml --reps 500 --seed 1

echo
echo "== 2. Randomise: a live trial from the same design file (store and key in $work)"
step trialkit trial create designs/app-components-factorial.toml --db "$db" --key-file "$work/trial.key"
sites=(london manchester online)
for i in $(seq 1 96); do
  trialkit trial enrol app_components_factorial "$(printf 'P%03d' "$i")" \
    --stratum "site=${sites[$((i % 3))]}" --db "$db" >/dev/null
done
printf '\n(enrolled 96 participants with `trialkit trial enrol NAME ID --stratum site=...`)\n'
step trialkit trial enrol app_components_factorial P001 --stratum site=manchester --db "$db" --format json
step trialkit trial verify app_components_factorial --key-file "$work/trial.key" --db "$db"
trialkit trial export app_components_factorial --db "$db" --format csv > "$work/allocations.csv"
printf '\n$ trialkit trial export app_components_factorial --format csv > allocations.csv\n'
head -3 "$work/allocations.csv"

echo
echo "== 3. Analyse: rehearse the planned analysis on the real allocation (simulated outcomes)"
step trialkit simulate outcomes designs/app-components-factorial.toml "$work/allocations.csv" \
  --seed 1 --out "$work/rehearsal.csv"
step trialkit analyse factorial designs/app-components-factorial.toml "$work/rehearsal.csv" \
  --draws 500 --tune 500 --chains 2 --seed 1 --budget 15 --mcid 1
echo
echo "Files of this run: $work"
