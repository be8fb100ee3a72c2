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


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_names_only_what_exists(page):
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
    assert not missing, f"{page.relative_to(ROOT)} names what does not exist: {sorted(missing)}"
