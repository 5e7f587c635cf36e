"""The house rules on file size: no file under harness/ or methods/ longer than 400 lines."""
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
