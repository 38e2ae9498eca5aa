"""Ablation runs through the job runner give the sequential build's results (smoke-sized runs)."""

from __future__ import annotations

import pytest
import safetensors.torch
import torch
import yaml
from helpers import tiny_config

from videoclip.book.ablations import FULL, METRICS, run_ablations

pytestmark = pytest.mark.slow
ROWS = (FULL, "w/o retrieval")


@pytest.fixture(scope="module")
def setup(smoke_world, tiny_backbone, tmp_path_factory):
    preset = tmp_path_factory.mktemp("preset") / "tiny.yaml"
    values = tiny_config(smoke_world, tiny_backbone, smoke_world, num_epochs=1, checkpoint_every=0,
                         max_videos=24)
    preset.write_text(yaml.safe_dump({k: v for k, v in values.items()
                                      if k not in ("data_dir", "run_dir", "progress")}))
    return smoke_world, preset


def _run(setup, out, *, workers: int, threads: int = 1) -> list:
    world, preset = setup
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the calling process's threads (workers=0 runs here)
    try:
        return run_ablations(out, [(world, preset, row, 0) for row in ROWS], batch_size=16,
                             device="cpu", workers=workers)
    finally:
        torch.set_num_threads(before)


def _weights(record: dict) -> dict[str, torch.Tensor]:
    return safetensors.torch.load_file(f"{record['run_dir']}/final/model.safetensors")


def test_parallel_runs_equal_the_sequential_build(setup, tmp_path):
    parallel = _run(setup, tmp_path / "parallel", workers=2)
    same_threads = _run(setup, tmp_path / "sequential-1", workers=0, threads=1)
    two_threads = _run(setup, tmp_path / "sequential-2", workers=0, threads=2)
    for (record, groups), (reference, reference_groups), (noisy, _) in zip(parallel, same_threads,
                                                                           two_threads):
        assert {m: record[m] for m in METRICS} == {m: reference[m] for m in METRICS}
        assert groups == reference_groups
        ours, theirs = _weights(record), _weights(reference)
        assert all(torch.equal(ours[name], theirs[name]) for name in theirs)  # bit for bit
        # the sequential build's two threads: float noise only, metrics to the reported precision
        assert {m: round(record[m], 1) for m in METRICS} == {m: round(noisy[m], 1) for m in METRICS}
    assert [record["row"] for record, _ in parallel] == list(ROWS)
