import os

import numpy as np
import pytest
import torch

from recon.data import ShapeNet55, SyntheticShapes
from recon.data.synthetic import CLASSES, generate, sample_shape

SMALL = dict(num_per_class=3, num_points=256, image_size=64, workers=1)


def _files(root):
    out = {}
    for d in ("shapenet_pc", "shapenet_img"):
        for n in sorted(os.listdir(os.path.join(root, d))):
            with open(os.path.join(root, d, n), "rb") as f:
                out[f"{d}/{n}"] = f.read()
    return out


def test_layout_and_loader(tmp_path):
    root = str(tmp_path / "syn")
    ds = SyntheticShapes(root, "train", npoints=128, **SMALL)
    assert len(CLASSES) >= 12 and len(ds.classes) == 12 and ds.classes[0] == "sphere"
    assert len(ds) == 12 * 2 and len(SyntheticShapes(root, "test", 128, **SMALL)) == 12
    item = ds[5]
    assert item["points"].shape == (128, 3) and item["image"].shape == (3, 224, 224)
    assert item["label"] == 2 and item["text"] == ds.classes[2]
    labels = [ds[i]["label"] for i in range(len(ds))]
    assert sorted(set(labels)) == list(range(12))
    # the same folder through the plain ShapeNet-55 loader
    plain = ShapeNet55(root, "train", 128)
    assert plain.classes == ds.classes and plain.sample_ids == ds.sample_ids
    pc = np.load(os.path.join(root, "shapenet_pc", ds.sample_ids[0] + ".npy"))
    assert pc.shape == (256, 3) and pc.dtype == np.float32
    assert np.linalg.norm(pc, axis=1).max() < 1.1


def test_deterministic_and_idempotent(tmp_path):
    a, b, c = (str(tmp_path / n) for n in "abc")
    generate(a, seed=1, **SMALL)
    generate(b, seed=1, **SMALL)
    generate(c, seed=2, **SMALL)
    fa = _files(a)
    assert fa == _files(b)
    assert fa != _files(c)
    some = os.path.join(a, "shapenet_pc", sorted(os.listdir(os.path.join(a, "shapenet_pc")))[0])
    mtime = os.path.getmtime(some)
    generate(a, seed=1, **SMALL)  # complete: reused
    assert os.path.getmtime(some) == mtime
    os.remove(some)  # partial: regenerated
    generate(a, seed=1, **SMALL)
    assert _files(a) == fa
    generate(a, seed=2, **SMALL)  # stale parameters: regenerated
    assert _files(a) == _files(c)


def test_two_workers_same_result(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    generate(a, num_per_class=2, num_points=128, image_size=32, workers=1)
    generate(b, num_per_class=2, num_points=128, image_size=32, workers=2)
    assert _files(a) == _files(b)


def test_shapes_and_occlusion():
    for k in range(12):
        pts, nrm = sample_shape(k, np.random.default_rng(k), 500, noise=0.0)
        assert pts.shape == (500, 3) and np.isfinite(pts).all()
        assert np.allclose(np.linalg.norm(nrm, axis=1), 1, atol=1e-4)
    full, _ = sample_shape(0, np.random.default_rng(0), 2000, noise=0.0)
    occ, _ = sample_shape(0, np.random.default_rng(0), 2000, noise=0.0, occlusion=0.4)
    assert occ.shape == (2000, 3)
    # a sphere missing a cap: its centroid-centred points no longer fill every direction evenly
    assert np.abs(occ.mean(0)).max() < 1e-5 and np.ptp(occ @ np.ones(3)) < np.ptp(full @ np.ones(3)) + 1
    with pytest.raises(ValueError, match="occlusion"):
        generate("/nonexistent", occlusion=0.95)
    with pytest.raises(ValueError, match="num_classes"):
        generate("/nonexistent", num_classes=40)
    assert torch.is_tensor(torch.from_numpy(occ))
