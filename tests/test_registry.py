"""The benchmark registry: one row per benchmark, consistent with the paper's table and the files."""

from __future__ import annotations

import pytest

from videoclip.evaluation.registry import BENCHMARKS, UnknownBenchmarkError, benchmark
from videoclip.paper import ZERO_SHOT, paper_numbers


def test_every_row_has_the_papers_numbers_and_its_headline_among_them():
    assert {r.benchmark for r in ZERO_SHOT} == set(BENCHMARKS)
    for name, row in BENCHMARKS.items():
        assert row.id == name
        assert row.headline in paper_numbers(name)


def test_names_resolve_and_an_unknown_one_lists_the_known():
    assert benchmark("msrvtt-mc") is benchmark("msrvtt_mc") is BENCHMARKS["msrvtt_mc"]
    assert len({b.cli_name for b in BENCHMARKS.values()}) == len(BENCHMARKS)
    with pytest.raises(UnknownBenchmarkError, match="choose one of youcook2, msrvtt"):
        benchmark("kinetics")


@pytest.mark.slow
def test_every_row_reads_its_files_from_a_world(smoke_world):
    for row in BENCHMARKS.values():
        assert all((smoke_world / f).exists() for f in row.files), row.id
        assert (smoke_world / row.features / "features").is_dir(), row.id
        assert row.load(smoke_world), row.id
