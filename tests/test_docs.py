"""The README and docs/ as a reader follows them: every relative link leads to a file that exists,
and every #anchor to a heading of that file; the README stays a short entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text, fence, found = page.read_text(), False, set()
    for line in text.splitlines():
        if line.startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_somewhere(page):
    broken = []
    for target in LINK.findall(page.read_text()):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target}: no heading #{anchor}")
    assert not broken, broken


def test_the_readme_is_a_short_entry_point_to_every_docs_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 200
    for page in (ROOT / "docs").glob("*.md"):
        assert f"(docs/{page.name})" in readme, page.name
    assert "(docs/results/README.md)" in readme  # the measured results, one dated file each


def test_the_face_cropper_snippet_runs_as_written(tmp_path, monkeypatch):
    """docs/faces.md's Python block, on a photo of two faces named as the snippet names it."""
    import cv2

    from tests.conftest import two_faces

    (block,) = re.findall(r"```python\n(.*?)```", (ROOT / "docs/faces.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    cv2.imwrite("group.jpg", two_faces()[..., ::-1])
    names: dict = {}
    exec(compile(block, "docs/faces.md", "exec"), names)  # noqa: S102 - the docs' own code
    assert len(names["result"].faces) == 2 and names["result"].outcome == "aligned"
