#!/usr/bin/env bash
# Cold set-up + run, as a new user meets it: a fresh clone of this repo, an empty uv cache
# (every package downloaded again; torch from the local wheel folder), then `make run`, then a
# no-op `dvc repro`. Prints a table and writes benchmarks/results/cold_start.json.
#   bash benchmarks/cold_start.sh [WORKDIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$(mktemp -d)}
out="$repo/benchmarks/results/cold_start.json"
git clone -q "$repo" "$work/clone"
cd "$work/clone"
now() { date +%s.%N; }
t0=$(now)
UV_CACHE_DIR="$work/uv-cache" make setup > "$work/setup.log" 2>&1
t1=$(now)
make run > "$work/run.log" 2>&1
t2=$(now)
PATH="$PWD/.venv/bin:$PATH" PREFECT_HOME="$PWD/.prefect" DVC_NO_ANALYTICS=1 \
  PREFECT_SERVER_ANALYTICS_ENABLED=false HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
  MLFLOW_DISABLE_TELEMETRY=true dvc repro > "$work/noop.log" 2>&1
t3=$(now)
setup=$(echo "$t1 - $t0" | bc); run=$(echo "$t2 - $t1" | bc); noop=$(echo "$t3 - $t2" | bc)
accuracy=$(python3 -c "import json;print(json.load(open('reports/metrics.json'))['base']['accuracy'])")
mkdir -p "$(dirname "$out")"
printf '{"setup_s": %.1f, "pipeline_s": %.1f, "noop_repro_s": %.1f, "test_accuracy": %s}\n' \
  "$setup" "$run" "$noop" "$accuracy" > "$out"
printf '%-28s %8s\n' "step" "seconds"
printf '%-28s %8.1f\n' "make setup (empty uv cache)" "$setup" "make run (dvc repro)" "$run" \
  "no-op dvc repro" "$noop"
echo "test accuracy $accuracy; wrote $out (logs in $work)"
