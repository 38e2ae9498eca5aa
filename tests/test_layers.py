"""The package's three layers, checked by walking every import with ``ast``.

* the library (``videoclip/`` outside ``sim/`` and ``book/``) never imports ``videoclip.sim`` or
  ``videoclip.book``; the one exception is ``cli.py``, whose ``simulate`` subcommand calls the
  simulator (it still never imports the book);
* ``videoclip.sim`` never imports ``videoclip.book``;
* no import cycle between the package's modules, function-local imports included.

A failure names the file and line of each offending import.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "videoclip"
SIM_ALLOWED = {"videoclip.cli"}  # the `simulate` subcommand


def _modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name → its file."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imports(modules: dict[str, Path]) -> list[tuple[str, str, str]]:
    """``(importer, imported module, "file:line")`` for every import of the package, anywhere."""

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    root = modules["videoclip"].parent.parent  # the directory holding the package
    edges = []
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                # `from videoclip.book import stats` imports the module videoclip.book.stats
                names = [
                    f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]
            else:
                continue
            where = f"{path.relative_to(root)}:{node.lineno}"
            edges += [
                (module, resolve(n), where)
                for n in names
                if n.split(".")[0] == "videoclip" and resolve(n) != module
            ]
    return edges


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_nothing_outside_the_book_imports_it():
    bad = [
        f"{where}: {a} imports {b}"
        for a, b, where in _imports(_modules())
        if _inside(b, "videoclip.book") and not _inside(a, "videoclip.book")
    ]
    assert not bad, "the book's code is imported from below it:\n" + "\n".join(bad)


def test_the_library_never_imports_the_simulator():
    bad = [
        f"{where}: {a} imports {b}"
        for a, b, where in _imports(_modules())
        if _inside(b, "videoclip.sim")
        and not _inside(a, "videoclip.sim")
        and not _inside(a, "videoclip.book")
        and a not in SIM_ALLOWED
    ]
    assert not bad, "the library imports the simulated world:\n" + "\n".join(bad)


def test_no_import_cycle():
    edges = _imports(_modules())
    graph: dict[str, list[tuple[str, str]]] = {}
    for a, b, where in edges:
        graph.setdefault(a, []).append((b, where))
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[tuple[str, str]] = []
    cycles: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        for target, where in graph.get(module, []):
            if state.get(target) == 1:
                start = next(i for i, (m, _) in enumerate(path + [(module, where)]) if m == target)
                loop = (path + [(module, where)])[start:]
                cycles.append(" -> ".join(f"{m} ({w})" for m, w in loop) + f" -> {target}")
            elif state.get(target) is None:
                path.append((module, where))
                visit(target)
                path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_a_violation(tmp_path):
    """The walk is not vacuous: a function-local import of the book is reported with its line."""
    fake = tmp_path / "videoclip"
    (fake / "book").mkdir(parents=True)
    for name in ("__init__.py", "book/__init__.py", "book/stats.py"):
        (fake / name).write_text("")
    (fake / "model.py").write_text(
        "import os\n\n\ndef f():\n    from videoclip.book import stats\n"
    )
    edges = _imports(_modules(fake))
    assert ("videoclip.model", "videoclip.book.stats", "videoclip/model.py:5") in edges


def test_no_test_module_imports_another():
    """Tests share fixtures through conftest.py and helpers through helpers.py, never each other."""
    bad = []
    for path in sorted(Path(__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            bad += [
                f"{path.name}:{node.lineno}: imports {n}"
                for n in names
                if n.split(".")[0].startswith("test_")
            ]
    assert not bad, "\n".join(bad)
