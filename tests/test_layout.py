"""The house rules: no file under harness/ or methods/ longer than 400 lines; a short README whose
links (and docs/'s) resolve."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def long_files(folders=("harness", "methods"), limit: int = MAX_LINES, repo: Path = REPO) -> dict[str, int]:
    sizes = {}
    for folder in folders:
        for path in sorted((repo / folder).rglob("*.py")):
            lines = len(path.read_text().splitlines())
            if lines > limit:
                sizes[path.relative_to(repo).as_posix()] = lines
    return sizes


def test_no_file_under_harness_or_methods_is_longer_than_400_lines():
    assert len(list((REPO / "harness").rglob("*.py"))) > 20       # the walk finds the package
    too_long = long_files()
    assert not too_long, ", ".join(f"{p} has {n} lines" for p, n in too_long.items()) + f" (at most {MAX_LINES})"


def test_the_size_check_can_fail(tmp_path):
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "big.py").write_text("x = 1\n" * 401)
    (tmp_path / "harness" / "small.py").write_text("x = 1\n" * 400)
    assert long_files(("harness",), repo=tmp_path) == {"harness/big.py": 401}


# The README stays short; what it does not say lives in docs/, linked from it.
MAX_README_WORDS = 1600
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def broken_links(markdown_files) -> list[str]:
    """``file: target`` for every relative markdown link whose target file does not exist."""
    broken = []
    for path in markdown_files:
        for target in LINK.findall(path.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue                                         # a URL or an anchor in the same file
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.name}: {target}")
    return broken


def test_the_readme_is_under_1600_words():
    words = len((REPO / "README.md").read_text().split())
    assert 300 < words < MAX_README_WORDS, f"README.md has {words} words (fewer than {MAX_README_WORDS} wanted)"


def test_every_relative_link_in_the_readme_and_docs_exists():
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    assert len(files) > 5
    assert sum(len(LINK.findall(f.read_text())) for f in files) > 20    # the pattern finds the links
    assert not broken_links(files)


def test_the_readme_links_every_docs_file():
    readme = (REPO / "README.md").read_text()
    assert [d.name for d in sorted((REPO / "docs").glob("*.md")) if f"](docs/{d.name})" not in readme] == []


def test_the_link_check_can_fail(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "[up](../README.md) [gone](../missing.md#x) [web](https://example.org) [here](#top)")
    (tmp_path / "README.md").write_text("[a](docs/a.md) [b](docs/b.md)")
    assert broken_links([tmp_path / "README.md", tmp_path / "docs" / "a.md"]) == ["README.md: docs/b.md",
                                                                                "a.md: ../missing.md#x"]


# Docstrings say what and why in a few lines; derivations, evidence and reference-code fidelity live in
# docs/method-notes.md and docs/design-notes.md.  A method's file: 12 lines; the API and harness modules: 30.
MAX_DOC_LINES = {"methods/[a-z]*.py": 12, "methods/_*.py": 30, "harness/**/*.py": 30}


def long_docstrings(limits=MAX_DOC_LINES, repo: Path = REPO) -> dict[str, int]:
    import ast

    sizes = {}
    for pattern, limit in limits.items():
        for path in sorted(repo.glob(pattern)):
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if len(doc.splitlines()) > limit:
                sizes[path.relative_to(repo).as_posix()] = len(doc.splitlines())
    return sizes


def test_module_docstrings_are_short():
    too_long = long_docstrings()
    assert not too_long, ", ".join(f"{p}: {n} docstring lines" for p, n in too_long.items()) + f" ({MAX_DOC_LINES})"
    (REPO / "docs" / "method-notes.md").read_text().index("## scrub")    # where the rest went
    (REPO / "docs" / "design-notes.md").read_text().index("## metrics.statistics")


def test_the_docstring_check_can_fail(tmp_path):
    (tmp_path / "methods").mkdir()
    (tmp_path / "methods" / "wordy.py").write_text('"""' + "line\n" * 13 + '"""\n')
    (tmp_path / "methods" / "terse.py").write_text('"""' + "line\n" * 12 + '"""\n')
    assert long_docstrings({"methods/*.py": 12}, repo=tmp_path) == {"methods/wordy.py": 13}
