"""Text queries' templates combined other ways, on the spoken-term protocol (exact scan, raw space).

    python benchmarks/search_template_variants.py --data ../shared/data --half a --voices 4,10,28
    python benchmarks/search_template_variants.py --data ../shared/data --half a --voices 4,10 --rates 0.8,0.9,1.0,1.15,1.3

The utterances and queries of ``search_archive.py std`` (half 'a': its validation speakers only,
as ``search_voices.py tune`` chooses voices; half 'b' to check). For each query, each template of
the first N voices of the raw space's order (kws.search.terms.voice_order) is scored alone on
every utterance; the mean EER over the IV and OOV queries is printed for:

- ``maxN``: the best template at each utterance (what search does now);
- ``zmaxN`` / ``zmeanN``: each template's scores z-normalised by their mean and spread over the
  whole archive, then the best / the mean of the templates; ``cmaxN``: centred only, the best;
- with ``--rates``: ``vN rR,...``: each template also stretched in time (its vectors interpolated
  to round(L r) of them), the best over the voices and those rates.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("KWS_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from search_archive import ArchiveConfig, ArchiveIndex, std_queries  # noqa: E402
from kws.corpus.real import DEFAULT_DATA  # noqa: E402


def time_stretched(T, r: float):
    """``T`` with its vectors interpolated in time to round(L r) of them (at least 3)."""
    from kws.search.rows import Template

    L = T.vectors.shape[0]
    x = np.linspace(0, L - 1, max(3, int(round(L * r))))
    i = np.floor(x).astype(int)
    f = (x - i)[:, None]
    v = (1 - f) * T.vectors[i] + f * T.vectors[np.minimum(i + 1, L - 1)]
    return Template(v, T.start_s * r, T.end_s * r, T.label, T.space)


def main() -> int:
    from kws.metrics import eer
    from kws.progress import progress
    from kws.search.rows import search_model
    from kws.search.terms import templates_from_text, voice_order

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--half", choices=("a", "b"), default="a")
    ap.add_argument("--voices", default="4,10,28", help="numbers of voices compared")
    ap.add_argument("--rates", default=None, help="time stretches compared, e.g. 0.8,0.9,1.0,1.15,1.3")
    args = ap.parse_args()
    nvs = [int(v) for v in args.voices.split(",")]
    rates = [float(r) for r in args.rates.split(",")] if args.rates else [1.0]
    if 1.0 not in rates:
        rates.append(1.0)
    utts, queries = std_queries(args.half, 300, 40, validation_only=args.half == "a")
    root = args.data / "speechocean762-train"
    files = [root / r["path"] for r in utts]
    by_path = {str(f.resolve()): r for f, r in zip(files, utts)}
    arc = ArchiveIndex(Path(tempfile.mkdtemp()) / "arc", ArchiveConfig(vectors="raw"), model=search_model(None))
    arc.add(files, quiet=True, prune=False)
    keys = list(arc.files)
    order = voice_order("raw")
    res = {}
    for g, words in queries.items():
        for w in progress(words, f"{g} queries"):
            lab = np.array([any(x == w for x, _, _ in by_path[k]["words"]) for k in keys])
            ts = templates_from_text(w, names=order[:max(nvs)], space=arc.space)
            best, mu, sd = {}, {}, {}
            for vi, T in enumerate(ts):
                for r in rates:
                    ser = [arc.file_scores(k, [T if r == 1.0 else time_stretched(T, r)])[0] for k in keys]
                    best[vi, r] = np.array([s.max(initial=-1) for s in ser])
                    if r == 1.0:                    # the normalisations are of the templates as rendered
                        every = np.concatenate(ser)
                        mu[vi], sd[vi] = every.mean(), every.std()
            out = {}
            for n in nvs:
                b = np.array([best[vi, 1.0] for vi in range(n)])
                m = np.array([mu[vi] for vi in range(n)])[:, None]
                s = np.array([sd[vi] for vi in range(n)])[:, None]
                out[f"max{n}"] = eer(b.max(0), lab)[0]
                out[f"zmax{n}"] = eer(((b - m) / s).max(0), lab)[0]
                out[f"zmean{n}"] = eer(((b - m) / s).mean(0), lab)[0]
                out[f"cmax{n}"] = eer((b - m).max(0), lab)[0]
                if len(rates) > 1:
                    for rs in [tuple(sorted(rates))] + [(min(1.0, r), max(1.0, r)) for r in rates if r != 1.0]:
                        out[f"v{n} r{','.join(map(str, rs))}"] = eer(
                            np.max([best[vi, r] for vi in range(n) for r in rs], axis=0), lab)[0]
            res.setdefault(g, {})[w] = out
    print(f"half '{args.half}', {len(keys)} utterances; mean EER over the queries, %")
    for g, per in res.items():
        for k in next(iter(per.values())):
            print(f"{g:>4} {len(per):3d} {k:28s} {100 * np.mean([v[k] for v in per.values()]):6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
