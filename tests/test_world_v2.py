"""World v2 (design §13.1): only the narration changes, and it speaks no benchmark text."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from videoclip.sim.text_overlap import overlap_table
from videoclip.sim.world import simulate

NARRATION = {"howto100m/caption.json", "world.json", "world_truth.npz"}


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_v1_and_v2_differ_only_in_narration(tmp_path):
    v1 = simulate(tmp_path / "v1", preset="smoke", world_version=1)
    v2 = simulate(tmp_path / "v2", preset="smoke")
    a, b = _digests(v1), _digests(v2)
    assert a.keys() == b.keys()
    assert {name for name in a if a[name] != b[name]} == NARRATION
    with np.load(v1 / "world_truth.npz") as t1, np.load(v2 / "world_truth.npz") as t2:
        for key in t1.files:
            if key not in ("pretrain_step_onset", "pretrain_step_speech_end"):
                assert np.array_equal(t1[key], t2[key]), key
    info = json.loads((v2 / "world.json").read_text())
    assert info["version"] == 2 and info["narration"]["guarded_texts"] > 0
    assert json.loads((v1 / "world.json").read_text())["narration"] == {}
    with pytest.raises(ValueError, match="world_version"):
        simulate(tmp_path / "v3", preset="smoke", world_version=3)


@pytest.mark.realdata
@pytest.mark.slow
def test_v2_narration_speaks_no_benchmark_text(tmp_path, real_data_dir):
    hits = {}
    for version in (1, 2):
        root = simulate(tmp_path / f"v{version}", preset="smoke", real_data_dir=real_data_dir,
                        world_version=version)
        hits[version] = overlap_table(root).set_index("benchmark").exact_hits
    assert hits[2].sum() == 0
    assert hits[1]["crosstask"] > 0  # v1 spoke CrossTask's step names
