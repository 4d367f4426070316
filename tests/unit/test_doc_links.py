"""Every relative link in README.md and docs/ resolves, as GitHub would follow it.

A link is `[text](target)`, `![alt](target)`, a reference definition `[name]: target`, or an HTML
`href`/`src`. Links inside code (fenced blocks, `code spans`) are not links. A target with a
scheme (`https:`, `mailto:`) is not checked. For the rest:

- the file or folder must exist, inside the repository;
- `#anchor` must be a heading of the target markdown file (or of the same file for a bare
  `#anchor`), slugged by GitHub's rules: the heading's text, lowercased, every character that is
  not a letter, digit, `_`, `-` or space dropped, spaces turned into `-`; a repeated slug gets
  `-1`, `-2`, ... An HTML `id="..."` or `name="..."` is an anchor too.

The docs also name no path outside the repository (`../something` that climbs out of it): whoever
clones the repository has nothing there.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.DOTALL)
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)", re.MULTILINE)
HTML = re.compile(r"""<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"""<[a-z]+\b[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")
CLIMB = re.compile(r"(?<![\w/.-])(?:\.\./)+[\w.-][\w./-]*")


def without_code(text: str) -> str:
    """The text without fenced blocks, code spans and backslash-escaped punctuation."""
    text = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    text = CODE_SPAN.sub("", text)
    return re.sub(r"\\[^\w\s]", "  ", text)  # an escaped `\[` opens no link


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's markdown source."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link or image: its text
    text = re.sub(r"<[^>]+>", "", text)  # HTML tags
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(md: Path) -> set[str]:
    text = md.read_text()
    found: set[str] = set()
    seen: dict[str, int] = {}
    for match in HEADING.finditer(FENCE.sub("", text)):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    found.update(HTML_ANCHOR.findall(text))
    return found


def targets(text: str) -> list[str]:
    prose = without_code(text)
    found = [m.group(1) for pattern in (INLINE, REFERENCE) for m in pattern.finditer(prose)]
    found += HTML.findall(prose)
    return [t[1:-1] if t.startswith("<") and t.endswith(">") else t for t in found]


def broken_links(md: Path, root: Path) -> list[str]:
    """What is wrong with each relative link of `md`, one line each; empty when all resolve."""
    problems = []
    for target in targets(md.read_text()):
        if SCHEME.match(target):
            continue
        path_part, _, anchor = target.partition("#")
        dest = (md.parent / unquote(path_part)).resolve() if path_part else md.resolve()
        if not dest.is_relative_to(root.resolve()):
            problems.append(f"{target}: points outside the repository")
        elif not dest.exists():
            problems.append(f"{target}: no such file {dest.relative_to(root.resolve())}")
        elif anchor and dest.suffix == ".md" and unquote(anchor) not in anchors(dest):
            problems.append(f"{target}: {dest.name} has no heading with anchor #{anchor}")
    return problems


def paths_outside(md: Path, root: Path) -> list[str]:
    """Every `../...` path in the text (code included) that climbs out of the repository."""
    return [
        m.group(0)
        for m in CLIMB.finditer(md.read_text())
        if not (md.parent / m.group(0)).resolve().is_relative_to(root.resolve())
    ]


# ---- the repository's docs -----------------------------------------------------------------------


def test_docs_are_found() -> None:
    assert REPO / "README.md" in DOCS
    assert len(DOCS) > 1, "docs/ has no markdown files"


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_resolve(md: Path) -> None:
    problems = broken_links(md, REPO)
    assert not problems, f"{md.relative_to(REPO)}: broken links:\n" + "\n".join(problems)


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_path_outside_the_repository(md: Path) -> None:
    outside = paths_outside(md, REPO)
    assert not outside, f"{md.relative_to(REPO)} names paths outside the repository: {outside}"


# ---- the checker itself: it must be able to fail ---------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Quick start", "quick-start"),
        ("Scaling: one pass", "scaling-one-pass"),
        ("Terraform: `envs/aws` variables", "terraform-envsaws-variables"),
        ("`make up`: local mode", "make-up-local-mode"),
        ("Bad input, and what you see", "bad-input-and-what-you-see"),
        ("Deploy to [AWS](https://aws.amazon.com)", "deploy-to-aws"),
        ("a -> b (c)", "a---b-c"),
        ("snake_case_name", "snake_case_name"),
    ],
)
def test_slug_follows_github(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path: Path) -> None:
    md = tmp_path / "a.md"
    md.write_text('# Notes\n\n## Notes\n\n```\n# not a heading\n```\n<a name="here"></a>\n')
    assert anchors(md) == {"notes", "notes-1", "here"}


def test_broken_links_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## Deploy to AWS\n")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Top\n\n"
        "[ok](docs/guide.md) [ok](docs/guide.md#deploy-to-aws) [ok](#top) [ok](docs/)\n"
        "[web](https://example.org/missing.md) [mail](mailto:a@b.c)\n"
        "`[in code](missing-in-code.md)`\n\n"
        "```\n[in a fence](missing-in-fence.md)\n```\n\n"
        "[no file](docs/missing.md)\n"
        "[no heading](docs/guide.md#deploy-to-gcp)\n"
        "[no local heading](#bottom)\n"
        "![no image](docs/images/missing.png)\n"
        "[outside](../elsewhere/notes.md)\n"
        '[ref]: docs/gone.md\n<img src="docs/none.png">\n'
    )
    problems = broken_links(readme, tmp_path)
    assert [p.split(":")[0] for p in problems] == [
        "docs/missing.md",
        "docs/guide.md#deploy-to-gcp",
        "#bottom",
        "docs/images/missing.png",
        "../elsewhere/notes.md",
        "docs/gone.md",
        "docs/none.png",
    ]


def test_paths_outside_the_repository_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    md = tmp_path / "docs" / "a.md"
    md.write_text("See ../README.md and ../../elsewhere/notes.md, `../../outside.txt`.\n")
    assert paths_outside(md, tmp_path) == ["../../elsewhere/notes.md", "../../outside.txt"]
