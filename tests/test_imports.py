"""The package's import graph: no cycle, and no private name crossing modules.

The graph is read from the source with ``ast``, function-local imports
included (a cycle hidden in a function is still a cycle), plus the modules
named by string for ``importlib`` (``"unlearnbench.harness.metrics.floor:leaderboard_section"``).
The check carries its own code: CI runs on a clean clone.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

from unlearnbench.harness.tomlio import tomllib

REPO = Path(__file__).resolve().parents[1]
MODULE_STRING = re.compile(r"(unlearnbench(?:\.\w+)+)(?::\w+)?\Z")


def package_modules(repo: Path = REPO) -> dict[str, Path]:
    """Module name -> file, for the folders pyproject maps into the ``unlearnbench`` package."""
    with open(repo / "pyproject.toml", "rb") as f:
        package_dir = tomllib.load(f)["tool"]["setuptools"]["package-dir"]
    modules = {}
    for package, folder in package_dir.items():
        for path in (repo / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(repo / folder).with_suffix("").parts if p != "__init__"]
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(name: str, path: Path) -> list[tuple[str, str | None, int]]:
    """(module, imported name or None, line) for every import of ``path``, anywhere in it."""
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                package = base
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                module = f"{package}.{module}" if node.module else package
            found += [(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_STRING.match(node.value):
            found.append((MODULE_STRING.match(node.value).group(1), None, node.lineno))
    return found


def resolve(target: str, modules) -> str | None:
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    graph = {m: set() for m in modules}
    for m, path in modules.items():
        for module, name, _ in imports_of(m, path):
            for target in (f"{module}.{name}" if name else module, module):
                r = resolve(target, modules)
                # a package's __init__ is its face: a child importing it (or through it) is no cycle
                if r and r != m and not (modules[r].name == "__init__.py" and m.startswith(r + ".")):
                    graph[m].add(r)
                    break
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, on, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def private_imports(modules: dict[str, Path], repo: Path = REPO) -> list[str]:
    """Imports of a ``_name`` from another module, and of a private module
    (``methods._train``) from outside its own package.  A package's own
    modules may use its private modules: that is what they are for (and its
    ``__init__`` re-exports from them: the package's public face)."""
    bad = []
    for m, path in modules.items():
        own_package = m if path.name == "__init__.py" else m.rpartition(".")[0]
        for module, name, line in imports_of(m, path):
            if not module.startswith("unlearnbench"):
                continue
            where = f"{path.relative_to(repo)}:{line}"
            if name and name.startswith("_") and not name.startswith("__"):
                bad.append(f"{where} imports the private name {name} from {module}")
            parts = module.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__") and ".".join(parts[:i]) != own_package:
                    bad.append(f"{where} imports from the private module {'.'.join(parts[:i + 1])}")
                    break
    return list(dict.fromkeys(bad))


def test_the_package_has_no_import_cycle():
    modules = package_modules()
    assert len(modules) > 50 and "unlearnbench.harness.protocol.runner" in modules
    found = cycles(import_graph(modules))
    short = [" <-> ".join(c.replace("unlearnbench.", "") for c in cycle) for cycle in found]
    assert not found, f"{len(found)} import cycle(s): " + "; ".join(short)


def test_the_cycle_check_finds_cycles(tmp_path):
    """The check can fail: a cycle through a function-local import, and one through an importlib string."""
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools.package-dir]\n"unlearnbench.pkg" = "pkg"\n')
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import x\n")
    (pkg / "b.py").write_text("def x():\n    from . import c\n")
    (pkg / "c.py").write_text("SECTION = 'unlearnbench.pkg.a:render'\n")
    (pkg / "d.py").write_text("from . import a\n")
    graph = import_graph(package_modules(tmp_path))
    assert cycles(graph) == [["unlearnbench.pkg.a", "unlearnbench.pkg.b", "unlearnbench.pkg.c"]]
    (pkg / "c.py").write_text("SECTION = 'see unlearnbench.pkg.a for the renderer'\n")   # prose is no import
    assert cycles(import_graph(package_modules(tmp_path))) == []


def test_no_private_name_crosses_modules():
    bad = private_imports(package_modules())
    assert not bad, "\n".join(bad)


def test_the_private_name_check_finds_them(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.setuptools.package-dir]\n"unlearnbench.pkg" = "pkg"\n'
                                             '"unlearnbench.other" = "other"\n')
    for folder in ("pkg", "other"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "pkg" / "_api.py").write_text("def coerce():\n    pass\n")
    (tmp_path / "pkg" / "method.py").write_text("from ._api import coerce\n")                  # its own package
    (tmp_path / "other" / "user.py").write_text("from unlearnbench.pkg._api import coerce\n"
                                                "from unlearnbench.pkg.method import _helper\n")
    bad = private_imports(package_modules(tmp_path), tmp_path)
    assert bad == ["other/user.py:1 imports from the private module unlearnbench.pkg._api",
                   "other/user.py:2 imports the private name _helper from unlearnbench.pkg.method"]
