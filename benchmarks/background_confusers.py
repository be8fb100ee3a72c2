"""Which passages of the held-out background speech a typed keyword scores highest on, per model:
the passages that set its threshold for 1 false alarm an hour in ``python -m kws evaluate``.

    python benchmarks/background_confusers.py --model kws/assets/model --model DIR --keyword alexa

The background is the one ``kws evaluate`` counts false alarms on: the held-out half's
speechocean762 sentences (read speech of speakers never trained on), whose transcripts are in
``../shared/data/speechocean762-train/text``. Keywords are enrolled as ``enroll add`` makes them
(typed, 28 Kokoro voices); each sentence's score peaks come from the one event rule
(kws.spot.events.peaks). Printed per model: the ``--top`` highest peaks with their sentences.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kws.audio.io import load_audio  # noqa: E402
from kws.corpus.align import read_set  # noqa: E402
from kws.corpus.real import speech_files  # noqa: E402
from kws.evaluate import Renders, Vectors, keywords  # noqa: E402
from kws.model.model import Model  # noqa: E402
from kws.spot.events import peaks  # noqa: E402
from kws.spot.templates import TemplateBank, keyword_templates, template_scores  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", type=Path, action="append", help="model folder (repeat; default: shipped)")
    ap.add_argument("--keyword", action="append", help="typed keyword (repeat; default: alexa)")
    ap.add_argument("--half", choices=("a", "b"), default="b")
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args(argv)
    try:
        text = {utt: words for utt, _, words in read_set(args.data)}
    except FileNotFoundError as exc:
        ap.error(str(exc))
    words = args.keyword or ["alexa"]
    models = [Model.load(m) for m in args.model] if args.model else [Model.load()]
    files = speech_files(args.data, args.half)
    raw = Vectors(models[0].frontend).long([load_audio(f) for f in files], "background", False)
    hours = sum(v.shape[0] for v in raw) * models[0].frontend.hop / 16000 / 3600
    print(f"{len(files)} sentences, {hours:.2f} h of held-out read speech")
    renders = Renders(True)
    for m in models:
        bank = TemplateBank.build([keyword_templates(m, k) for k in keywords(m, renders, words)], soft_max=m.soft_max)
        found = [[] for _ in words]
        for f, v in zip(files, raw):
            if v.shape[0] == 0:
                continue
            s = bank.keyword_scores(template_scores(bank, m.head(v)))
            for k in range(len(words)):
                found[k] += [(float(p), f.stem) for p in peaks(s[:, k])]
        for k, w in enumerate(words):
            print(f"\n{m.model_id}: '{w}', the {args.top} highest background peaks")
            for p, stem in sorted(found[k], reverse=True)[:args.top]:
                print(f"  {p:.3f}  {stem}  {text.get(stem, '?')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
