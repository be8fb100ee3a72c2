"""python -m kws search {index,query}: spoken-term search over recordings (kws.search).

    python -m kws search index PATH... --index DIR         # files or folders; re-run to update
    python -m kws search query DIR "term"                   # or --example clip.wav

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
    cmds = p.add_subparsers(dest="search_command", metavar="{index,query}", required=True)
    ix = cmds.add_parser("index", help="index recordings (files or folders); re-run to update",
                         description="Embed every file's windows once; re-running skips unchanged "
                                     "files, re-embeds changed ones and drops deleted ones.")
    ix.add_argument("paths", nargs="+")
    ix.add_argument("--index", default="kws-index", help="index folder (default ./kws-index)")
    ix.add_argument("--bundle", help="model bundle folder (default: shipped)")
    ix.add_argument("--variant", choices=("int8", "fp32"), default="int8")
    ix.add_argument("--windows", default="0.2,0.3,0.4,0.5,0.6", help="window lengths, seconds")
    ix.add_argument("--hop", type=float, default=0.15)
    ix.add_argument("--keep-missing", action="store_true", help="keep files that no longer exist")
    ix.add_argument("--approximate", action="store_true",
                    help="new index: FAISS approximate index (large archives; needs kws[search])")
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
                                                             "(default 128; more: better recall, slower)")
    q.add_argument("--clip", metavar="DIR", help="cut each hit with --context into WAV files in DIR")
    q.add_argument("--play", action="store_true", help="play each hit with --context")
    q.add_argument("--context", type=float, default=0.5, help="seconds around a clipped hit (0.5)")
    q.set_defaults(run=run_query)


def run_index(args) -> int:
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


def run_query(args) -> int:
    from kws.bundle import Bundle
    from kws.errors import UsageError
    from kws.search import SearchIndex, SearchIndexError

    if not (Path(args.index) / "index.json").exists():
        raise SearchIndexError(f"{args.index} is not a kws index (build one with: python -m kws search "
                               f"index PATH... --index {args.index})")
    if args.term is None and args.example is None:
        raise UsageError("give a term or --example clip.wav")
    if args.term is not None and args.example is not None:
        raise UsageError("give a term or --example, not both")
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
    if args.json:
        for h in hits:
            print(json.dumps({"query": label, **h.to_dict()}))
    else:
        how = "approximate" if idx.ann is not None and not args.exact else "exact"
        print(f"{len(hits)} hits for {label!r} in {len(idx)} files ({idx.seconds / 3600:.2f} h): "
              f"{how} search {took * 1000:.0f} ms, query embedding {(t1 - t0) * 1000:.0f} ms")
        if hits:
            w = max(len(h.file) for h in hits)
            print(f"{'score':>6}  {'start':>8}  {'end':>8}  file")
            for h in hits:
                print(f"{h.score:6.3f}  {h.start:8.2f}  {h.end:8.2f}  {h.file:<{w}}")
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
