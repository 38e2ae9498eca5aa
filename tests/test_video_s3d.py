"""S3D and MIL-NCE's text tower against an independent functional reference on random weights.

The reference is transcribed from the structure of MIL-NCE's ``s3dg.py`` as plain functions over
the state dict (no modules shared with the package), so a wrong key, kernel, padding, pool or
gating in ``videoclip.video.s3d`` shows as a mismatch.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from videoclip.sim.media import WORDS
from videoclip.video import S3D
from videoclip.video.s3d import S3DError


def ref_bn_relu(x, sd, prefix):
    x = F.batch_norm(x, sd[prefix + ".running_mean"], sd[prefix + ".running_var"],
                     sd[prefix + ".weight"], sd[prefix + ".bias"], training=False, eps=1e-5)
    return torch.relu(x)


def ref_stconv(x, sd, prefix, *, padding=0, separable=False, kernel=None):
    if separable:
        x = F.conv3d(x, sd[prefix + ".conv1.weight"], padding=(0, padding, padding))
        x = ref_bn_relu(x, sd, prefix + ".bn1")
        x = F.conv3d(x, sd[prefix + ".conv2.weight"], padding=(padding, 0, 0))
        return ref_bn_relu(x, sd, prefix + ".bn2")
    x = F.conv3d(x, sd[prefix + ".conv1.weight"], padding=padding)
    return ref_bn_relu(x, sd, prefix + ".bn1")


def ref_gate(x, sd, prefix):
    w = torch.sigmoid(F.linear(x.mean(dim=[2, 3, 4]), sd[prefix + ".fc.weight"],
                               sd[prefix + ".fc.bias"]))
    return w[:, :, None, None, None] * x


def ref_tf_pool(x, kernel, stride):
    # s3dg.py: per dim pad_along = max(k - s, 0), top = pad // 2; order (T,H,W) → ConstantPad3d
    # with depth moved last; H and W pads are equal here, so the order does not matter
    pads = []
    for k, s in zip(kernel, stride):
        along = max(k - s, 0)
        pads.append((along // 2, along - along // 2))
    (t0, t1), (h0, h1), (w0, w1) = pads
    x = F.pad(x, (h0, h1, w0, w1, t0, t1), value=0.0)
    return F.max_pool3d(x, kernel, stride, ceil_mode=True)


def ref_inception(x, sd, p):
    b0 = ref_stconv(x, sd, p + ".conv_b0")
    b1 = ref_stconv(ref_stconv(x, sd, p + ".conv_b1_a"), sd, p + ".conv_b1_b", padding=1,
                    separable=True)
    b2 = ref_stconv(ref_stconv(x, sd, p + ".conv_b2_a"), sd, p + ".conv_b2_b", padding=1,
                    separable=True)
    b3 = ref_stconv(F.max_pool3d(x, 3, 1, 1), sd, p + ".conv_b3_b")
    return torch.cat([ref_gate(b0, sd, p + ".gating_b0"), ref_gate(b1, sd, p + ".gating_b1"),
                      ref_gate(b2, sd, p + ".gating_b2"), ref_gate(b3, sd, p + ".gating_b3")], 1)


def reference_video(video, sd):
    b, c, t, h, w = video.shape
    x = video.view(b, c, t // 2, 2, h // 2, 2, w // 2, 2).permute(0, 3, 5, 7, 1, 2, 4, 6)
    x = x.contiguous().view(b, 8 * c, t // 2, h // 2, w // 2)
    x = F.conv3d(x, sd["conv1.conv1.weight"], padding=(1, 2, 2))
    x = ref_bn_relu(x, sd, "conv1.bn1")[:, :, 1:, 1:, 1:]
    x = ref_tf_pool(x, (1, 3, 3), (1, 2, 2))
    x = ref_stconv(x, sd, "conv_2b")
    x = ref_stconv(x, sd, "conv_2c", padding=1, separable=True)
    x = ref_gate(x, sd, "gating")
    x = ref_tf_pool(x, (1, 3, 3), (1, 2, 2))
    x = ref_inception(ref_inception(x, sd, "mixed_3b"), sd, "mixed_3c")
    x = ref_tf_pool(x, (3, 3, 3), (2, 2, 2))
    for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
        x = ref_inception(x, sd, name)
    x = ref_tf_pool(x, (2, 2, 2), (2, 2, 2))
    x = ref_inception(ref_inception(x, sd, "mixed_5b"), sd, "mixed_5c")
    pooled = x.mean(dim=[2, 3, 4])
    return F.linear(pooled, sd["fc.weight"], sd["fc.bias"]), pooled


def reference_text(texts, sd, words):
    vocab = {w: i + 1 for i, w in enumerate(words)}
    rows = []
    for text in texts:
        ids = [vocab[w] for w in re.findall(r"[\w']+", str(text.lower())) if w in vocab]
        ids = (ids + [0] * 16)[:16]
        rows.append(ids)
    emb = sd["text_module.word_embd.weight"][torch.tensor(rows)]
    hidden = torch.relu(F.linear(emb, sd["text_module.fc1.weight"], sd["text_module.fc1.bias"]))
    return F.linear(hidden.max(dim=1)[0], sd["text_module.fc2.weight"], sd["text_module.fc2.bias"])


@pytest.fixture(scope="module")
def model(s3d_files):
    return S3D.from_milnce_checkpoint(s3d_files[0], dict_path=s3d_files[1])


@pytest.fixture(scope="module")
def sd(s3d_files):
    return torch.load(s3d_files[0])


def test_state_dict_keys_are_the_release_layout(model):
    keys = set(model.state_dict())
    for key in ("conv1.conv1.weight", "conv1.bn1.running_var", "conv_2c.conv2.weight",
                "gating.fc.weight", "mixed_3b.conv_b1_b.conv1.weight",
                "mixed_5c.gating_b3.fc.bias", "fc.weight", "text_module.word_embd.weight",
                "text_module.fc1.weight", "text_module.fc2.bias"):
        assert key in keys
    assert model.state_dict()["conv1.conv1.weight"].shape == (64, 24, 2, 4, 4)
    assert model.state_dict()["text_module.word_embd.weight"].shape == (66250, 300)
    assert not model.training


@pytest.mark.parametrize("shape", [(2, 3, 8, 32, 32), (1, 3, 6, 40, 56)])
def test_video_outputs_equal_reference(model, sd, shape):
    video = torch.rand(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(video)
        ref_emb, ref_pool = reference_video(video, sd)
    assert out["video_embedding"].shape == (shape[0], 512)
    assert out["mixed_5c"].shape == (shape[0], 1024)
    torch.testing.assert_close(out["mixed_5c"], ref_pool, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out["video_embedding"], ref_emb, atol=1e-4, rtol=1e-4)


def test_text_tower_equals_reference(model, sd):
    texts = ["Cut the TOMATO", "open door, pour water into bowl!", "no known words here",
             " ".join(WORDS * 3), "it's the bowl"]
    with torch.no_grad():
        out = model.encode_text(texts)
    assert out.shape == (5, 512)
    torch.testing.assert_close(out, reference_text(texts, sd, WORDS), atol=1e-4, rtol=1e-4)
    ids = model.text_module.token_ids(texts)
    assert ids[2].tolist() == [0] * 16  # unknown words dropped
    assert ids[3].tolist() == (list(range(1, 11)) * 2)[:16]  # first 16 known words


def test_strict_loading_names_the_problem(s3d_files, sd, tmp_path):
    sd = dict(sd)
    sd["extra.weight"] = torch.zeros(1)
    del sd["fc.bias"]
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(S3DError, match=r"missing \['fc.bias'\].*unexpected \['extra.weight'\]"):
        S3D.from_milnce_checkpoint(bad, dict_path=s3d_files[1])
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(S3DError, match="junk.pth"):
        S3D.from_milnce_checkpoint(tmp_path / "junk.pth", dict_path=s3d_files[1])
    np.save(tmp_path / "d.npy", np.zeros((3, 3)))
    with pytest.raises(S3DError, match="vocabulary"):
        S3D.from_milnce_checkpoint(s3d_files[0], dict_path=tmp_path / "d.npy")


def test_object_array_vocabulary_loads(s3d_files, tmp_path):
    np.save(tmp_path / "obj.npy", np.array(WORDS, dtype=object), allow_pickle=True)
    model = S3D.from_milnce_checkpoint(s3d_files[0], dict_path=tmp_path / "obj.npy")
    assert model.text_module.vocabulary["tomato"] == 3


def test_odd_sizes_are_refused(model):
    with pytest.raises(ValueError, match="even"):
        model(torch.rand(1, 3, 7, 32, 32))
