"""The package's layout: no import circles between kws modules (counting imports inside
functions too), and the run-time path never imports torch."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "kws"


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph():
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for n in names:
                if n in mods and n != m and n != "kws":
                    graph[m].add(n)
    return graph


def cycles(graph):
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    found = cycles(import_graph())
    assert not found, f"import circles: {found}"


def test_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_runtime_path_never_imports_torch():
    code = ("import sys, numpy as np, kws\n"
            "from kws.enroll.demo import demo_keywords\n"
            "m = kws.Model.load()\n"
            "det = kws.Detector(demo_keywords(m), m)\n"
            "det.detect(np.zeros(32000, np.float32))\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_import_kws_loads_the_run_time_only_and_quickly():
    """``import kws`` gives the public API and loads no search, training or corpus code (nor
    torch, FAISS or Dask); best of three fresh interpreters within 0.3 s."""
    code = ("import sys, time; t = time.perf_counter(); import kws; dt = time.perf_counter() - t; "
            "print(dt); print(' '.join(sorted(sys.modules))); print(' '.join(kws.__all__)); "
            "print(kws.ArchiveIndex.__module__)")
    times = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        dt, modules, public, archive = r.stdout.splitlines()
        times.append(float(dt))
    loaded = [m for m in modules.split() if m.startswith(("kws.search", "kws.train", "kws.corpus",
                                                           "kws.commands", "torch", "faiss", "dask"))]
    assert not loaded, f"import kws loaded {loaded}"
    assert set(public.split()) == {"Detector", "DetectorConfig", "Detection", "Model", "KeywordSet", "Keyword",
                                   "enroll_keyword", "KwsError", "ArchiveIndex"}
    assert archive == "kws.search.archive"
    assert min(times) <= 0.3, times
