"""The documentation names only what exists: every repository path, relative link (and its
#anchor), ``python -m`` module and ``kws.`` module a page of docs/ or the README names.
docs/history.md names modules of the earlier design by their dotted names; it is held to paths
and links only."""
import re
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TOP = ("kws", "docs", "benchmarks", "tests", "export", "configs", "scripts", "demos", ".ci")
PATH = re.compile(r"(?<![\w./-])((?:%s)/[\w./*-]*[\w*/])" % "|".join(re.escape(t) for t in TOP))
LINK = re.compile(r"\]\(([^)\s]+)\)")
MODULE = re.compile(r"python3? -m ([\w.]+)")
DOTTED = re.compile(r"(?<![\w./-])(kws(?:\.[a-z_][a-z0-9_]*)+)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = "".join(c for c in text if c in " -" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(page: Path) -> set:
    out, seen = set(), {}
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"#+\s+(.*)", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            out.add(s if n == 0 else f"{s}-{n}")
            seen[s] = n + 1
    return out


def module_exists(name: str) -> bool:
    """A module of the checkout, or a name defined in one (kws.spot.templates.cut)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:n])
        src = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
        if src.is_file():
            return n == len(parts) or (n == len(parts) - 1
                                       and re.search(rf"\b{parts[-1]}\b", src.read_text()) is not None)
    return False


def missing_names(page: Path) -> list:
    """What ``page`` names that the checkout does not hold."""
    text = page.read_text()
    missing = []
    for p in set(PATH.findall(text)):
        p = p.rstrip(".")
        if not (list(ROOT.glob(p)) if "*" in p else (ROOT / p).exists()):
            missing.append(p)
    for link in set(LINK.findall(text)):
        if re.match(r"[a-z]+:", link):
            continue                              # http(s), mailto
        target, _, anchor = link.partition("#")
        dest = (page.parent / target).resolve() if target else page
        if not dest.exists():
            missing.append(link)
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            missing.append(link)
    for m in set(MODULE.findall(text)):
        if m.split(".")[0] in ("kws", "export") and not module_exists(m):
            missing.append(f"python -m {m}")
    if page.name != "history.md":
        for m in set(DOTTED.findall(text)):
            if m.rsplit(".", 1)[1] in ("js", "py", "json", "md", "html", "css"):
                continue                          # a file name (kws.js)
            if not module_exists(m):
                missing.append(m)
    return sorted(missing)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_names_only_what_exists(page):
    missing = missing_names(page)
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {missing}"


def test_the_check_finds_what_does_not_exist(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Top\n\nSee `kws/spot/detector.py`, `kws/spot/gone.py`, benchmarks/rtf.py and scripts/gone.sh;\n"
                    "[top](#top), [away](#away), [gone](gone.md), [site](https://example.org);\n"
                    "python -m kws.commands, python -m kws.gone; kws.spot.templates.cut, kws.spot.gone, kws.js.\n")
    assert missing_names(page) == ["#away", "gone.md", "kws.gone", "kws.spot.gone", "kws/spot/gone.py",
                                   "python -m kws.gone", "scripts/gone.sh"]


# ------------------------------------------------------------------ the README as a new user meets it
README = ROOT / "README.md"


def _blocks(text: str, lang: str) -> list:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def _section(text: str, heading: str) -> str:
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_ci_installs_and_tests_as_the_readme_says():
    """.ci/run runs the README's "Test" commands line for line (the apt-get line by its own
    means: the same packages), and "Two commands" shows the same test command."""
    readme = README.read_text()
    lines = [ln for ln in _blocks(_section(readme, "Test"), "bash")[0].splitlines() if ln.strip()]
    apt = [ln for ln in lines if ln.startswith("sudo apt-get install")]
    assert len(apt) == 1
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = ci.split('# README, "Test"', 1)[1].splitlines()[1:]
    steps = [ln for ln in ci_lines if ln.strip() and not ln.startswith("#")]
    assert steps == [ln for ln in lines if ln not in apt]
    packages = {p for group in re.findall(r'need="\$need ([^"]+)"', ci) for p in group.split()}
    assert packages == set(apt[0].split()[4:])
    two = _section(readme, "Two commands")
    assert f"`{lines[-1]}`" in two and "`python -m kws listen`" in two
    install = [ln for ln in _blocks(_section(readme, "Install"), "bash")[0].splitlines() if ln.strip()]
    assert install[0] == lines[1]                              # the same virtual environment


def test_readme_python_runs_as_pasted(few_voices, monkeypatch, capsys, tmp_path):
    """The README's first Python snippet, pasted in a folder outside the checkout (typed keywords
    in the tests' few voices), prints the sample's words; the next one names the files of your
    own."""
    snippets = _blocks(README.read_text(), "python")
    monkeypatch.chdir(tmp_path)
    exec(compile(snippets[0], "README.md", "exec"), {})
    heard = [ln.split()[0] for ln in capsys.readouterr().out.splitlines()]
    assert heard == ["computer", "jarvis"], heard
    assert "a.wav" not in snippets[0] and "a.wav" in snippets[1]
    assert "`a.wav`, `b.wav` and `c.wav`" in README.read_text().split(snippets[1])[0][-200:]
