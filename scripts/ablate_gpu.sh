#!/usr/bin/env bash
# Loss ablations (kws.train.ablation) on one GPU machine (one H100), within 10 minutes; run it
# again on the same machine to resume unfinished runs. Usage: scripts/ablate_gpu.sh [run names]
set -euo pipefail
start=$(date +%s)
source scripts/gpu_env.sh
left=$(( ${BUDGET_S:-560} - ($(date +%s) - start) ))
python3 -m kws.train.ablation run configs/ablation.json --out /tmp/ablate --parallel "${PARALLEL:-4}" \
  --budget-s "$left" ${1:+--only "$1"} 2>&1 | tee "$OUT/ablation.log"
python3 -m kws.train.ablation table /tmp/ablate | tee "$OUT/table.md"
tar czf "$OUT/ablation-logs.tgz" -C /tmp/ablate $(cd /tmp/ablate && ls -d */log.jsonl */stdout.log 2>/dev/null)
