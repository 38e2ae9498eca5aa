"""Which of the package's files a chapter or a job depends on: its imports, followed through the package.

A chapter's stamp (the runner re-executes a chapter only when its stamp changed) hashes the package
files its code can run, not the whole package: the ``videoclip`` modules it imports, the modules
those import, and so on (imports inside functions count: the package imports lazily), each with the
``__init__.py`` of every package on its path. Found by reading the code with :mod:`ast`; nothing is
imported. An import the walk cannot resolve to a file is a name imported from a package's
``__init__`` (``from videoclip import VideoCLIP``), which is in the set already.

    files = dependency_files(source_text)           # e.g. a notebook's jupytext source
    digest = files_digest(files)                    # changes when one of them changes
"""

from __future__ import annotations

import ast
import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "videoclip"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
REPO = PACKAGE_DIR.parent


def module_file(name: str) -> Path | None:
    """``videoclip.data.samplers`` → its file (a module or a package's ``__init__.py``), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=512)  # a build walks each module once per chapter: parse it once
def imported_modules(source: str, *, module: str = "", is_package: bool = False) -> frozenset[str]:
    """The ``videoclip`` modules that ``source`` imports anywhere (top level or inside functions).

    Args:
        source: Python code.
        module: its own dotted name, to resolve relative imports (``""``: none allowed).
        is_package: whether ``source`` is a package's ``__init__.py`` (``from . import x`` then
            means its own submodule).
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".") if is_package else module.split(".")[:-1]
                if node.level - 1 > len(anchor) or not module:
                    raise ImportError(f"{module or 'a top-level source'}: relative import beyond the package")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # kept when a submodule
    return frozenset(name for name in found if module_file(name) is not None)


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def dependency_files(source: str) -> list[Path]:
    """The package files that ``source`` (code outside the package) can run, sorted: its imports,
    transitively, with the ``__init__.py`` of each package on the way."""
    return _closure(imported_modules(source))


def module_dependencies(module: str) -> list[Path]:
    """:func:`dependency_files` of one package module, itself included (``[]`` outside the package)."""
    return _closure({module}) if module_file(module) is not None else []


def _closure(start: Iterable[str]) -> list[Path]:
    seen: set[str] = set()
    todo = [parent for name in start for parent in _with_parents(name)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = module_file(name)
        imports = imported_modules(path.read_text(), module=name, is_package=path.name == "__init__.py")
        todo.extend(parent for imported in imports for parent in _with_parents(imported))
    return sorted({module_file(name) for name in seen})


def files_digest(files: Iterable[Path]) -> str:
    """A sha256 over each file's path (relative to the repository, else its name) and bytes."""
    digest = hashlib.sha256()
    for path in sorted(Path(f).resolve() for f in files):
        name = path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else path.name
        digest.update(name.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
