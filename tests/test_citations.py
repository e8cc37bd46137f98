"""Every citation the project makes resolves inside the repository: a `docs/...` path names a file
that exists, and a `contract.md §N.M` names a section that file has. The README, the code (whose
strings become report text) and the docs are read; web addresses are not citations of ours."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import ROOT

CITING = [
    ROOT / "README.md",
    ROOT / "Makefile",
    *ROOT.glob("docs/**/*.md"),
    *ROOT.glob("harness/**/*.py"),
    *ROOT.glob("harness/**/*.feature"),
    *ROOT.glob("harness/**/*.toml"),
    *ROOT.glob("benchmarks/*.py"),
]
# A path of ours: not part of a web address (no host or path segment before it).
DOCS_PATH = re.compile(r"(?<![\w/.:-])docs/[\w./-]*[\w/]")
SECTION = re.compile(r"(?<![\w/.:-])((?:docs/)?(?:contracts/)?[\w-]+\.md) §(\d+(?:\.\d+)*)")


def _resolve(name: str, citing: Path) -> Path | None:
    for candidate in (ROOT / name, ROOT / "docs" / name, ROOT / "docs" / "contracts" / name, citing.parent / name):
        if candidate.is_file() or (candidate.is_dir() and name.endswith("/")):
            return candidate
    return None


def _sections(document: Path) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^#{2,4} (\d+(?:\.\d+)*)[. ]", document.read_text(), re.M)}


def _elsewhere(text: str, match: re.Match[str]) -> bool:
    """A file of another repository, named in a link to it: [`owner/repo`, `docs/x.md`](https://...)."""
    return text[match.end() : match.end() + 8].startswith("`](http")


def citations() -> list[tuple[Path, str, str | None]]:
    found = []
    for path in CITING:
        text = path.read_text(encoding="utf-8")
        found += [(path, m.group(0).rstrip("."), None) for m in DOCS_PATH.finditer(text) if not _elsewhere(text, m)]
        found += [(path, m.group(1), m.group(2)) for m in SECTION.finditer(text)]
    return found


def test_the_project_cites_its_own_documents() -> None:
    cited = citations()
    assert len({c[1] for c in cited}) >= 8, "the scan found too few citations to mean anything"


def test_every_cited_file_and_section_exists_in_the_repository() -> None:
    broken = []
    for citing, name, section in citations():
        target = _resolve(name, citing)
        where = f"{citing.relative_to(ROOT)}: {name}" + (f" §{section}" if section else "")
        if target is None:
            broken.append(f"{where}: no such file in the repository")
        elif section and section not in _sections(target):
            broken.append(f"{where}: {target.relative_to(ROOT)} has no section {section}")
    assert not broken, "\n".join(broken)


def test_a_broken_citation_is_found(tmp_path) -> None:
    """The check itself: a missing file and a missing section are each reported."""
    (tmp_path / "a.md").write_text("## 1. One\n### 1.2 Two\n")
    assert _sections(tmp_path / "a.md") == {"1", "1.2"}
    assert DOCS_PATH.findall("see docs/missing.md, not https://x.org/docs/blob/y.md") == ["docs/missing.md"]
    linked = "[`o/r`, `docs/z.md`](https://github.com/o/r/blob/HEAD/docs/z.md)"
    assert [_elsewhere(linked, m) for m in DOCS_PATH.finditer(linked)] == [True]
    assert [m.groups() for m in SECTION.finditer("identity.md §9.9 and docs/contracts/graph.md §4.4")] == [
        ("identity.md", "9.9"),
        ("docs/contracts/graph.md", "4.4"),
    ]
    assert _resolve("docs/missing.md", tmp_path / "a.md") is None
