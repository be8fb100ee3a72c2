#!/usr/bin/env bash
# Kokoro speech rendered on the 16 CPU cores of one GPU machine (one NVIDIA H100 or H200 with 16
# CPU cores; the GPU is not used): the talk of the background bank, the held-out talk, then the
# head's corpus in shards (kws.corpus.kokoro_talk, kws.corpus.kokoro_corpus). The inputs travel in
# two chunks, .hc/k1 and .hc/k2 (scripts/corpus_chunks.sh), staged into /tmp/stage; the rendering
# runs detached (setsid) and outlives the command that starts it; each later command waits, then
# brings back the files finished since the last one (at most 8 files of 16 MiB and 64 MiB in all
# come back from one command: Ogg/Opus files in tar files of at most 15.5 MB, and meta.tar.gz with
# the index.json files and logs). The commands, each from the repository root (where .hc is), back
# to back (the machine is given back 30 s after a command ends):
#
#   ROOT=$PWD bash scripts/corpus_gpu.sh stage 1                                   # with .hc/k1
#   ROOT=$PWD bash scripts/corpus_gpu.sh stage 2 >/dev/null && BANK_H=4.6 HELD_H=3.05 DRIVE_MIN=13.5 \
#     bash /tmp/code/scripts/corpus_gpu.sh start && bash /tmp/code/scripts/corpus_gpu.sh collect 440   # with .hc/k2
#   bash /tmp/code/scripts/corpus_gpu.sh collect 335        # as often as needed, the last one after DRIVE_MIN
#
# and here, after each command that brought files (FILES_AT: where they arrived):
#
#   cd /work/corpus && for t in FILES_AT/data-*.tar; do tar xf "$t"; done
#   mkdir -p /tmp/meta && tar xzf FILES_AT/meta.tar.gz -C /tmp/meta
#   python -m kws.corpus.kokoro_talk index /work/corpus/talk-bank --add /tmp/meta/talk-bank/index.json
#   (the same for talk-heldout; kcorpus-shards/shard-I-of-N come whole, with their index.json,
#   whose stats say "complete": false for a shard that DRIVE_MIN cut short: render it again)
#
# The first command runs the repository's copy of this script, the later ones the staged copy in
# /tmp/code, so that files being edited in the working tree do not change what runs. Files rendered
# before and brought back into /work/corpus are not rendered again: corpus_chunks.sh puts their
# index.json into .hc/k2 (talk-bank-done.json.xz), and `drive` passes it to `render --skip`.
#
# As run on 2026-12-06, one NVIDIA H200 machine, 16 CPU cores (lscpu: "Intel(R) Xeon(R)
# Processor", one thread a core), onnxruntime 1.30.0 there:
#
# | step | minutes |
# |---|---|
# | `stage 1` (the machine's start, 62 MB up, the wheels installed) | 2.0 |
# | `stage 2` + `start` + `collect 440` (the model joined, sha256 checked; rendering from 04:32:43) | 7.9 |
# | `collect 335` (the driver stopped at DRIVE_MIN = 13.5 while rendering the bank) | 5.8 |
#
# Rendered: talk-bank, 75 of 276 files, 1.236 h (1,077 sentences, 1,153 renderings), 14.0 MB; no
# held-out talk and no corpus shard. Speed on the 16 processes: 5.5 audio-s/s, 1.44 renderings/s
# (a 59-s file took 157 s on one process: real-time factor 2.6 a process). That is about five
# times slower a core than Kokoro on a 2-core x86-64 CPU with AVX-512 VNNI and onnxruntime 1.32
# (real-time factor 0.55 on one core), so at this speed 4.5 h of talk needs 49 minutes of the 16
# cores. Check what that machine's CPU offers first (`grep -o 'avx512[a-z_]*\|avx_vnni\|amx[a-z_]*'
# /proc/cpuinfo | sort -u`; onnxruntime's int8 kernels use VNNI where the CPU has it) and measure
# one rendering before planning hours.
#
# BASE (default /tmp) moves every folder it uses. Settings (environment): DRIVE_MIN (minutes from
# `start` after which no new work begins and running work stops; default 19), WORKERS (16),
# BANK_H (4.6 hours), HELD_H (3.05), SHARDS ("0 1 ... 15"), NSHARDS (16), CORPUS_ARGS (the
# corpus's size: "--words 5200 --made-up 300 --per-word 4 --sentences 3000": 5,038 real words
# and 300 made-up ones, 24,352 renderings in all), TALK_ARGS (more arguments of kokoro_talk
# render, e.g. "--file-seconds 8"). A dry run on a CPU machine (after scripts/corpus_chunks.sh;
# about 2 minutes on 2 cores):
#
#   export BASE=/tmp/sim ROOT=$PWD OUT=/tmp/sim/out SKIP_PIP=1 WORKERS=2 BANK_H=0.005 HELD_H=0.004 \
#     TALK_ARGS="--file-seconds 8" SHARDS="0 1" NSHARDS=400 DRIVE_MIN=2.5 \
#     EXTRA_PYTHONPATH=$PWD/.venv/lib/python3.11/site-packages PATH=$PWD/.venv/bin:$PATH
#   bash scripts/corpus_gpu.sh stage 1 && bash scripts/corpus_gpu.sh stage 2 \
#     && bash /tmp/sim/code/scripts/corpus_gpu.sh start && bash /tmp/sim/code/scripts/corpus_gpu.sh collect 170
set -euo pipefail
OUT=${OUT:-/tmp/out}
B=${BASE:-/tmp}
export PYTHONPATH=$B/site:$B/code${EXTRA_PYTHONPATH:+:$EXTRA_PYTHONPATH} PYTHONUNBUFFERED=1
export KWS_KOKORO_MODEL=$B/stage/kokoro-v1.0.int8.onnx
WORKERS=${WORKERS:-16}
NSHARDS=${NSHARDS:-16}
SHARDS=${SHARDS:-$(seq -s ' ' 0 $((NSHARDS - 1)))}
CORPUS_ARGS=${CORPUS_ARGS:---words 5200 --made-up 300 --per-word 4 --sentences 3000}
phase=${1:?phase: stage N | start | drive | collect SEC | progress}

progress() {
  tail -n 4 $B/drive.log 2>/dev/null | cut -c1-400 || true
  for f in $B/render/*.log; do [ -f "$f" ] && echo "$(basename "$f"): $(tail -n 1 "$f" | cut -c1-300)"; done 2>/dev/null || true
}

case $phase in
stage)
  n=${2:?chunk number}
  mkdir -p $B/stage $B/code
  cp -r "$ROOT/.hc/k$n/." $B/stage/
  if [ -f $B/stage/code.tgz ]; then tar xzf $B/stage/code.tgz -C $B/code && rm $B/stage/code.tgz; fi
  if [ -d $B/stage/whl ] && [ ! -d $B/site ] && [ -z "${SKIP_PIP:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $B/site $B/stage/whl/*.whl
    nvidia-smi --query-gpu=name --format=csv,noheader || true; nproc; free -g | head -2
    python3 -c "import onnxruntime, soundfile, soxr; print('ort', onnxruntime.__version__, 'sndfile', soundfile.__libsndfile_version__)"
  fi
  ls -la $B/stage
  ;;
start)
  if [ ! -f $KWS_KOKORO_MODEL ]; then
    cat $B/stage/model.xz.* | python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), open(sys.argv[1], 'wb'))" $KWS_KOKORO_MODEL
  fi
  sha256sum $KWS_KOKORO_MODEL
  mkdir -p $B/render
  DEADLINE=$(( $(date +%s) + $(python3 -c "print(int(float('${DRIVE_MIN:-19}') * 60))") )) \
    setsid nohup bash $B/code/scripts/corpus_gpu.sh drive > $B/drive.log 2>&1 < /dev/null &
  sleep 20; progress
  ;;
drive)
  : "${DEADLINE:?}"
  trap 'touch $B/drive.done' EXIT
  cd $B/code
  left() { python3 -c "import time; print(round(max(0.0, ($DEADLINE - time.time()) / 60), 2))"; }
  echo "drive: $(date -u +%T) start, $(left) minutes"
  skip() { [ -f $B/stage/talk-$1-done.json.xz ] && echo "--skip $B/stage/talk-$1-done.json.xz" || true; }
  python3 -m kws.corpus.kokoro_talk render --texts $B/stage/talk-texts.json.xz --split bank --hours ${BANK_H:-4.6} \
    --seed 1 --out $B/render/talk-bank --workers $WORKERS --max-minutes "$(left)" $(skip bank) ${TALK_ARGS:-} > $B/render/bank.log 2>&1
  echo "drive: $(date -u +%T) bank $(cat $B/render/talk-bank/stats.json)"
  if python3 -c "import sys; sys.exit(0 if $(left) > 0.5 else 1)"; then
    python3 -m kws.corpus.kokoro_talk render --texts $B/stage/talk-texts.json.xz --split heldout --hours ${HELD_H:-3.05} \
      --seed 2 --out $B/render/talk-heldout --workers $WORKERS --max-minutes "$(left)" $(skip heldout) ${TALK_ARGS:-} > $B/render/heldout.log 2>&1
    echo "drive: $(date -u +%T) heldout $(cat $B/render/talk-heldout/stats.json)"
  fi
  mkdir -p $B/render/kcorpus-shards
  for i in $SHARDS; do
    m=$(python3 -c "print(round($(left) - 0.6, 2))")
    if python3 -c "import sys; sys.exit(0 if $m < 1.0 else 1)"; then echo "drive: no time for shard $i ($m min)"; break; fi
    python3 -m kws.corpus.kokoro_corpus --out $B/render/kc-$i --workers $WORKERS --shard $i/$NSHARDS \
      --max-minutes "$m" $CORPUS_ARGS > $B/render/kc-$i.log 2>&1
    d=$B/render/kcorpus-shards/shard-$i-of-$NSHARDS
    python3 -m kws.corpus.kokoro_corpus pack $B/render/kc-$i --out $d.tmp >> $B/render/kc-$i.log 2>&1
    mv $d.tmp $d && touch $d/DONE
    echo "drive: $(date -u +%T) shard $i $(cat $B/render/kc-$i/stats.json)"
    rm -rf $B/render/kc-$i
  done
  echo "drive: $(date -u +%T) finished"; touch $B/drive.done
  ;;
collect)
  end=$(( $(date +%s) + ${2:-0} ))
  while [ "$(date +%s)" -lt $end ] && [ ! -f $B/drive.done ]; do sleep 5; done
  mkdir -p "$OUT"
  cd $B/render
  python3 - "$OUT" "$B/collected.list" <<'PY'
import os, subprocess, sys, tarfile
from pathlib import Path
out, listf = Path(sys.argv[1]), Path(sys.argv[2])
done = set(listf.read_text().split()) if listf.exists() else set()
cands = []
for s in ("talk-bank", "talk-heldout"):
    if Path(s).is_dir():
        cands += sorted(str(p) for p in Path(s).glob("*.ogg"))
for d in sorted(Path("kcorpus-shards").glob("shard-*-of-*")) if Path("kcorpus-shards").is_dir() else []:
    if (d / "DONE").exists():
        cands += sorted(str(p) for p in d.iterdir() if p.name != "DONE")
todo = [c for c in cands if c not in done]
MAX_TAR, MAX_ALL, MAX_TARS = 15.5e6, 61e6, 4
tars, cur, size, total = [], [], 0, 0
for c in todo:
    n = os.path.getsize(c)
    if total + n > MAX_ALL:
        break
    if cur and size + n > MAX_TAR:
        tars.append(cur); cur, size = [], 0
        if len(tars) == MAX_TARS:
            break
    cur.append(c); size += n; total += n
if cur and len(tars) < MAX_TARS:
    tars.append(cur)
sent = []
for k, files in enumerate(tars):
    with tarfile.open(out / f"data-{k}.tar", "w") as t:
        for f in files:
            t.add(f)
    sent += files
with open(listf, "a") as fh:
    fh.write("".join(f + "\n" for f in sent))
meta = [p for p in ("talk-bank/index.json", "talk-bank/stats.json", "talk-heldout/index.json",
                    "talk-heldout/stats.json", "bank.log", "heldout.log") if Path(p).exists()]
meta += [str(p) for p in Path(".").glob("kc-*.log")]
with tarfile.open(out / "meta.tar.gz", "w:gz") as t:
    for p in meta:
        t.add(p)
    t.add("../drive.log", arcname="drive.log")
left = len(todo) - len(sent)
print(f"collect: {len(sent)} files ({total / 1e6:.1f} MB) in {len(tars)} tars; {left} finished files left")
PY
  ls -la "$OUT"; progress
  ;;
progress)
  progress
  ;;
esac
