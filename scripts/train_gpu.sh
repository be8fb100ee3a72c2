#!/usr/bin/env bash
# Build the full corpus and train on one GPU machine (one H100), within 10 minutes.
# Needs what scripts/gpu_env.sh names, carried beside the repo. Usage: scripts/train_gpu.sh CONFIG [key=value ...]
set -euo pipefail
start=$(date +%s)
budget=${BUDGET_S:-560}
source scripts/gpu_env.sh
cat /tmp/corpus/stats.json
left=$(( budget - ($(date +%s) - start) ))
minutes=$(python3 -c "print(max(0.5, ($left - 75) / 60))")
echo "training for $minutes minutes"
config=$1; shift
python3 -m kws.train "$config" max_minutes=$minutes ${RESUME:+--resume} "$@" 2>&1 | tee "$OUT/train.log" | grep -v '"loss"' || true
run=$(python3 -c "import json,sys; print(json.load(open('$config'))['out'])")
cp "$run/log.jsonl" "$OUT/" 
python3 -m kws.train.checkpoint split "$run/best.pt" "$OUT"
ls -la "$OUT"
