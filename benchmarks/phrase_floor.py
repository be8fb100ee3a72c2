"""What the confusion floor costs typed phrases: recall on their own renderings at the bank's
threshold and at the threshold the floor sets (kws.enroll.confusions).

    python benchmarks/phrase_floor.py ["hey toaster" "ok jarvis" ...]

Each phrase is enrolled as ``enroll add`` does (Kokoro, 28 voices, the model's bank); recall is
measured leave-one-voice-out, clean and at 10 dB (kws.enroll.build.own_scores), and the word or
prefix that set the floor is named.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHRASES = ("hey toaster", "hey computer", "hey snowboy", "ok jarvis", "hey kitchen", "turn on the lights",
           "hey jarvis", "good morning")


def main(argv=None) -> int:
    from kws.enroll.build import enroll_keyword
    from kws.enroll.confusions import MARGIN
    from kws.model.model import Model

    phrases = (argv if argv is not None else sys.argv[1:]) or PHRASES
    model = Model.load()
    print(f"{'phrase':22s} {'bank thr':>8s} {'recall':>7s} {'floor thr':>9s} {'recall':>7s}  set by")
    for text in phrases:
        t = enroll_keyword(text, model=model).tuned_on
        floor = t.get("floor", -1.0)
        # the neighbour that set the floor: the one MARGIN under it
        top = min(t.get("neighbours") or [{}], key=lambda n: abs(n.get("score", 9) + MARGIN - floor))
        raised = t["bank_threshold"] < t.get("floor", -1.0)
        print(f"{text:22s} {t['bank_threshold']:8.3f} {t['recall_at_bank_threshold']:7.0%} "
              f"{max(t['bank_threshold'], t.get('floor', -1.0)):9.3f} {t['recall_at_threshold']:7.0%}  "
              + (f"{top.get('text')} {top.get('score', 0):.3f}" if raised else "no raise"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
