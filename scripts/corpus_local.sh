#!/usr/bin/env bash
# The head's Kokoro corpus (kws.corpus.kokoro_corpus) rendered on a CPU machine, shard after shard,
# each packed as Ogg/Opus (about 10 MB an hour) so it can travel to the GPU machine
# (scripts/head_scale.sh gather). Resumable: a shard with DONE is not rendered again.
#
#   scripts/corpus_local.sh                 # all 16 shards into /work/corpus/kcorpus-shards
#   OUTDIR=/data/kc WORKERS=4 scripts/corpus_local.sh 0 1 2
#
# The plan: 5,200 frequent words and 300 made-up ones (never a digit or a wake word), 4 renderings
# each in the 28 voices and blends of two at speeds 0.8-1.2, and 3,000 sentences with word times.
set -euo pipefail
OUTDIR=${OUTDIR:-/work/corpus/kcorpus-shards}
WORK=${WORK:-$(dirname "$OUTDIR")/render}
WORKERS=${WORKERS:-2}
N=${NSHARDS:-16}
ARGS=${CORPUS_ARGS:---words 5200 --made-up 300 --per-word 4 --sentences 3000}
mkdir -p "$OUTDIR" "$WORK"
for i in ${@:-$(seq 0 $((N - 1)))}; do
  d=$OUTDIR/shard-$i-of-$N
  [ -f "$d/DONE" ] && continue
  python -m kws.corpus.kokoro_corpus --out "$WORK/kc-$i" --workers "$WORKERS" --shard "$i/$N" $ARGS > "$WORK/kc-$i.log" 2>&1
  rm -rf "$d.tmp"
  python -m kws.corpus.kokoro_corpus pack "$WORK/kc-$i" --out "$d.tmp" >> "$WORK/kc-$i.log" 2>&1
  mv "$d.tmp" "$d" && touch "$d/DONE"
  echo "$(date -u +%T) shard $i $(cat "$WORK/kc-$i/stats.json")" | tee -a "$OUTDIR/../drive.log"
  rm -rf "$WORK/kc-$i"
done
