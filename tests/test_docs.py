"""The documents stay true to the repository: every path they name exists, every
relative link (and its #anchor) resolves, and no file points outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted(
    [
        *(ROOT / name for name in ("README.md", "ARCHITECTURE.md", "CONTRIBUTING.md")),
        *ROOT.glob("docs/*.md"),
        *(ROOT / name / "README.md" for name in ("bench", "grafana")),
    ]
)
# A path into the repository's code as the documents write it: `proxy/ledger/barrier.py`, tests/e2e/…
# (not bench/out/ or grafana/grafana: what a run makes, or an image's name, are not in the repository).
NAMED_PATH = re.compile(r"(?<![\w./{-])((?:proxy|providers|policies|tests|scripts|deploy|docs)/[\w./*-]*[\w/*])")
LINK = re.compile(r"\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
# Spelled in pieces so that this file does not cite them itself.
OUTSIDE = ("CONTRACT" + ".md", "../" + "shared", "/work/" + "shared")


def _shown(document: Path) -> str:
    return str(document.relative_to(ROOT))


def named_paths(text: str) -> set[str]:
    return {match.rstrip(".") for match in NAMED_PATH.findall(text)}


def anchors(document: Path) -> set[str]:
    """The #anchors GitHub gives a document's headings: lower case, punctuation dropped,
    spaces as hyphens, a repeated heading numbered."""
    seen: dict[str, int] = {}
    for line in FENCE.sub("", document.read_text()).splitlines():
        if heading := re.match(r"#{1,6} (.+)", line):
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            if count:
                seen[f"{slug}-{count}"] = 1
    return set(seen)


@pytest.mark.parametrize("document", DOCUMENTS, ids=_shown)
def test_every_path_a_document_names_exists(document):
    missing = [
        path for path in sorted(named_paths(document.read_text())) if not any(ROOT.glob(path.rstrip("/") or "."))
    ]
    assert not missing, f"{_shown(document)} names paths that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=_shown)
def test_every_relative_link_resolves(document):
    broken = []
    for target in LINK.findall(FENCE.sub("", document.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https://, mailto:
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        unknown_anchor = linked.suffix == ".md" and linked.exists() and bool(anchor) and anchor not in anchors(linked)
        if not linked.exists() or unknown_anchor:
            broken.append(target)
    assert not broken, f"{_shown(document)} has links that lead nowhere: {broken}"


def test_every_module_the_architecture_lists_under_a_package_is_there():
    """ARCHITECTURE.md's table of parts names each package's modules by their short
    names (`book.py`, `console/`): each must be in the package its row is about."""
    missing = []
    for row in (ROOT / "ARCHITECTURE.md").read_text().splitlines():
        package = re.match(r"\| `([\w/]+/)`", row)
        if package is None:
            continue
        for name in re.findall(r"`([\w-]+(?:\.py|/))`", row.split("|")[2]):
            if not (ROOT / package.group(1) / name).exists():
                missing.append(f"{package.group(1)}{name}")
    assert not missing, f"ARCHITECTURE.md lists modules that are not there: {missing}"


def test_the_documents_exist():
    assert all(document.is_file() for document in DOCUMENTS), [_shown(d) for d in DOCUMENTS if not d.is_file()]


def test_the_paths_are_found_where_documents_name_them():
    """The checks above see what they are meant to see."""
    text = "see `proxy/ledger/barrier.py`, tests/e2e/ and [x](docs/finance.md#the-ledger), not https://a/proxy/x"
    assert named_paths(text) == {"proxy/ledger/barrier.py", "tests/e2e/", "docs/finance.md"}
    assert LINK.findall(text) == ["docs/finance.md#the-ledger"]
    assert {"the-ledger", "the-ledgers-fields", "reconciling-with-a-providers-bill"} <= anchors(
        ROOT / "docs/finance.md"
    )


def repository_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name]


def test_no_file_points_outside_the_repository():
    citing = []
    for path in repository_files():
        if not path.is_file():
            continue  # deleted in the working tree, not yet committed
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images
        citing += [f"{path.relative_to(ROOT)}: {name}" for name in OUTSIDE if name in text]
    assert not citing, citing
