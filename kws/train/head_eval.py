"""Clip-level evaluation of a head against raw templates, on real recordings (../shared/data).

    python -m kws.train.head_eval prepare --data ../shared/data --music eval-music.ogg --out eval-sets
    python -m kws.train.head_eval report --sets eval-sets --half b --head kws/assets/model [--json out.json]

``prepare`` turns the recordings into raw front-end vectors once (kws.model.backbone, 96-d every 80 ms),
so any head is measured in seconds on the same numbers (a head maps raw vectors to the vectors
templates are matched in, kws.model.head):

- typed-keyword templates: Kokoro renderings of alexa / computer / jarvis and of the ten digit
  words in the 28 shipped voices at speed 1 (kws.enroll.kokoro), cut as kws.spot.templates cuts them;
- the wake-word clips (kws.corpus.real.wakeword_clips), each half (split_of), as the matcher sees
  a whole clip (padded with 1.0 s of silence, as kws.evaluate pads clips; ``--pad``;
  kws.spot.templates.source_vectors): clean; with babble of
  6 held-out talkers at 10 dB (kws.corpus.real.babble); with evaluation-only music at 10 dB;
  with synthetic reverberation of RT60 0.5 s and 1.2 s (kws.evaluate.reverb);
- the FSDD digit clips, each half, clean and with babble at 10 dB;
- background: the speechocean762 sentences of each half's speakers (speaker_half), for false
  alarms an hour. Half 'a' is split further by speaker (:func:`validation_speaker`): the
  validation speakers' sentences are never trained on and serve as the background of the
  validation run during training.

``report`` prints, for raw templates and for the head: per condition the mean over the three wake
words of the clip EER and of the miss rate at 1 false alarm an hour (the threshold that lets one
background peak an hour through; peaks as kws.spot.events.peaks finds them, 1 s of refractory
time), and the digits' 10-way accuracy from text and mean EER.
"""
from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from kws.model.head import unit
from kws.spot.templates import TRIM, TemplateBank, cut, source_vectors, template_scores
from kws.spot.events import peaks

WAKE = ("alexa", "computer", "jarvis")
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WAKE_CONDITIONS = ("clean", "babble10", "music10", "reverb", "reverb12")
FSDD_CONDITIONS = ("clean", "babble10")


def validation_speaker(speaker: str) -> bool:
    """A fifth of the speakers (of either half) whose sentences are kept out of training."""
    return zlib.crc32(("val" + speaker).encode()) % 5 == 0


# ----------------------------------------------------------------------------- preparing
def _backbone():
    """The shipped model's front end (kws/assets/model)."""
    from kws.model.backbone import Backbone, as_files
    from kws.model.model import default_model_path

    return Backbone(as_files(default_model_path()))


def render_words(words, quiet=False) -> Dict[str, List[np.ndarray]]:
    """Each word's Kokoro renderings (16 kHz audio) in the 28 voices, speed 1."""
    from kws.enroll import kokoro
    from kws.enroll.phonemes import pronounce

    out = {}
    for w in words:
        ph = kokoro.pronunciation_phonemes(pronounce(w))
        out[w] = [np.asarray(kokoro.render(ph, r), np.float32) for r in kokoro.default_renderings()]
        if not quiet:
            print(f"templates: {w}", flush=True)
    return out


def render_templates(bb, words, quiet=False) -> Dict[str, List[np.ndarray]]:
    """Raw vectors of each word's padded utterance (kws.spot.templates.source_vectors; not yet cut)
    in the 28 voices, speed 1 (:func:`render_words`)."""
    return {w: [source_vectors(bb, x).astype(np.float32) for x in xs]
            for w, xs in render_words(words, quiet).items()}


def prepare(data: Path, out: Path, music: Optional[Path] = None, quiet: bool = False,
            pad_s: Optional[float] = None) -> dict:
    """The sets of the module docstring into ``out`` (eval-a.npy, eval-b.npy). ``pad_s``: the
    silence around each clip, default kws.evaluate's CLIP_PAD_S (1.0 s), as the detector hears a
    word said after silence; sets made with 0.6 s (``--pad 0.6``, the template padding) make
    heads look better in babble and rooms than the detector finds them, and can hide a head's
    loss on short words (docs/head.md, *The clips' silence*)."""
    from kws.audio.io import AudioError, load_audio
    from kws.corpus.real import babble, fsdd_clips, load_clip, speech_files, split_of, wakeword_clips
    from kws.evaluate import CLIP_PAD_S, mix, reverb

    pad_s = CLIP_PAD_S if pad_s is None else float(pad_s)

    bb = _backbone()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    bab = babble(data, 6, 120.0, seed=1)
    mus = load_audio(music) if music else None
    sets: Dict[str, dict] = {h: {"wake": {c: [] for c in WAKE_CONDITIONS}, "wake_label": [],
                                 "fsdd": {c: [] for c in FSDD_CONDITIONS}, "fsdd_label": []} for h in "ab"}

    def vec(x):
        return source_vectors(bb, x, trim=False, pad_s=pad_s).astype(np.float16)

    for c in wakeword_clips(data):
        try:
            x = load_clip(c)
        except AudioError:
            continue
        s = sets[split_of(c)]
        s["wake_label"].append(c.label)
        s["wake"]["clean"].append(vec(x))
        s["wake"]["babble10"].append(vec(mix(x, bab, 10, rng)))
        s["wake"]["music10"].append(vec(mix(x, mus, 10, rng)) if mus is not None else vec(x))
        s["wake"]["reverb"].append(vec(reverb(x, rng)))
        s["wake"]["reverb12"].append(vec(reverb(x, rng, rt60=1.2)))
    if not quiet:
        print("wake words done", flush=True)
    for c in fsdd_clips(data):
        x = load_clip(c)
        s = sets[split_of(c)]
        s["fsdd_label"].append(c.label)
        s["fsdd"]["clean"].append(vec(x))
        s["fsdd"]["babble10"].append(vec(mix(x, bab, 10, rng)))
    if not quiet:
        print("digits done", flush=True)
    for h in "ab":
        bg, spk = [], []
        for f in speech_files(data, h):
            bg.append(bb(load_audio(f)).astype(np.float16))
            spk.append(f.parent.name.replace("SPEAKER", ""))
        sets[h]["background"] = bg
        sets[h]["background_speaker"] = spk
    if not quiet:
        print("background done", flush=True)
    templates = render_templates(bb, WAKE + DIGIT_WORDS, quiet)
    for h in "ab":
        sets[h]["templates"] = templates
        sets[h]["music"] = bool(mus is not None)
        sets[h]["pad_s"] = pad_s
        np.save(out / f"eval-{h}.npy", sets[h], allow_pickle=True)
    return {h: {"wake": len(sets[h]["wake_label"]), "fsdd": len(sets[h]["fsdd_label"]),
                "background_h": float(sum(v.shape[0] for v in sets[h]["background"]) * 0.08 / 3600)}
            for h in "ab"}


def load_sets(folder: Path, half: str) -> dict:
    return np.load(Path(folder) / f"eval-{half}.npy", allow_pickle=True).item()


def validation_subset(sets: dict) -> dict:
    """Half 'a' with only the validation speakers' background (the rest is trained on)."""
    keep = [validation_speaker(s) for s in sets["background_speaker"]]
    out = dict(sets)
    out["background"] = [v for v, k in zip(sets["background"], keep) if k]
    out["background_speaker"] = [s for s, k in zip(sets["background_speaker"], keep) if k]
    return out


# ----------------------------------------------------------------------------- measuring
def head_template(head, vectors: np.ndarray, trim_end: int = TRIM) -> np.ndarray:
    """A template through a head: the head runs over the whole padded utterance, then the
    template is cut (kws.spot.templates.cut, ``trim_end`` vectors dropped at its end)."""
    a, b = cut(vectors.shape[0], TRIM, trim_end)
    return head(np.asarray(vectors, np.float32))[a:b]


def template_bank(templates: Dict[str, List[np.ndarray]], words, head, trim_end: int = TRIM,
                  soft_max: float = 0.0) -> TemplateBank:
    return TemplateBank.build([[head_template(head, t, trim_end) for t in templates[w]] for w in words],
                              soft_max=soft_max)


def evaluate(sets: dict, head: Callable[[np.ndarray], np.ndarray], wake_conditions=WAKE_CONDITIONS,
             fsdd_conditions=FSDD_CONDITIONS, trim_end: int = TRIM, soft_max: float = 0.0) -> dict:
    """Wake words: mean EER and miss at 1 FA/h per condition; digits: 10-way accuracy and mean
    EER per condition. ``head`` maps raw (T, 96) vectors to unit vectors; templates are cut with
    ``trim_end`` vectors dropped at their end; a keyword's score combines its templates' with
    ``soft_max`` (kws.spot.templates.combine; 0: the best template's)."""
    from kws.metrics import eer, miss_at_false_alarm_rate

    res: dict = {}
    bank = template_bank(sets["templates"], WAKE, head, trim_end, soft_max)
    hours = sum(v.shape[0] for v in sets["background"]) * 0.08 / 3600
    pk = {w: [] for w in WAKE}
    for v in sets["background"]:
        s = bank.keyword_scores(template_scores(bank, head(v.astype(np.float32))))
        for k, w in enumerate(WAKE):
            pk[w] += peaks(s[:, k]).tolist()
    labels = np.array(sets["wake_label"])
    for cond in wake_conditions:
        sc = np.stack([bank.keyword_scores(template_scores(bank, head(v.astype(np.float32)))).max(0)
                       for v in sets["wake"][cond]])
        eers = [eer(sc[:, k], labels == w)[0] for k, w in enumerate(WAKE)]
        miss = [miss_at_false_alarm_rate(sc[labels == w, k], pk[w], hours, 1.0)[0]
                for k, w in enumerate(WAKE)]
        res[f"wake_{cond}"] = {"eer": float(np.mean(eers)), "miss_1fah": float(np.mean(miss)),
                               "per_word_eer": dict(zip(WAKE, map(float, eers))),
                               "per_word_miss": dict(zip(WAKE, map(float, miss)))}
    dbank = template_bank(sets["templates"], DIGIT_WORDS, head, trim_end, soft_max)
    dl = np.array(sets["fsdd_label"])
    for cond in fsdd_conditions:
        sc = np.stack([dbank.keyword_scores(template_scores(dbank, head(v.astype(np.float32)))).max(0)
                       for v in sets["fsdd"][cond]])
        acc = float(np.mean(np.array(DIGIT_WORDS)[sc.argmax(1)] == dl))
        eers = [eer(sc[:, k], dl == w)[0] for k, w in enumerate(DIGIT_WORDS)]
        res[f"digits_{cond}"] = {"accuracy": acc, "eer": float(np.mean(eers))}
    res["background_hours"] = hours
    return res


def table(results: Dict[str, dict]) -> str:
    """Markdown: one column per model."""
    names = list(results)
    rows = ["| condition | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    first = results[names[0]]
    for key in first:
        if key.startswith("wake_"):
            cells = [f"{results[n][key]['eer']:.1%} / {results[n][key]['miss_1fah']:.1%}" for n in names]
            rows.append(f"| {key[5:]}: EER / missed at 1 FA/h | " + " | ".join(cells) + " |")
        elif key.startswith("digits_"):
            cells = [f"{results[n][key]['accuracy']:.1%} / {results[n][key]['eer']:.1%}" for n in names]
            rows.append(f"| digits {key[7:]}: 10-way accuracy / EER | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def identity(v: np.ndarray) -> np.ndarray:
    return unit(v)


def head_graphs(folder: Path):
    """(context, dim, {precision: ONNX file}) of the head in a model folder (its manifest's head)
    or in a head export folder (head.json: its fp32 graph and, when exported, its int8 one)."""
    p = Path(folder)
    if p.is_dir() and (p / "manifest.json").exists():
        from kws.model.model import read_manifest

        meta = read_manifest(p).get("head")
        if not meta:
            raise SystemExit(f"{p}: this model has no head")
        graphs = {meta.get("precision", "fp32"): p / meta["file"]}
    elif p.is_dir() and (p / "head.json").exists():
        meta = json.loads((p / "head.json").read_text())
        graphs = {"fp32": p / meta.get("fp32", meta)["file"]}
        if "int8" in meta:
            graphs["int8"] = p / meta["int8"]["file"]
    else:
        raise SystemExit(f"{p}: expected a folder with head.json or a model folder (manifest.json)")
    return int(meta["context"]), int(meta["dim"]), graphs


def onnx_head(folder: Path, int8: bool = False):
    """A kws.model.head.Head from an exported head folder (head.json) or a model folder whose manifest has a head."""
    from kws.model.head import Head

    context, _, graphs = head_graphs(folder)
    precision = "int8" if int8 else ("fp32" if "fp32" in graphs else next(iter(graphs)))
    if precision not in graphs:
        raise SystemExit(f"{folder}: no {precision} graph of the head here (a model folder holds the one it "
                         "ships; the head's export folder holds both)")
    return Head(graphs[precision], context, threads=1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kws.train.head_eval", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--music", type=Path, default=None, help="evaluation-only music (never trained on)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pad", type=float, default=None,
                   help="silence around each clip (s; default 1.0, as kws evaluate scores clips)")
    r = sub.add_parser("report")
    r.add_argument("--sets", type=Path, required=True)
    r.add_argument("--half", default="b", choices=("a", "b"))
    r.add_argument("--head", type=Path, action="append", default=[],
                   help="exported head folder(s) (kws.train.head export): its fp32 graph")
    r.add_argument("--int8", action="store_true", help="also the int8 graph of each head")
    r.add_argument("--json", type=Path, default=None)
    r.add_argument("--trim-end", type=int, default=TRIM,
                   help="template vectors dropped at the end (a head trained with its variant's trim_end)")
    r.add_argument("--soft-max", type=float, action="append", default=None,
                   help="how a keyword combines its templates' scores (kws.spot.templates.combine; 0: the "
                        "best; 20: the shipped model's soft maximum); repeat to compare, one column each")
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        from kws.corpus.real import DEFAULT_DATA

        data = args.data or DEFAULT_DATA
        if not (data / "wakewords").exists():
            print(f"{data}: no wake-word recordings (../shared/data)", file=sys.stderr)
            return 2
        print(json.dumps(prepare(data, args.out, args.music, pad_s=args.pad)))
        return 0
    sets = load_sets(args.sets, args.half)
    models = {"raw templates": identity}
    for h in args.head:
        models[f"head {h.name}"] = onnx_head(h)
        if args.int8:
            models[f"head {h.name} int8"] = onnx_head(h, int8=True)
    results = {}
    softs = args.soft_max or [0.0]
    for name, fn in models.items():
        for soft in softs:
            label = name if len(softs) == 1 else f"{name}, soft_max {soft:g}"
            results[label] = evaluate(sets, fn, trim_end=args.trim_end, soft_max=soft)
            print(f"{label}: done", file=sys.stderr, flush=True)
    print(f"half {args.half}, {next(iter(results.values()))['background_hours']:.2f} h of background speech, "
          f"clips padded with {sets.get('pad_s', 0.6):g} s of silence")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"half": args.half, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
