"""python -m kws enroll (also python -m kws.enroll): add keywords, by text or recordings, check,
list, remove, rename, test, export and import them. A typed keyword is rendered by Kokoro in
all 28 of its voices (--quick: in ten chosen by measurement, about twice as fast, at some
cost in false alarms and in phrases firing on their own words); each keyword's threshold is set
for a false-alarm rate, 1 an hour by default, and raised where a phrase's own words or prefixes
(or words given with --not) would fire it (kws.enroll.build, kws.enroll.thresholds,
kws.enroll.confusions). Renderings and typed keywords are cached (kws.enroll.render_cache): the
same text again starts at once.

    python -m kws enroll add "hey computer"
    python -m kws enroll add "hey computer" --not computer --not commuter
    python -m kws enroll add "hey computer" --quick     # ten voices instead of 28
    python -m kws enroll check "hey toaster"    # how good a wake word it is; stores nothing
    python -m kws enroll add snowboy --examples a.wav b.wav c.wav
    python -m kws enroll add jarvis --record 3
    python -m kws enroll list
    python -m kws enroll test recording.wav
    python -m kws enroll restore        # a damaged store: back to its last good version
    python -m kws enroll reset          # or start empty (the old files are kept in old-<time>/)
    python -m kws enroll migrate        # a store of an earlier kws: its typed keywords made again

--store and --model go before or after the command (the store: --store, else
$KWS_STORE, else the user data folder; see docs/keywords.md).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import List, Tuple

import numpy as np

from kws.audio.io import load_audio
from kws.commands import store_argument
from kws.enroll.build import (EnrollError, build_keyword, check_example, check_rate, load_examples,
                            plan_keyword)
from kws.enroll.migrate import migrate_store
from kws.enroll.store import (Keyword, KeywordSet, StoreError, edit_store, export_doc, parse_export,
                          reset_store, resolve_store, restore_backup)
from kws.model.model import Model


def record_examples(n: int, seconds: float = 2.0, device=None) -> List[np.ndarray]:
    from kws.audio.mic import record

    out = []
    for i in range(n):
        input(f"[{i + 1}/{n}] press Enter, then say the keyword once ...")
        out.append(record(seconds, device=device))
    return out


def check_store_path(store: Path, write: bool = False) -> Path:
    """Refuse, before anything slow, a store path that is a file, or (``write``) a folder that
    cannot be made or written."""
    if store.exists() and not store.is_dir():
        raise StoreError(f"{store}: is a file, not a keyword store folder (--store and $KWS_STORE name "
                         f"a folder)")
    if write:
        if store.is_dir():
            if not os.access(store, os.W_OK | os.X_OK):
                raise StoreError(f"{store}: the keyword store folder cannot be written (permission denied)")
        else:
            up = store.parent
            while not up.exists() and up != up.parent:
                up = up.parent
            if not up.is_dir():
                raise StoreError(f"{store}: cannot be made: {up} is a file, not a folder")
            if not os.access(up, os.W_OK | os.X_OK):
                raise StoreError(f"{store}: cannot be made: {up} cannot be written (permission denied)")
    return store


def _open(args, write: bool = False):
    model = Model.load(args.model)
    store = check_store_path(resolve_store(args.store), write)
    if (store / "keywords.json").exists():
        ks = KeywordSet.load(store, model.model_id)
    else:
        ks = KeywordSet(model.model_id)
    return model, store, ks


def _voices(args):
    """The voices to render a typed keyword in: the ten of kws.enroll.kokoro.QUICK_VOICES with
    --quick, else None (the default: all 28)."""
    if not getattr(args, "quick", False):
        return None
    from kws.enroll import kokoro

    return [r.voice for r in kokoro.quick_renderings()]


def _say(line: str) -> None:
    from kws.enroll.kokoro import stderr_line

    stderr_line(line)


def cmd_add(args) -> int:
    # everything that can be refused is refused before anything is rendered
    check_rate(args.false_alarms_per_hour)
    model, store, ks = _open(args, write=True)
    name = args.name or args.text or (Path(args.examples[0]).stem if args.examples else None)
    if not name:
        raise EnrollError("give the keyword's text or --name")
    if name.strip() in ks and not args.replace:
        raise StoreError(f"a keyword named {name!r} exists already (remove or rename it first, or add "
                         f"--replace)")
    voices = _voices(args)
    plan_keyword(args.text, args.phonemes, args.false_alarms_per_hour, voices, args.not_words or ())
    examples = load_examples(args.examples or [])
    if args.record:
        for i, a in enumerate(record_examples(args.record, device=args.device)):
            examples.append(check_example(a, f"recording {i + 1}"))
    t0 = time.time()
    kw = build_keyword(model, name, args.text, args.phonemes, examples, tune=not args.no_tune,
                       fa_per_hour=args.false_alarms_per_hour, progress=print, quiet=False,
                       not_words=args.not_words or (), lexical=not args.no_tune, say=_say, voices=voices)
    # rendering and tuning take seconds and run unlocked; the store is re-read under its lock, so
    # keywords that other processes added meanwhile are kept
    with edit_store(store, model.model_id) as ks:
        ks.add(kw, replace=args.replace)
    print(f"added {kw.name!r} [{kw.phonemes or 'from examples'}] source={kw.source}, "
          f"{len(kw.segments)} templates ({time.time() - t0:.1f} s) -> {store}")
    for line in report(kw):
        print("  " + line)
    return 0


def cmd_check(args) -> int:
    """How good a wake word a text would be: the add report, nothing stored."""
    check_rate(args.false_alarms_per_hour)
    model = Model.load(args.model)
    if not args.text and not args.phonemes:
        raise EnrollError("give the keyword's text (or --phonemes)")
    voices = _voices(args)
    plan_keyword(args.text, args.phonemes, args.false_alarms_per_hour, voices, args.not_words or ())
    t0 = time.time()
    kw = build_keyword(model, args.text or args.phonemes, args.text, args.phonemes, [], tune=True,
                       fa_per_hour=args.false_alarms_per_hour, progress=print, quiet=False,
                       not_words=args.not_words or (), lexical=True, say=_say, voices=voices)
    print(f"{kw.name!r} [{kw.phonemes}], {len(kw.segments)} templates ({time.time() - t0:.1f} s); "
          f"not stored")
    for line in report(kw):
        print("  " + line)
    return 0


def report(kw: Keyword, top: int = 5) -> List[str]:
    """The lines ``enroll add`` and ``enroll check`` print under a keyword: threshold and expected
    false alarms, recall, what the threshold was raised for, the closest neighbours, the rating."""
    t = kw.tuned_on
    out = [describe_threshold(kw)]
    bank, floor = t.get("bank_threshold"), t.get("floor")
    near = [n for n in t.get("neighbours", []) if isinstance(n, dict) and "text" in n and "score" in n]
    if isinstance(bank, (int, float)) and isinstance(floor, (int, float)) and floor > bank:
        must = next((n for n in near if n.get("kind") in ("word", "prefix", "not")), None)
        what = f"{must['text']!r} ({must['score']:.3f})" if must else "its parts"
        line = f"raised from {bank:.3f} (the false-alarm rate's threshold) so that {what} does not fire it"
        if "recall_at_bank_threshold" in t and "recall_at_threshold" in t:
            line += (f"; recall {t['recall_at_bank_threshold']:.0%} -> {t['recall_at_threshold']:.0%}")
        out.append(line)
    if near:
        kinds = {"word": "a word of it", "prefix": "its first words", "partial": "its start",
                 "suffix": "its last words", "not": "--not", "start": "", "end": ""}
        shown = []
        for n in near[:top]:
            k = kinds.get(n.get("kind"), "")
            shown.append(f"{n['text']} {n['score']:.3f}" + (f" ({k})" if k else ""))
        out.append("closest: " + ", ".join(shown))
    if "rating" in t:
        out.append(f"rating: {t['rating']}: {t.get('rating_reason', '')}")
    return out


def describe_threshold(kw: Keyword) -> str:
    """The threshold, the false-alarm rate expected there, and the recall and EER measured."""
    t = kw.tuned_on
    out = f"threshold {kw.threshold:.3f}"
    if "expected_per_hour" in t:
        out += (f": ~{t['expected_per_hour']:.2g} false alarms an hour of speech expected (on the bank's "
                f"{t.get('background_hours', 0):.1f} h of speech, talk and TV, with its music and noise)")
    if "recall_at_threshold" in t:
        out += (f"; recall {t['recall_at_threshold']:.0%} of its own utterances against the others' "
                f"templates (clean and with noise at 10 dB)")
    if kw.eer is not None:
        out += f", EER {kw.eer:.1%}"
    return out


def cmd_list(args) -> int:
    _, store, ks = _open(args)
    if args.json:
        print(json.dumps([k.meta() for k in ks], indent=2))
        return 0
    if not len(ks):
        print(f"no keywords in {store}")
        return 0
    print(f"{'name':24} {'source':15} {'threshold':>9} {'FA/h':>6} {'EER':>7}  phonemes")
    for k in ks:
        e = f"{k.eer:.1%}" if k.eer is not None else "-"
        fa = k.tuned_on.get("expected_per_hour")
        fa_s = f"{fa:.2g}" if isinstance(fa, (int, float)) else "-"
        print(f"{k.name:24} {k.source:15} {k.threshold:9.3f} {fa_s:>6} {e:>7}  {k.phonemes or ''}")
    return 0


def cmd_remove(args) -> int:
    model, store, _ = _open(args)
    from kws.spot.room import rename_learnt

    with edit_store(store, model.model_id) as ks:
        for n in args.names:
            ks.remove(n)
    rename_learnt(store, {n: None for n in args.names}, model.model_id)
    print(f"removed {', '.join(args.names)}")
    return 0


def cmd_rename(args) -> int:
    model, store, _ = _open(args)
    from kws.spot.room import rename_learnt

    with edit_store(store, model.model_id) as ks:
        ks.rename(args.old, args.new)
    rename_learnt(store, {args.old: args.new}, model.model_id)
    print(f"renamed {args.old!r} to {args.new!r}")
    return 0


def scan(det, audio: np.ndarray) -> Tuple[list, np.ndarray]:
    """The detector's events in a recording and each keyword's best score, from one pass of the
    detector's own streaming path: the audio goes in pieces of half a vector's hop, so each piece
    gives at most one vector, whose scores (``last_scores``: -1 where the VAD skipped it) are the
    ones the detector decides its events on."""
    audio = np.asarray(audio, np.float32).reshape(-1)
    step = max(1, det.frontend.hop // 2)
    best = np.full(len(det.keywords), -1.0)
    det.reset()
    events = []
    for i in range(0, audio.size, step):
        seen = det.vectors
        events += det.process(audio[i:i + step])
        if det.vectors != seen:
            best = np.maximum(best, list(det.last_scores.values()))
    events += det.flush()
    det.reset()
    return events, best


def cmd_test(args) -> int:
    from kws.spot.detector import Detector, DetectorConfig

    if not args.files and not args.mic:
        raise EnrollError("give recordings to score, or --mic SECONDS")
    for f in args.files:                       # every file checked before any work
        check_audio_file(f)
    model, _, ks = _open(args)
    det = Detector(ks, model, DetectorConfig())
    inputs = [(f, None) for f in args.files]
    if args.mic:
        from kws.audio.mic import record

        print(f"recording {args.mic:.0f} s: say a keyword ...")
        inputs.append(("microphone", record(args.mic, device=args.device)))
    for f, audio in inputs:
        audio = load_audio(f) if audio is None else audio
        events, best = scan(det, audio)
        fired = {e.keyword for e in events}
        thr = det.thresholds
        print(f"{f}:")
        for k, s in zip(ks, best):
            mark = "DETECTED" if k.name in fired else ""
            print(f"  {k.name:24} best {s:.3f}  threshold {thr[k.name]:.3f}  {mark}")
        for e in events:
            # an event fires where the score first reaches the threshold, so its score is at most the best
            print(f"  event {e.keyword!r} at {e.start:.2f}-{e.end:.2f} s, fired at score {e.score:.3f}")
        if not events:
            print("  nothing heard: no keyword reached its threshold")
    return 0


def check_audio_file(f) -> None:
    """A recording to read later: refused now if it is missing, a folder, unreadable or not audio."""
    import soundfile as sf

    from kws.audio.io import AudioError

    p = Path(f)
    if not p.exists():
        raise AudioError(f"{p}: no such file")
    if p.is_dir():
        raise AudioError(f"{p}: is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise AudioError(f"{p}: cannot be read (permission denied)")
    try:
        sf.info(str(p))
    except Exception as exc:            # soundfile raises several types
        raise AudioError(f"{p}: cannot be read as audio ({exc})") from None


def cmd_export(args) -> int:
    model, _, ks = _open(args)
    Path(args.file).write_text(json.dumps(export_doc(ks, model)))
    print(f"exported {len(ks)} keywords to {args.file}")
    return 0


def cmd_import(args) -> int:
    model, store, ks = _open(args)
    f = Path(args.file)
    if not f.is_file():
        raise EnrollError(f"{f}: no such file")
    model_id, entries = parse_export(f.read_bytes(), str(f))
    same_model = model_id == model.model_id
    new: List[Keyword] = []
    for meta, vec in entries:
        if meta["name"] in ks or any(k.name == meta["name"] for k in new):
            print(f"skipped {meta['name']!r}: exists already")
        elif same_model:
            new.append(Keyword(vectors=vec, **meta))
        elif meta.get("text"):
            new.append(build_keyword(model, meta["name"], meta["text"], None, [], tune=not args.no_tune))
            print(f"made {meta['name']!r} again from its text for this model")
        else:
            print(f"skipped {meta['name']!r}: enrolled from examples for another model; re-enroll it")
    added = []
    with edit_store(store, model.model_id) as ks:
        for kw in new:
            if kw.name in ks:
                print(f"skipped {kw.name!r}: added meanwhile by another process")
            else:
                ks.add(kw)
                added.append(kw.name)
    print(f"imported {len(added)} keywords into {store}")
    return 0


def cmd_restore(args) -> int:
    ks, aside = restore_backup(resolve_store(args.store))
    n = len(ks)
    print(f"restored {n} keyword{'s' * (n != 1)} ({', '.join(ks.names) or 'none'}); the replaced files "
          f"are kept in {aside}")
    return 0


def cmd_reset(args) -> int:
    store = resolve_store(args.store)
    aside = reset_store(store)
    if aside is None:
        print(f"{store} holds no keyword store; nothing to reset")
    else:
        print(f"the keyword store {store} is empty now; its files are kept in {aside} "
              f"(python -m kws enroll restore brings back the last good version)")
    return 0


def cmd_migrate(args) -> int:
    model = Model.load(args.model)
    store = resolve_store(args.store)
    report = migrate_store(store, model, progress=print)
    for name, why in report["skipped"].items():
        print(f"not migrated {name!r}: {why}")
    print(f"migrated {len(report['migrated'])} keyword(s) ({', '.join(report['migrated']) or 'none'}) for "
          f"model {model.model_id}; the old files are kept in {report['aside']}")
    return 0


def model_arguments(p: argparse.ArgumentParser, top: bool) -> None:
    """--store, --model: on ``enroll`` (with defaults) and again on each of its commands
    (``top=False``: no default, so that a value given before the command stays)."""
    store_argument(p)
    kw = {} if top else {"default": argparse.SUPPRESS}
    p.add_argument("--model", **({"default": None} if top else kw),
                   help="model folder (default: the one shipped in the package)")


QUICK_HELP = ("render the text in ten Kokoro voices chosen by measurement instead of all 28: about 2x "
              "faster (a new two-word phrase: 9 s of one core instead of 18); measured costs: about a "
              "third more false alarms on real speech, and 'hey jarvis' / 'ok jarvis' fired on 2-2.5 %% "
              "of real 'jarvis' said alone (never with all 28)")


def add_parser(sub) -> None:
    ap = sub.add_parser("enroll", help="manage keywords: add (by text or examples), list, test, ...",
                        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_arguments(ap, top=True)
    ap.set_defaults(interrupted="interrupted; the store is unchanged")
    sub = ap.add_subparsers(dest="enroll_command", metavar="{add,check,list,remove,rename,test,export,"
                            "import,restore,reset,migrate}", required=True)
    a = sub.add_parser("add", help="add a keyword by text and/or examples")
    a.add_argument("text", nargs="?", help="the keyword as text (any word or phrase)")
    a.add_argument("--name", help="name to store it under (default: the text)")
    a.add_argument("--phonemes", help="explicit ARPAbet pronunciation, e.g. 'S N OW B OY'")
    a.add_argument("--examples", nargs="+", metavar="FILE", help="recordings of the keyword, one per file")
    a.add_argument("--record", type=int, default=0, metavar="N", help="record N examples from the microphone")
    a.add_argument("--device", help="input device for --record")
    a.add_argument("--no-tune", action="store_true",
                   help="skip the recall and EER report (the threshold is set for the false-alarm rate either way)")
    a.add_argument("--false-alarms-per-hour", type=float, default=None, metavar="N",
                   help="expected false alarms an hour the threshold is set for (default 1)")
    a.add_argument("--not", dest="not_words", action="append", metavar="WORD",
                   help="a word or phrase that must not fire the keyword (repeatable): the threshold "
                        "is raised above its score where needed")
    a.add_argument("--replace", action="store_true", help="replace a keyword of the same name")
    a.add_argument("--quick", action="store_true", help=QUICK_HELP)
    a.set_defaults(run=cmd_add)
    c = sub.add_parser("check", help="how good a wake word a text is (false alarms, recall, confusable "
                       "words, a rating); stores nothing")
    c.add_argument("text", nargs="?", help="the keyword as text")
    c.add_argument("--phonemes", help="explicit ARPAbet pronunciation, e.g. 'S N OW B OY'")
    c.add_argument("--false-alarms-per-hour", type=float, default=None, metavar="N",
                   help="expected false alarms an hour the threshold is set for (default 1)")
    c.add_argument("--not", dest="not_words", action="append", metavar="WORD",
                   help="a word or phrase that must not fire the keyword (repeatable)")
    c.add_argument("--quick", action="store_true", help=QUICK_HELP)
    c.set_defaults(run=cmd_check)
    s = sub.add_parser("list", help="list keywords")
    s.add_argument("--json", action="store_true")
    s.set_defaults(run=cmd_list)
    r = sub.add_parser("remove", help="remove keywords")
    r.add_argument("names", nargs="+")
    r.set_defaults(run=cmd_remove)
    n = sub.add_parser("rename", help="rename a keyword")
    n.add_argument("old")
    n.add_argument("new")
    n.set_defaults(run=cmd_rename)
    t = sub.add_parser("test", help="score recordings (or the microphone) against the keywords")
    t.add_argument("files", nargs="*")
    t.add_argument("--mic", type=float, metavar="SECONDS", help="record this long from the microphone")
    t.add_argument("--device", help="input device for --mic")
    t.set_defaults(run=cmd_test)
    e = sub.add_parser("export", help="write the keywords to a JSON file")
    e.add_argument("file")
    e.set_defaults(run=cmd_export)
    i = sub.add_parser("import", help="add the keywords of an exported JSON file")
    i.add_argument("file")
    i.add_argument("--no-tune", action="store_true")
    i.set_defaults(run=cmd_import)
    o = sub.add_parser("restore", help="make the last good version of the store the store again")
    o.set_defaults(run=cmd_restore)
    z = sub.add_parser("reset", help="start an empty store (its files are kept in old-<time>/)")
    z.set_defaults(run=cmd_reset)
    m = sub.add_parser("migrate", help="make a store of an earlier kws work with this model (typed "
                       "keywords are made again; the old files are kept)")
    m.set_defaults(run=cmd_migrate)
    for p in sub.choices.values():
        model_arguments(p, top=False)
