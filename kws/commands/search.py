"""python -m kws search {index,query,verify}: spoken-term search over recordings.

    python -m kws search index PATH... --index DIR         # files or folders; re-run to update
    python -m kws search query DIR "term"                   # or --example clip.wav
    python -m kws search verify DIR                         # sha256 of every file of an archive

The index holds the model's vectors of every recording on disk: by default both its front end's,
whitened (the raw space), and its head's, a term scored in each and the scores added, its
candidates from joint lists of both (kws.search.fusion, kws.search.joint); with --vectors raw or
--vectors head one space only (kws.search.archive). A term is searched by templates, Kokoro
renderings of its text or a recorded example, scored as the detector scores a keyword, by the
detector's event rule.

How the index works, its speed and quality: docs/search.md.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="spoken-term search over indexed recordings",
                       description="Spoken-term search: index recordings once, then find a word or "
                                   "phrase in them by text or by an example recording (docs/search.md).")
    cmds = p.add_subparsers(dest="search_command", metavar="{index,query,verify}", required=True)
    ix = cmds.add_parser("index", help="index recordings (files or folders); re-run to update",
                         description="Embed every file once into a new segment of the index; re-running "
                                     "skips unchanged files, re-embeds changed ones and drops deleted ones.")
    ix.add_argument("paths", nargs="+")
    ix.add_argument("--index", default="kws-index", help="index folder (default ./kws-index)")
    ix.add_argument("--keep-missing", action="store_true", help="keep files that no longer exist")
    ix.add_argument("--workers", type=int, default=0,
                    help="embedding processes on a local Dask cluster (default: all cores when Dask "
                         "is installed; 1: in this process)")
    ix.add_argument("--address", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.add_argument("--vectors", choices=("raw", "head", "both"), default=None,
                    help="a new index's rows: both spaces, queried with the two scores added (both, the "
                         "default: the best by text, docs/search.md), the model's "
                         "whitened front-end vectors only (raw: half the disk, a faster build), or its "
                         "head's only (head: what the detector scores). An existing index keeps its own")
    ix.set_defaults(run=run_index, interrupted="interrupted; the index is as it was before this run")
    q = cmds.add_parser("query", help="find a term (text or --example) in an index",
                        description="Ranked hits (file, start, end, score) for a term or an example "
                                    "recording.")
    q.add_argument("index")
    q.add_argument("term", nargs="?", help="word or phrase (omit with --example)")
    q.add_argument("--example", help="recording of the term instead of its text")
    q.add_argument("--top", type=int, default=10)
    q.add_argument("--per-file", type=int, default=None, help="at most this many hits per file")
    q.add_argument("--threshold", type=float, default=None, help="only hits scoring at least this")
    q.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    q.add_argument("--plot", help="PNG of the score over time in the best hit's file (or --plot-file)")
    q.add_argument("--plot-file", help="file to plot instead of the best hit's")
    q.add_argument("--exact", action="store_true", help="score every position of the archive (the "
                                                        "reference) instead of looking up the lists")
    q.add_argument("--nprobe", type=int, default=None, help="lists scanned per query vector (default: the "
                                                             "index's, 12 for new ones, 48 for an --example; more: "
                                                             "better recall, slower)")
    q.add_argument("--voices", type=int, default=None,
                   help="Kokoro voices a text term is rendered in (default: the measured subset, docs/search.md)")
    q.add_argument("--clip", metavar="DIR", help="cut each hit with --context into WAV files in DIR")
    q.add_argument("--play", action="store_true", help="play each hit with --context")
    q.add_argument("--context", type=float, default=0.5, help="seconds around a clipped hit (0.5)")
    q.set_defaults(run=run_query)
    v = cmds.add_parser("verify", help="check every file of an index against its sha256",
                        description="Reads every file of the index and checks it against the "
                                    "manifest's sha256 (queries check sizes, small files, and the "
                                    "lists and rows they read).")
    v.add_argument("index")
    v.set_defaults(run=run_verify)


def is_index(folder) -> bool:
    return (Path(folder) / "manifest.json").exists()


def run_index(args) -> int:
    from kws.errors import UsageError
    from kws.search.archive import ArchiveConfig, ArchiveIndex
    from kws.search.fusion import PairedIndex, is_pair

    if args.workers < 0:
        raise UsageError("--workers must be 0 (all cores) or more")
    workers = args.workers
    if workers == 0 and not args.address:
        from kws.search.dist import default_workers

        workers = default_workers()
    if is_pair(args.index) or (args.vectors in (None, "both") and not is_index(args.index)):
        if args.vectors not in (None, "both"):
            raise UsageError(f"{args.index} holds rows of both spaces; --vectors {args.vectors} needs a new folder")
        idx = PairedIndex(args.index)
    else:
        idx = ArchiveIndex(args.index, ArchiveConfig(vectors=args.vectors)
                           if args.vectors and not is_index(args.index) else None)
        if args.vectors and idx.config.vectors != args.vectors:
            raise UsageError(f"{args.index} holds {idx.config.vectors} rows; --vectors {args.vectors} "
                             "needs a new folder")
    t0 = time.perf_counter()
    st = idx.add(args.paths, prune=not args.keep_missing, workers=workers, address=args.address,
                 quiet=args.quiet)
    wall = time.perf_counter() - t0
    for f in st["failed"]:
        print(f"skipped: {f}", file=sys.stderr)
    print(json.dumps({"index": str(idx.root), "files": len(idx), "indexed": st["indexed"],
                      "unchanged": st["unchanged"], "removed": st["removed"],
                      "failed": len(st["failed"]), "audio_hours_indexed": round(st["audio_s"] / 3600, 4),
                      "wall_s": round(wall, 2), "vectors": st["rows"], "segment": st["segment"],
                      "retrained": st["retrained"], "index_hours": round(idx.seconds / 3600, 4),
                      "index_mb": round(idx.size_bytes() / 1e6, 2), "space": idx.space_name,
                      "workers": "cluster " + args.address if args.address else workers}))
    return 1 if st["failed"] and not st["indexed"] and not st["unchanged"] else 0


def run_verify(args) -> int:
    from kws.errors import SearchIndexError
    from kws.search.archive import ArchiveIndex

    if not is_index(args.index):
        raise SearchIndexError(f"{args.index} is not a kws index (no manifest.json)")
    from kws.search.fusion import PairedIndex, is_pair

    rep = (PairedIndex(args.index) if is_pair(args.index) else ArchiveIndex(args.index)).verify()
    print(json.dumps({"index": args.index, "ok": True, "files": rep["files"],
                      "mb": round(rep["bytes"] / 1e6, 2), "seconds": round(rep["seconds"], 2)}))
    return 0


def run_query(args) -> int:
    from kws.audio.io import load_audio
    from kws.errors import SearchIndexError, UsageError
    from kws.search.archive import ArchiveIndex
    from kws.search.terms import template_from_audio, templates_from_text

    if not is_index(args.index):
        raise SearchIndexError(f"{args.index} is not a kws index (build one with: python -m kws search "
                               f"index PATH... --index {args.index})")
    if args.term is None and args.example is None:
        raise UsageError("give a term or --example clip.wav")
    if args.term is not None and args.example is not None:
        raise UsageError("give a term or --example, not both")
    from kws.search.fusion import PairedIndex, is_pair, query_templates

    idx = PairedIndex(args.index) if is_pair(args.index) else ArchiveIndex(args.index)
    t0 = time.perf_counter()
    if args.term is not None:
        from kws.enroll.kokoro import stderr_line

        # (in an index of both spaces the second space's templates come from the render cache)
        templates = query_templates(idx, lambda s: templates_from_text(args.term, voices=args.voices, space=s,
                                                                         say=stderr_line))
        label = args.term
    else:
        audio = load_audio(args.example, min_seconds=0.1)
        templates = query_templates(idx, lambda s: [template_from_audio(audio, Path(args.example).name, space=s)])
        label = Path(args.example).name
    t1 = time.perf_counter()
    hits = idx.query(templates, top=args.top, threshold=args.threshold, per_file=args.per_file,
                     exact=args.exact, nprobe=args.nprobe)
    took = time.perf_counter() - t1
    _print_hits(args, hits, label, len(idx), idx.seconds, "exact" if args.exact else "approximate",
                took, t1 - t0)
    if args.clip or args.play:
        _clips(args, hits)
    if args.plot:
        return _plot(args, idx, templates, label, hits)
    return 0


def _print_hits(args, hits, label, n_files, seconds, how, took, embed_s) -> None:
    if args.json:
        for h in hits:
            print(json.dumps({"query": label, **h.to_dict()}))
        return
    print(f"{len(hits)} hits for {label!r} in {n_files} files ({seconds / 3600:.2f} h): "
          f"{how} search {took * 1000:.0f} ms, templates {embed_s * 1000:.0f} ms")
    if hits:
        w = max(len(h.file) for h in hits)
        print(f"{'score':>6}  {'start':>8}  {'end':>8}  file")
        for h in hits:
            print(f"{h.score:6.3f}  {h.start:8.2f}  {h.end:8.2f}  {h.file:<{w}}")


def _clips(args, hits) -> None:
    import tempfile

    from kws.search.query import clip_hits

    with tempfile.TemporaryDirectory(prefix="kws-hits-") as tmp:
        paths = clip_hits(hits, args.clip or tmp, args.context)
        if args.clip:
            print(f"{len(paths)} clips ({args.context:g} s context): {args.clip}", file=sys.stderr)
        if args.play:
            for h, p in zip(hits, paths):
                print(f"playing {h.score:.3f} {Path(h.file).name} {h.start:.2f}-{h.end:.2f}", file=sys.stderr)
                play_clips([p])


def _plot(args, idx, templates, label, hits) -> int:
    target = args.plot_file or (hits[0].file if hits else None)
    if target is None:
        print("nothing to plot: no hits", file=sys.stderr)
        return 0
    try:
        plot_scores(idx, target, templates, label, args.plot, hits)
    except ImportError:
        print("--plot needs matplotlib: pip install matplotlib", file=sys.stderr)
        return 2
    print(f"plot: {args.plot}", file=sys.stderr)
    return 0


def play_clips(paths) -> None:
    """Play clips one after the other on the default output device (sounddevice)."""
    from kws.audio.io import AudioError, load_audio

    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:      # OSError: PortAudio library not found
        raise AudioError(f"cannot play: {exc}") from exc
    for p in paths:
        audio = load_audio(p)
        try:
            sd.play(audio, 16000)
            sd.wait()
        except Exception as exc:              # PortAudioError: no output device
            raise AudioError(f"cannot play {p.name}: {exc} (the clips are in {p.parent})") from exc


def plot_scores(index, file: str, templates, label: str, out: str, hits=()) -> None:
    """Score over time (the term ending at each moment) in one indexed file, hits marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scores, times = index.file_scores(file, templates)
    ends = np.round(times[:, 1], 2)
    u = np.unique(ends)
    best = np.array([scores[ends == t].max() for t in u])
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot(u, best, lw=1)
    for h in hits:
        if h.file == str(Path(file).resolve()) or h.file == file:
            ax.axvspan(h.start, h.end, color="tab:orange", alpha=0.3)
    ax.set_xlabel("time (s, term end)")
    ax.set_ylabel("score")
    ax.set_title(f"{label!r} in {Path(file).name}")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
