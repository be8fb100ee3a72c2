"""The package's layout: one subpackage a stage of the pipeline, no import circles between kws
modules (counting imports inside functions, and a module's import of the packages above it), the
run-time path never importing training code or torch, no module over 600 lines, and ``import
kws`` quick and free of search and training code."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "kws"
# the stages of the pipeline: each __init__ is a map of its modules, nothing else
STAGES = ("audio", "model", "spot", "enroll", "search", "serve")
# training and what only developers run: allowed to import kws.train, kws.corpus and torch
OFF_RUN_TIME = ("kws.train", "kws.corpus", "kws.evaluate", "kws.commands.train", "kws.commands.evaluate")
MAX_LINES = 600


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """Every module name an import statement of the file names (inside functions too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def import_graph():
    """kws module -> the kws modules it imports. Importing ``kws.a.b`` runs ``kws/a/__init__.py``
    first, so every module also imports the packages above it (``kws`` itself left out: it
    imports the public API)."""
    mods = {_module(p): p for p in PKG.rglob("*.py")}
    graph = {m: set() for m in mods}
    for m, p in mods.items():
        for n in _imports(p):
            if n in mods and n != m and n != "kws":
                graph[m].add(n)
        parent = m.rsplit(".", 1)[0]
        while parent != "kws" and "." in parent:
            if parent in mods and parent != m:
                graph[m].add(parent)
            parent = parent.rsplit(".", 1)[0]
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


def test_the_graph_counts_the_packages_a_module_runs():
    graph = import_graph()
    assert "kws.spot" in graph["kws.spot.detector"] and "kws.search" in graph["kws.search.archive"]
    assert "kws.enroll.kokoro" in graph["kws.enroll.build"]          # from kws.enroll import kokoro


def test_each_stage_is_a_package_whose_init_only_maps_its_modules():
    for stage in STAGES:
        init = PKG / stage / "__init__.py"
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init.relative_to(ROOT)} says what the stage is"
        assert len(tree.body) == 1, f"{init.relative_to(ROOT)} holds only its docstring"
        modules = {p.stem for p in (PKG / stage).glob("*.py")} - {"__init__", "__main__"}
        missing = [m for m in modules if f"``{m}``" not in ast.get_docstring(tree)]
        assert not missing, f"{init.relative_to(ROOT)} does not name {missing}"
    flat = sorted(p.name for p in PKG.glob("*.py"))
    assert flat == ["__init__.py", "__main__.py", "checksum.py", "errors.py", "evaluate.py", "metrics.py",
                    "progress.py"], flat


def test_no_module_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


def test_run_time_modules_never_import_training_code():
    """Counting imports inside functions: only training, its data, the evaluation and their
    commands may import kws.train, kws.corpus or torch."""
    bad = {}
    for p in PKG.rglob("*.py"):
        m = _module(p)
        if m.startswith(OFF_RUN_TIME):
            continue
        found = [n for n in _imports(p) if n.startswith(("kws.train", "kws.corpus", "torch"))]
        if found:
            bad[m] = sorted(set(found))
    assert not bad, bad


def test_runtime_path_never_imports_torch():
    code = ("import sys, numpy as np, kws\n"
            "from kws.enroll.demo import demo_keywords\n"
            "m = kws.Model.load()\n"
            "det = kws.Detector(demo_keywords(m), m)\n"
            "det.detect(np.zeros(32000, np.float32))\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_import_kws_loads_the_run_time_only_and_quickly():
    """``import kws`` gives the public API and loads no search, training, corpus, evaluation or
    server code (nor torch, FAISS or Dask); best of three fresh interpreters within 0.3 s."""
    code = ("import sys, time; t = time.perf_counter(); import kws; dt = time.perf_counter() - t; "
            "print(dt); print(' '.join(sorted(sys.modules))); print(' '.join(kws.__all__)); "
            "print(kws.ArchiveIndex.__module__)")
    times = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
        dt, modules, public, archive = r.stdout.splitlines()
        times.append(float(dt))
    loaded = [m for m in modules.split() if m.startswith(("kws.search", "kws.train", "kws.corpus", "kws.evaluate",
                                                           "kws.serve", "kws.web", "kws.commands", "torch",
                                                           "faiss", "dask"))]
    assert not loaded, f"import kws loaded {loaded}"
    assert set(public.split()) == {"Detector", "DetectorConfig", "Detection", "Model", "KeywordSet", "Keyword",
                                   "enroll_keyword", "KwsError", "ArchiveIndex"}
    assert archive == "kws.search.archive"
    assert min(times) <= 0.3, times
