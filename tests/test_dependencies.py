"""The import walk behind the chapters' stamps: hand-made sources against the real package."""

from __future__ import annotations

from videoclip.book.dependencies import (
    PACKAGE_DIR,
    dependency_files,
    files_digest,
    imported_modules,
    module_dependencies,
)


def _names(files) -> set[str]:
    return {f.relative_to(PACKAGE_DIR).as_posix() for f in files}


def test_import_forms():
    source = """
import os
import videoclip.data.samplers as samplers
from videoclip import paper, VideoCLIP
from videoclip.book.stats import mean_ci
def lazy():
    from videoclip.evaluation import metrics
"""
    assert imported_modules(source) == {"videoclip", "videoclip.data.samplers", "videoclip.paper",
                                        "videoclip.book.stats", "videoclip.evaluation",
                                        "videoclip.evaluation.metrics"}


def test_relative_imports():
    source = "from .common import open_store\nfrom . import metrics\nfrom .. import loss\n"
    assert imported_modules(source, module="videoclip.evaluation.retrieval") == {
        "videoclip.evaluation.common", "videoclip.evaluation", "videoclip.evaluation.metrics",
        "videoclip", "videoclip.loss"}
    assert "videoclip.evaluation.metrics" in imported_modules(
        "from . import metrics", module="videoclip.evaluation", is_package=True)


def test_closure_is_transitive_with_package_inits():
    files = _names(dependency_files("from videoclip.book.stats import mean_ci"))
    assert {"__init__.py", "book/__init__.py", "book/stats.py"} <= files
    assert "train.py" not in files and "book/jobs.py" not in files
    # videoclip/__init__.py imports the model lazily (inside __getattr__): counted, conservatively
    package = _names(module_dependencies("videoclip"))
    assert {"__init__.py", "model.py"} <= package
    direct = _names(module_dependencies("videoclip.book.jobs"))
    assert direct == package | {"book/__init__.py", "book/jobs.py", "book/dependencies.py"}
    assert module_dependencies("os") == []


def test_closure_matches_a_naive_walk():
    """Every module the closure holds imports only modules the closure holds (closed under imports)."""
    files = dependency_files("import videoclip.train")
    for path in files:
        module = ".".join(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        is_package = path.name == "__init__.py"
        module = module.removesuffix(".__init__")
        for name in imported_modules(path.read_text(), module=module, is_package=is_package):
            assert set(module_dependencies(name)) <= set(files), (path, name)


def test_digest_follows_content(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("x = 1\n")
    b.write_text("y = 2\n")
    before = files_digest([a, b])
    assert files_digest([b, a]) == before
    b.write_text("y = 3\n")
    assert files_digest([a, b]) != before
