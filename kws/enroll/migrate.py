"""Moving a keyword store to another model: typed keywords enrolled again from their text (or,
for a store of the same front end, their thresholds set again for the new head); keywords
enrolled from recordings alone are reported, their audio was not kept.
"""
from __future__ import annotations

from typing import Callable

from kws.enroll.build import _tail, build_keyword
from kws.errors import KwsError
from kws.model.model import Model


def migrate_store(directory, model: Model, progress: Callable[[str], None] = print) -> dict:
    """Make a store written by an earlier kws (or for another model) work with ``model``.

    Typed keywords (their text or phonemes are kept) are enrolled again from their text, with the
    same name and false-alarm target; keywords enrolled from recordings alone cannot be (their
    audio was not kept) and are reported. The store's files are copied to ``old-<time>/`` first.
    Returns {"migrated": [names], "skipped": {name: why}, "aside": folder}.
    """
    import json
    from pathlib import Path

    from kws.enroll.store import (STORE_FILE, KeywordSet, StoreError, _set_aside, store_lock)

    with store_lock(directory) as d:
        f = Path(d) / STORE_FILE
        if not f.is_file():
            raise StoreError(f"{d}: no keyword store here to migrate")
        try:
            doc = json.loads(f.read_bytes().decode("utf-8"))
            metas = list(doc["keywords"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{f}: cannot be read as a keyword store ({exc})") from None
        migrated, skipped = [], {}
        ks = KeywordSet(model.model_id)
        if doc.get("version") == 2:       # same front end, another head: same utterances, new thresholds
            from kws.enroll import thresholds as th
            from kws.spot.templates import keyword_templates

            for kw in KeywordSet.load(d):
                target = kw.tuned_on.get("target_per_hour")
                cal = th.calibrate(model, keyword_templates(model, kw),
                                   target if isinstance(target, (int, float)) and target > 0 else None)
                kw.threshold = cal.threshold
                kw.tuned_on.update(expected_per_hour=round(cal.expected_per_hour, 3),
                                   bank_threshold=round(float(cal.threshold), 4))
                for stale in ("recall_at_threshold", "recall_at_bank_threshold", "floor", "neighbours",
                              "rating", "rating_reason", "tail"):
                    kw.tuned_on.pop(stale, None)       # measured with the other model's templates
                tail = _tail(cal)
                if tail is not None:
                    kw.tuned_on["tail"] = tail
                kw.eer = None
                ks.add(kw)
                migrated.append(kw.name)
            metas = []
        for m in metas:
            name = m.get("name")
            if not isinstance(name, str):
                continue
            text, phon = m.get("text"), m.get("phonemes")
            if "text" not in str(m.get("source", "text")) or not (text or phon):
                skipped[name] = "enrolled from recordings only: enroll it again with --examples or --record"
                continue
            target = (m.get("tuned_on") or {}).get("target_per_hour")
            progress(f"enrolling {name!r} again from its text ...")
            try:
                kw = build_keyword(model, name, text, None if text else phon, [], tune=True,
                                   fa_per_hour=target if isinstance(target, (int, float)) and target > 0 else None,
                                   progress=progress)
            except KwsError as exc:
                skipped[name] = str(exc)
                continue
            ks.add(kw)
            migrated.append(name)
        aside = _set_aside(Path(d))
        for p in [Path(d) / "keywords.backup.json", *Path(d).glob("vectors-*.npz")]:
            p.unlink(missing_ok=True)
        f.unlink()
        ks.save(d)
    return {"migrated": migrated, "skipped": skipped, "aside": str(aside)}
