#!/usr/bin/env bash
# The head (kws.train.head, docs/head.md) on one GPU machine (one NVIDIA H200, 16 CPU cores): the
# Kokoro corpus rendered there on the 16 cores, then the heads trained on the GPU. What one call
# may carry is limited (64 MiB with the repository), so the inputs travel in nine chunks, .hc/c1 ..
# .hc/c9 (made by scripts/head_chunks.sh), staged into /tmp/stage; the rendering and the training
# run in their own sessions (setsid) and outlive the call that starts them. The calls, each from
# the repository root (ROOT: where .hc is), in this order:
#
#   mkdir -p /tmp/stage && cp .hc/c1/* /tmp/stage/                    # and the same for c2, c3, c4
#   R=$PWD; mkdir -p /tmp/code && tar xzf .hc/c5/code.tgz -C /tmp/code && ROOT=$R bash /tmp/code/scripts/head_gpu.sh stage 5 \
#     && RENDER_ARGS="--words 600 --per-word 3 --sentences 150" bash /tmp/code/scripts/head_gpu.sh render 5
#   ROOT=$PWD bash /tmp/code/scripts/head_gpu.sh stage 6               # and 7, 8, 9
#   bash /tmp/code/scripts/head_gpu.sh train 11 150                    # waits for the corpus, starts training
#   bash /tmp/code/scripts/head_gpu.sh watch 420
#   bash /tmp/code/scripts/head_gpu.sh collect                         # checkpoints and logs into $OUT
#   CONFIG=configs/head-short.json bash /tmp/code/scripts/head_gpu.sh short   # the shipped head's training
#
# Minutes on one NVIDIA H200 with 16 cores: staging 2.0 (the first call starts the machine), the
# corpus 5.0 (1,573 renderings, --max-minutes 5), training 11.0 + 0.4 setup (configs/head.json, five
# heads, 3,666 steps), 3.2 + 0.3 (configs/head-short.json, three heads, 1,283 steps); 23.8 in all.
#
# BASE (default /tmp) moves every folder it uses; RENDER_ARGS and TRAIN_ARGS add arguments (a
# dry run on a CPU machine: BASE=/tmp/hsim SKIP_PIP=1 RENDER_ARGS="--words 20 --per-word 3
# --sentences 10 --workers 2" TRAIN_ARGS="steps=3 words_per_batch=8" with the same sequence).
set -euo pipefail
OUT=${OUT:-/tmp/out}
B=${BASE:-/tmp}
export PYTHONPATH=$B/site:$B/code${EXTRA_PYTHONPATH:+:$EXTRA_PYTHONPATH} PYTHONUNBUFFERED=1
phase=${1:?phase: stage N | render MIN | train MIN SEC | watch SEC | collect | short}

progress() {
  tail -n 2 $B/render.log 2>/dev/null | cut -c1-400 || true
  grep -v '"loss"' $B/train.log 2>/dev/null | tail -n 6 | cut -c1-700 || true
  grep '"loss"' $B/train.log 2>/dev/null | tail -n 1 | cut -c1-900 || true
}

case $phase in
stage)
  n=${2:?chunk number}
  mkdir -p $B/stage $B/code
  cp -r "$ROOT/.hc/c$n/." $B/stage/
  if [ -f $B/stage/code.tgz ]; then tar xzf $B/stage/code.tgz -C $B/code && rm $B/stage/code.tgz; fi
  if [ -d $B/stage/whl ] && [ ! -d $B/site ] && [ -z "${SKIP_PIP:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $B/site $B/stage/whl/*.whl
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; nproc
    python3 -c "import torch, onnxruntime, soundfile, soxr; print('torch', torch.__version__, 'ort', onnxruntime.__version__, 'sndfile', soundfile.__libsndfile_version__)"
  fi
  if [ -d $B/stage/sp ]; then
    mkdir -p $B/stage/speech/audio
    cp $B/stage/sp/audio/* $B/stage/speech/audio/
    [ -f $B/stage/sp/index.json ] && cp $B/stage/sp/index.json $B/stage/speech/
    rm -rf $B/stage/sp
    ls $B/stage/speech/audio | wc -l
  fi
  ls $B/stage; progress
  ;;
render)
  minutes=${2:?minutes at most}
  cat $B/stage/model.xz.* | python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), open(sys.argv[1], 'wb'))" $B/stage/kokoro-v1.0.int8.onnx
  sha256sum $B/stage/kokoro-v1.0.int8.onnx
  cd $B/code
  KWS_KOKORO_MODEL=$B/stage/kokoro-v1.0.int8.onnx setsid nohup python3 -m kws.corpus.kokoro_corpus \
    --out $B/kcorpus --workers 16 --max-minutes "$minutes" ${RENDER_ARGS:-} > $B/render.log 2>&1 < /dev/null &
  sleep 25; progress
  ;;
train)
  minutes=${2:?minutes of training}
  until [ -f $B/kcorpus/stats.json ]; do
    if ! pgrep -f "kws.corpus.kokoro_corpus" > /dev/null; then sleep 3; [ -f $B/kcorpus/stats.json ] || { tail -n 30 $B/render.log; exit 1; }; fi
    sleep 5
  done
  cat $B/kcorpus/stats.json; echo
  mkdir -p $B/run
  cd $B/code
  setsid nohup python3 -m kws.train.head train configs/head.json minutes="$minutes" corpus=$B/kcorpus \
    speech=$B/stage/speech noise=$B/stage/noise.ogg music=$B/stage/music.ogg rooms=$B/stage/rooms.npz \
    val=$B/stage/val.npy out=$B/run ${TRAIN_ARGS:-} > $B/train.log 2>&1 < /dev/null &
  sleep "${3:-240}"; progress
  ;;
watch)
  sleep "${2:-300}"; progress; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  ;;
collect)
  while pgrep -f "kws.train.head train" > /dev/null; do sleep 5; done
  progress
  cd $B/run
  for d in */; do d=${d%/}; tar czf "$OUT/head-$d.tgz" "$d/best.pt" "$d/last.pt"; done
  cp $B/train.log $B/render.log $B/kcorpus/stats.json .
  tar czf "$OUT/logs.tgz" config.json summary.json history.json train.log render.log stats.json
  ls -la "$OUT"
  ;;
short)
  # a second training on the same staged inputs, in the foreground (one call), into $OUT
  cd $B/code
  python3 -m kws.train.head train "${CONFIG:-configs/head-short.json}" corpus=$B/kcorpus speech=$B/stage/speech \
    noise=$B/stage/noise.ogg music=$B/stage/music.ogg rooms=$B/stage/rooms.npz val=$B/stage/val.npy \
    out=$B/run2 ${TRAIN_ARGS:-} > $B/train2.log 2>&1
  cd $B/run2 && for d in */; do tar czf "$OUT/run2-${d%/}.tgz" "${d}best.pt" "${d}last.pt"; done
  cp $B/train2.log config.json "$OUT/"; tail -n 2 $B/train2.log | cut -c1-600
  ;;
esac
