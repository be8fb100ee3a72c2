"""python -m kws search {index,query,verify}: spoken-term search over recordings.

    python -m kws search index PATH... --index DIR         # files or folders; re-run to update
    python -m kws search query DIR "term"                   # or --example clip.wav
    python -m kws search verify DIR                         # sha256 of every file of an archive

Two representations: ``templates`` (kws.search_archive: speech-embedding vectors on disk, queried
by templates; the default) and ``windows`` (kws.search: window embeddings, exact or --approximate).
The kind of an existing index folder is recognised by its files.

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
                         description="Embed every file's windows once; re-running skips unchanged "
                                     "files, re-embeds changed ones and drops deleted ones.")
    ix.add_argument("paths", nargs="+")
    ix.add_argument("--index", default="kws-index", help="index folder (default ./kws-index)")
    ix.add_argument("--representation", choices=("templates", "windows"), default=None,
                    help=f"new index: speech-embedding vectors searched by templates, on disk, for "
                         f"large archives ('templates'), or window embeddings ('windows'); default "
                         f"{DEFAULT_REPRESENTATION} (docs/search.md compares them)")
    ix.add_argument("--bundle", help="model bundle folder (default: shipped)")
    ix.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    ix.add_argument("--windows", default="0.2,0.3,0.4,0.5,0.6", help="window lengths, seconds")
    ix.add_argument("--hop", type=float, default=0.15)
    ix.add_argument("--keep-missing", action="store_true", help="keep files that no longer exist")
    ix.add_argument("--approximate", action="store_true",
                    help="new windows index: FAISS approximate index (needs kws[search])")
    ix.add_argument("--workers", type=int, default=0,
                    help="embedding processes on a local Dask cluster (default: all cores when Dask "
                         "is installed; 1: in this process)")
    ix.add_argument("--address", help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.set_defaults(run=run_index, interrupted="interrupted; the files indexed so far are kept")
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
    q.add_argument("--bundle", help="model bundle folder (default: shipped)")
    q.add_argument("--exact", action="store_true", help="scan every window (the reference), "
                                                        "also in an approximate index")
    q.add_argument("--nprobe", type=int, default=None, help="approximate index: lists scanned "
                                                             "(default 16 for templates, 128 for windows; "
                                                             "more: better recall, slower)")
    q.add_argument("--voices", type=int, default=8, help="templates: TTS renderings of a text term (8)")
    q.add_argument("--clip", metavar="DIR", help="cut each hit with --context into WAV files in DIR")
    q.add_argument("--play", action="store_true", help="play each hit with --context")
    q.add_argument("--context", type=float, default=0.5, help="seconds around a clipped hit (0.5)")
    q.set_defaults(run=run_query)
    v = cmds.add_parser("verify", help="check every file of a templates index against its sha256",
                        description="Reads every file of the index and checks it against the "
                                    "manifest's sha256 (queries check sizes, small files, and the "
                                    "lists and rows they read).")
    v.add_argument("index")
    v.set_defaults(run=run_verify)


DEFAULT_REPRESENTATION = "templates"


def index_kind(folder) -> str:
    """'templates', 'windows', or '' (not an index)."""
    folder = Path(folder)
    if (folder / "manifest.json").exists():
        return "templates"
    if (folder / "index.json").exists():
        return "windows"
    return ""


def run_index(args) -> int:
    kind = index_kind(args.index)
    rep = args.representation
    if kind and rep and rep != kind:
        from kws.search import SearchIndexError

        raise SearchIndexError(f"{args.index} is a {kind} index; index into another folder for {rep}")
    if (kind or rep or DEFAULT_REPRESENTATION) == "templates" and not args.approximate:
        return _index_archive(args)
    from kws.bundle import Bundle
    from kws.errors import UsageError
    from kws.search import IndexConfig, SearchIndex

    windows = tuple(float(w) for w in args.windows.split(",") if w.strip())
    cfg = IndexConfig(window_s=windows, hop_s=args.hop, variant=args.variant,
                      kind="ivf" if args.approximate else "exact")
    existing = (Path(args.index) / "index.json").exists()
    bundle = Bundle.load(args.bundle, variant=args.variant)
    idx = SearchIndex(args.index, bundle, None if existing else cfg)
    if existing and idx.config != cfg:
        print(f"(using the index's own settings: windows {idx.config.window_s}, hop "
              f"{idx.config.hop_s}, {idx.config.variant}, {idx.config.kind})", file=sys.stderr)
    if args.workers < 0:
        raise UsageError("--workers must be 0 (all cores) or more")
    workers = args.workers
    if workers == 0 and not args.address:
        from kws.search_dist import default_workers

        workers = default_workers()
    t0 = time.perf_counter()
    st = idx.add(args.paths, prune=not args.keep_missing, workers=workers,
                 address=args.address, quiet=args.quiet)
    wall = time.perf_counter() - t0
    for f in st["failed"]:
        print(f"skipped: {f}", file=sys.stderr)
    print(json.dumps({"index": str(idx.root), "files": len(idx), "indexed": st["indexed"],
                      "unchanged": st["unchanged"], "removed": st["removed"],
                      "failed": len(st["failed"]), "audio_hours_indexed": round(st["audio_s"] / 3600, 4),
                      "wall_s": round(wall, 2), "windows": st["windows"],
                      "index_hours": round(idx.seconds / 3600, 4),
                      "index_mb": round(idx.size_bytes() / 1e6, 2), "kind": idx.config.kind,
                      "workers": "cluster " + args.address if args.address else workers}))
    return 1 if st["failed"] and not st["indexed"] and not st["unchanged"] else 0


def _index_archive(args) -> int:
    from kws.errors import UsageError
    from kws.search_archive import ArchiveIndex

    if args.workers < 0:
        raise UsageError("--workers must be 0 (all cores) or more")
    workers = args.workers
    if workers == 0 and not args.address:
        from kws.search_dist import default_workers

        workers = default_workers()
    idx = ArchiveIndex(args.index)
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
                      "index_mb": round(idx.size_bytes() / 1e6, 2), "kind": "templates",
                      "workers": "cluster " + args.address if args.address else workers}))
    return 1 if st["failed"] and not st["indexed"] and not st["unchanged"] else 0


def run_verify(args) -> int:
    from kws.search import SearchIndexError
    from kws.search_archive import ArchiveIndex

    if index_kind(args.index) != "templates":
        raise SearchIndexError(f"{args.index} is not a templates index (verify checks those)")
    rep = ArchiveIndex(args.index).verify()
    print(json.dumps({"index": args.index, "ok": True, "files": rep["files"],
                      "mb": round(rep["bytes"] / 1e6, 2), "seconds": round(rep["seconds"], 2)}))
    return 0


def _query_archive(args) -> int:
    from kws.audio import load_audio
    from kws.search_archive import ArchiveIndex, template_from_audio, templates_from_text

    idx = ArchiveIndex(args.index)
    t0 = time.perf_counter()
    if args.term is not None:
        templates = templates_from_text(args.term, voices=args.voices)
        label = args.term
    else:
        templates = [template_from_audio(load_audio(args.example, min_seconds=0.1), Path(args.example).name)]
        label = Path(args.example).name
    t1 = time.perf_counter()
    hits = idx.query(templates, top=args.top, threshold=args.threshold, per_file=args.per_file,
                     exact=args.exact, nprobe=args.nprobe)
    took = time.perf_counter() - t1
    _print_hits(args, hits, label, len(idx), idx.seconds, "exact" if args.exact else "approximate",
                took, t1 - t0, "templates")
    if args.clip or args.play:
        _clips(args, hits)
    if args.plot:
        return _plot(args, idx, templates, label, hits)
    return 0


def _print_hits(args, hits, label, n_files, seconds, how, took, embed_s, what) -> None:
    if args.json:
        for h in hits:
            print(json.dumps({"query": label, **h.to_dict()}))
        return
    print(f"{len(hits)} hits for {label!r} in {n_files} files ({seconds / 3600:.2f} h): "
          f"{how} search {took * 1000:.0f} ms, {what} {embed_s * 1000:.0f} ms")
    if hits:
        w = max(len(h.file) for h in hits)
        print(f"{'score':>6}  {'start':>8}  {'end':>8}  file")
        for h in hits:
            print(f"{h.score:6.3f}  {h.start:8.2f}  {h.end:8.2f}  {h.file:<{w}}")


def run_query(args) -> int:
    from kws.bundle import Bundle
    from kws.errors import UsageError
    from kws.search import SearchIndex, SearchIndexError

    kind = index_kind(args.index)
    if not kind:
        raise SearchIndexError(f"{args.index} is not a kws index (build one with: python -m kws search "
                               f"index PATH... --index {args.index})")
    if args.term is None and args.example is None:
        raise UsageError("give a term or --example clip.wav")
    if args.term is not None and args.example is not None:
        raise UsageError("give a term or --example, not both")
    if kind == "templates":
        return _query_archive(args)
    meta = json.loads((Path(args.index) / "index.json").read_text())
    bundle = Bundle.load(args.bundle, variant=meta.get("config", {}).get("variant", "int8"))
    idx = SearchIndex(args.index, bundle)
    t0 = time.perf_counter()
    vec = idx.embed_query(args.term, args.example)      # first call also loads the encoder
    t1 = time.perf_counter()
    hits = idx.query(vec, top=args.top, threshold=args.threshold, per_file=args.per_file,
                     exact=args.exact, nprobe=args.nprobe)
    took = time.perf_counter() - t1
    label = args.term if args.term is not None else Path(args.example).name
    how = "approximate" if idx.ann is not None and not args.exact else "exact"
    _print_hits(args, hits, label, len(idx), idx.seconds, how, took, t1 - t0, "query embedding")
    if args.clip or args.play:
        _clips(args, hits)
    if args.plot:
        return _plot(args, idx, vec, label, hits)
    return 0


def _clips(args, hits) -> None:
    import tempfile

    from kws.search import clip_hits, play_clips

    with tempfile.TemporaryDirectory(prefix="kws-hits-") as tmp:
        paths = clip_hits(hits, args.clip or tmp, args.context)
        if args.clip:
            print(f"{len(paths)} clips ({args.context:g} s context): {args.clip}", file=sys.stderr)
        if args.play:
            for h, p in zip(hits, paths):
                print(f"playing {h.score:.3f} {Path(h.file).name} {h.start:.2f}-{h.end:.2f}", file=sys.stderr)
                play_clips([p])


def _plot(args, idx, vec, label, hits) -> int:
    from kws.search import plot_scores

    target = args.plot_file or (hits[0].file if hits else None)
    if target is None:
        print("nothing to plot: no hits", file=sys.stderr)
        return 0
    try:
        plot_scores(idx, target, vec, label, args.plot, hits)
    except ImportError:
        print("--plot needs matplotlib: pip install matplotlib", file=sys.stderr)
        return 2
    print(f"plot: {args.plot}", file=sys.stderr)
    return 0
