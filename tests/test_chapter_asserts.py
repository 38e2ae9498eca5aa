"""Chapters assert invariants, never outcomes (issue 17): no `assert` compares two results.

An ordering comparison (<, <=, >, >=) between two non-constant values inside an ``assert`` of a
chapter source is an outcome check — "the model beats chance", "clustered groups are harder" — and
would stop ``make book -W`` on a contrary result instead of letting the scorecard say "not
supported". A genuine invariant between two computed values (R@1 ≤ R@5, a learning rate never above
its peak) carries a ``# invariant: <why>`` comment on the assert's lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))
ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
MARK = "# invariant:"


def _constant(node: ast.expr) -> bool:
    """A literal number, or one negated (``-1e-6``)."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        node = node.operand
    return isinstance(node, ast.Constant)


def two_value_comparisons(source: str) -> list[tuple[int, str]]:
    """``(line, source)`` of every assert comparing two non-constant values without the mark."""
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Assert):
            continue
        text = "\n".join(lines[node.lineno - 1:node.end_lineno])
        if MARK in text and text.split(MARK, 1)[1].strip():
            continue
        for compare in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
            operands = [compare.left, *compare.comparators]
            if any(isinstance(op, ORDERING) and not _constant(a) and not _constant(b)
                   for op, a, b in zip(compare.ops, operands, operands[1:])):
                found.append((node.lineno, ast.get_source_segment(source, node) or ""))
                break
    return found


def test_the_scanner_flags_outcomes_and_passes_invariants():
    source = """
assert oracle >= model
assert 0 <= value <= 100
assert abs(a - b) < 1e-9
assert (levels.oracle >= levels.chance - 1e-6).all(), levels
assert len(runs) == len(rows) * len(seeds)
assert r1 <= r5 <= r10  # invariant: recall grows with k
assert x > -1
"""
    assert [line for line, _ in two_value_comparisons(source)] == [2, 5]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_chapter_asserts_an_outcome(path):
    found = two_value_comparisons(path.read_text())
    assert not found, f"{path.name}: asserts comparing two results (report them, or mark a true " \
                      f"invariant with '{MARK} <why>'): {found}"
