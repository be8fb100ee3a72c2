#!/usr/bin/env bash
# Distil students of the shipped model's audio encoder on one GPU machine (one H100), side by side
# on its GPU, within 10 minutes (kws.train.distill).
# Carried beside the repo: .tts (without the festival packages: the teacher never heard festival,
#   and it keeps what is copied to the GPU machine small: mkdir .tts-festival; mv .tts/fest* .tts/libestools* .tts-festival/),
# .whl (scripts/gpu_env.sh, plus soundfile, cffi, pycparser wheels to read Ogg), and in .carry:
#   teacher.pt   python -m kws.train.distill pack runs/v1/model.pt .carry/teacher.pt
#   speech_a/    python -m kws.train.distill speech ../shared/data .carry/speech_a  (12 MB, tuning-half speakers)
#   noise.npz, rooms.npz as for training.
# Usage: STUDENTS="192:2:2 128:3:2 192:2:2:nospeech" scripts/distill_gpu.sh configs/distill.json [key=value ...]
# Each student is hidden:layers:stack[:nospeech]. Writes OUT/<name>.pt and OUT/logs.tgz.
# INIT_DIR=.carry/students continues students that an earlier command wrote to OUT (copy them there;
#   python -m kws.train.distill shrink OUT/<name>.pt .carry/students/<name>.pt halves their size).
# The tracked model bundle (kws/assets/model) must not be copied along: untrack it meanwhile
#   (git rm -r -q --cached kws/assets/model; echo /kws/assets/model/ >> .git/info/exclude) and
#   restore it after (git reset -q kws/assets/model; remove that exclude line).
set -euo pipefail
start=$(date +%s)
budget=${BUDGET_S:-540}
export CORPUS_SIZE=${CORPUS_SIZE:-medium}
source scripts/gpu_env.sh
cat /tmp/corpus/stats.json
config=$1; shift
left=$(( budget - ($(date +%s) - start) ))
minutes=$(python3 -c "print(max(0.5, ($left - 60) / 60))")
echo "distilling for $minutes minutes"
mkdir -p /tmp/distill "$OUT/logs"
pids=()
for spec in ${STUDENTS:-192:2:2}; do
  IFS=: read -r h l k extra <<< "$spec"
  name="s${h}x${l}k${k}${extra:+-$extra}"
  more=()
  [ "${extra:-}" = nospeech ] && more+=(speech=null)
  # INIT_DIR: continue each student from INIT_DIR/<name>.pt where there is one
  [ -n "${INIT_DIR:-}" ] && [ -f "$INIT_DIR/$name.pt" ] && more+=(init="$INIT_DIR/$name.pt")
  python3 -m kws.train.distill train "$config" audio_hidden="$h" audio_layers="$l" stack="$k" \
    out="/tmp/distill/$name" max_minutes="$minutes" "${more[@]}" "$@" > "$OUT/logs/$name.log" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || echo "a student failed (see its log)"; done
for d in /tmp/distill/*/; do
  n=$(basename "$d")
  [ -f "$d/student.pt" ] && cp "$d/student.pt" "$OUT/$n.pt"
  grep '"eval"' "$OUT/logs/$n.log" | tail -1 | cut -c1-400 || true
done
tar -czf "$OUT/logs.tgz" -C "$OUT" logs && rm -r "$OUT/logs"
ls -la "$OUT"
