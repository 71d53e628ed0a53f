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
echo "== 2b. Multi-site: a server that alone holds the keys; sites enrol with tokens"
mkdir -m 700 "$work/keys"
sdb="sqlite:///$work/server.db"
port=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server="http://127.0.0.1:$port"
json_field() { python -c "import json, sys; print(json.load(sys.stdin)['$1'])"; }
admin=$(trialkit token create --role admin --key-dir "$work/keys" --db "$sdb" --format json | json_field token)
printf '
$ trialkit token create --role admin --key-dir keys --db %s
(admin token: %s…)
' "$sdb" "${admin:0:16}"
trialkit serve --db "$sdb" --key-dir "$work/keys" --port "$port" 2>/dev/null &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
python - "$server" <<'PY'
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.05)
PY
printf '
$ trialkit serve --db %s --key-dir keys --port %s &
' "$sdb" "$port"
printf '\n$ trialkit trial create designs/app-components-factorial.toml --server %s --token ADMIN\n' "$server"
trialkit trial create designs/app-components-factorial.toml --server "$server" --token "$admin"
london=$(trialkit token create app_components_factorial --role coordinator --site site=london \
  --server "$server" --token "$admin" --format json | json_field token)
printf '
$ trialkit token create app_components_factorial --role coordinator --site site=london --server %s --token ADMIN
(coordinator token for site london: %s…)
' "$server" "${london:0:16}"
printf '\n$ trialkit trial enrol app_components_factorial L001 --stratum site=london --server %s --token LONDON --format json\n' "$server"
trialkit trial enrol app_components_factorial L001 --stratum site=london --server "$server" --token "$london" --format json
printf '
$ trialkit trial enrol app_components_factorial M001 --stratum site=manchester --server %s --token LONDON
' "$server"
trialkit trial enrol app_components_factorial M001 --stratum site=manchester --server "$server" --token "$london" || true
printf '
$ trialkit trial status app_components_factorial --server %s --token LONDON
' "$server"
trialkit trial status app_components_factorial --server "$server" --token "$london" || true
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true

echo
echo "== 3. Analyse: rehearse the planned analysis on the real allocation (simulated outcomes)"
step trialkit simulate outcomes designs/app-components-factorial.toml "$work/allocations.csv" \
  --seed 1 --out "$work/rehearsal.csv"
step trialkit analyse factorial designs/app-components-factorial.toml "$work/rehearsal.csv" \
  --draws 500 --tune 500 --chains 2 --seed 1 --budget 15 --mcid 1
echo
echo "Files of this run: $work"
