"""The conformance file: a short recording through the shipped model, stage by stage, as kws's
Python detector computes it. Every implementation of the detector is tested against it: the
Python one (tests/test_conformance.py), the page's ``kws/web/kws.js`` (tests/test_web.py) and
``demos/embedded_match.py`` (tests/test_conformance.py); a port to another device can be too.

    python tests/make_conformance.py        # writes tests/data/conformance.json and .wav again

Run it again when the model or the detector changes (the tests say so when the model id differs).

``conformance.wav`` (16 kHz mono 16-bit) holds two stretches of the bundled sample, one saying
"computer", one "jarvis". ``conformance.json`` holds, besides the model id and the stream's
geometry:

- ``keywords``: the two demo keywords with three of their utterances each, in the format of
  ``python -m kws enroll export`` (``vectors``: the utterances' raw front-end vectors, the input;
  ``templates``: what the model's head and cut make of them, rounded to 5 decimals) and
  thresholds halfway between each keyword's two highest local maxima of the score here;
- ``raw``: the front end's vectors of the stream: ``primed_samples`` of silence (a detector
  starts as if it had listened to silence), then the recording; the first ``unscored`` of them
  hear the silence alone and are not scored;
- ``vectors``: the head's (unit) vectors of the same;
- ``scores``: each keyword's score at each of them (its best template's; -1 where no template
  fits yet);
- ``events``: the detections (VAD off, thresholds fixed), times in seconds of the recording.

Numbers are rounded to 5 decimals; implementations agree with them to about 1e-4.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
JSON = DATA / "conformance.json"
WAV = DATA / "conformance.wav"
# (start, end) seconds of the bundled sample: "computer" at 5.4 s and "jarvis" at 12.4 s
STRETCHES = ((4.9, 6.7), (11.9, 13.7))
KEYWORDS = ("computer", "jarvis")
UTTERANCES = 3                  # of each keyword's, the first ones
DECIMALS = 5
MARGIN = 0.02                   # no peak here lies closer than this to a threshold


def _rounded(a) -> list:
    return np.round(np.asarray(a, np.float64), DECIMALS).tolist()


def keyword_set(doc: dict):
    """The fixture's keywords as a kws.enroll.store.KeywordSet."""
    from kws.enroll.store import Keyword, KeywordSet, parse_export

    model_id, entries = parse_export(json.dumps(doc).encode(), str(JSON))
    return KeywordSet(model_id, [Keyword(**meta, vectors=v) for meta, v in entries])


def build() -> tuple:
    """(the JSON document, the recording as 16-bit samples)."""
    from kws.audio.io import load_audio
    from kws.enroll.demo import demo_keywords, sample_recording
    from kws.enroll.store import Keyword, KeywordSet, export_doc
    from kws.model.model import Model
    from kws.spot.detector import PRIMED_VECTORS, Detector, DetectorConfig
    from kws.spot.events import REFRACTORY, peaks
    from kws.spot.room import AdaptConfig
    from kws.spot.templates import Matcher, TemplateBank, keyword_templates

    model = Model.load()
    sample = load_audio(sample_recording())
    pcm = np.concatenate([np.round(sample[int(a * 16000):int(b * 16000)] * 32768).astype(np.int16)
                          for a, b in STRETCHES])
    audio = pcm.astype(np.float32) / 32768.0              # as load_audio reads the WAV
    demo = demo_keywords(model)
    chosen = []
    for name in KEYWORDS:
        k = demo[name]
        n = sum(k.segments[:UTTERANCES])
        vectors = np.asarray(_rounded(k.vectors[:n]), np.float32)       # the input, as the file holds it
        chosen.append(Keyword(name=name, vectors=vectors, threshold=0.0, segments=list(k.segments[:UTTERANCES]),
                           origins=list(k.origins[:UTTERANCES]), text=k.text, phonemes=k.phonemes))
    primed = PRIMED_VECTORS * model.frontend.hop
    raw = model.frontend.frames(np.concatenate([np.zeros(primed, np.float32), audio]))
    unscored = model.frontend.frames(np.zeros(primed, np.float32)).shape[0]
    vec = model.head(raw)
    bank = TemplateBank.build([keyword_templates(model, k) for k in chosen], soft_max=model.soft_max)
    scores = Matcher(bank).scores(vec)
    for i, k in enumerate(chosen):              # halfway between the two highest maxima (or -1)
        p = np.append(peaks(scores[unscored:, i], refractory=1, floor=-1.0), -1.0)      # every local maximum
        k.threshold = round(float(p[0] + p[1]) / 2, 4)
        assert min(p[0] - k.threshold, k.threshold - p[1]) >= MARGIN, (k.name, p[:3])
        # the detector fires where the score reaches the threshold: no score lies so close to it
        # that implementations agreeing to about 1e-4 could fire a vector apart
        assert np.abs(scores[unscored:, i] - k.threshold).min() >= 1e-3, k.name
    ks = KeywordSet(model.model_id, chosen)
    off = DetectorConfig(vad=False, adapt=AdaptConfig(enabled=False))
    events = [e.to_dict() for e in Detector(ks, model, off).detect(audio)]
    assert [e["keyword"] for e in events] == list(KEYWORDS), events
    keywords = export_doc(ks, model)["keywords"]
    for d in keywords:
        d["vectors"] = _rounded(d["vectors"])
        d["created"] = 0.0
    doc = {"format": "kws-conformance", "version": 1, "model_id": model.model_id,
           "audio": WAV.name, "audio_sha256": hashlib.sha256(pcm.tobytes()).hexdigest(),
           "sample_rate": 16000, "primed_samples": int(primed), "unscored": int(unscored),
           "hop": int(model.frontend.hop), "span": int(model.frontend.span), "refractory": REFRACTORY,
           "pad_s": model.pad_s, "trim": model.trim, "head_context": int(model.head.context),
           "keywords": keywords, "raw": _rounded(raw), "vectors": _rounded(vec), "scores": _rounded(scores),
           "events": events}
    return doc, pcm


def dumps(doc: dict) -> str:
    """JSON with one vector (a list of numbers) a line."""
    text = json.dumps(doc, indent=1)
    return re.sub(r"\[\s*(-?[0-9][-0-9.e,\s]*?)\s*\]",
                  lambda m: "[" + ",".join(m.group(1).split()).replace(",,", ",") + "]", text) + "\n"


def load() -> tuple:
    """(the JSON document, the recording as float32 samples), the recording checked."""
    doc = json.loads(JSON.read_text())
    import soundfile as sf

    pcm, sr = sf.read(str(DATA / doc["audio"]), dtype="int16")
    assert sr == doc["sample_rate"] and hashlib.sha256(pcm.tobytes()).hexdigest() == doc["audio_sha256"]
    return doc, pcm.astype(np.float32) / 32768.0


def main() -> int:
    import soundfile as sf

    doc, pcm = build()
    DATA.mkdir(exist_ok=True)
    sf.write(str(WAV), pcm, 16000, subtype="PCM_16")
    JSON.write_text(dumps(doc))
    print(f"{JSON.relative_to(ROOT)} ({JSON.stat().st_size // 1024} kB), {WAV.relative_to(ROOT)} "
          f"({pcm.size / 16000:.1f} s): model {doc['model_id']}, events {[e['keyword'] for e in doc['events']]}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
