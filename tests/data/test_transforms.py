import math

import numpy as np
import pytest
import torch

from recon.data import transforms as T
from recon.ops import furthest_point_sample


def _batch(B=4, N=50, C=3, seed=0):
    return torch.randn(B, N, C, generator=torch.Generator().manual_seed(seed))


def test_pc_normalize_tensor_and_numpy():
    x = _batch() * 3 + 2
    y = T.pc_normalize(x)
    assert torch.allclose(y.mean(1), torch.zeros(4, 3), atol=1e-5)
    assert torch.allclose(y.norm(dim=-1).amax(1), torch.ones(4), atol=1e-5)
    z = T.pc_normalize(x[0].numpy())
    assert isinstance(z, np.ndarray) and z.dtype == np.float32
    np.testing.assert_allclose(z, y[0].numpy(), atol=1e-5)
    # normals are carried untouched
    x6 = _batch(C=6)
    assert torch.equal(T.pc_normalize(x6)[..., 3:], x6[..., 3:])


def test_rotate_is_about_y_and_keeps_norms():
    x = _batch(C=6)
    y = T.PointcloudRotate()(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(y[..., 1], x[..., 1])
    assert torch.allclose(y[..., :3].norm(dim=-1), x[..., :3].norm(dim=-1), atol=1e-5)
    assert torch.allclose(y[..., 3:].norm(dim=-1), x[..., 3:].norm(dim=-1), atol=1e-5)
    # one angle per sample: p @ [[c,0,s],[0,1,0],[-s,0,c]]
    p, q = x[0, 0, :3], y[0, 0, :3]
    c = (p[0] * q[0] + p[2] * q[2]) / (p[0] ** 2 + p[2] ** 2)
    s = (q[2] - c * p[2]) / p[0]
    assert torch.allclose(q[0], p[0] * c - p[2] * s, atol=1e-5)
    assert abs(float(c ** 2 + s ** 2) - 1) < 1e-4


def test_scale_and_translate_ranges_and_determinism():
    x = torch.ones(64, 10, 3)
    t = T.PointcloudScaleAndTranslate()
    y1 = t(x, generator=torch.Generator().manual_seed(3))
    y2 = t(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(y1, y2)
    assert y1.min() >= 2 / 3 - 0.2 - 1e-6 and y1.max() <= 1.5 + 0.2 + 1e-6
    assert torch.allclose(y1[:, 0], y1[:, 5])  # same transform for all points of a sample
    assert not torch.allclose(y1[0], y1[1])   # different per sample
    s = T.PointcloudScale()(x, generator=torch.Generator().manual_seed(0))
    assert s.min() >= 2 / 3 - 1e-6 and s.max() <= 1.5 + 1e-6


def test_dropout_replaces_with_first_point():
    x = _batch(B=8, N=200)
    y = T.RandomPointDropout(0.8)(x, generator=torch.Generator().manual_seed(0))
    changed = (y != x).any(-1)
    assert changed.any()
    assert torch.equal(y[changed], x[:, :1].expand_as(x)[changed])


def test_compose_and_errors():
    c = T.Compose([T.PointcloudScale(), T.PointcloudRotate()])
    assert c(_batch(), generator=torch.Generator().manual_seed(0)).shape == (4, 50, 3)
    with pytest.raises(ValueError, match="points must have shape"):
        T.PointcloudRotate()(torch.zeros(5, 3))
    with pytest.raises(TypeError, match="floating"):
        T.PointcloudScale()(torch.zeros(1, 5, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="scale_low"):
        T.PointcloudScale(2, 1)


def test_fps_then_random_subset():
    x = _batch(B=3, N=300)
    y = T.fps_then_random_subset(x, 64, point_all=100, generator=torch.Generator().manual_seed(0))
    assert y.shape == (3, 64, 3)
    fps = furthest_point_sample(x, 100)
    for b in range(3):
        chosen = {tuple(p.tolist()) for p in x[b, fps[b]]}
        assert all(tuple(p.tolist()) in chosen for p in y[b])
    # official: the same positions of the FPS order for every sample of the batch
    y2 = T.fps_then_random_subset(x, 64, point_all=100, generator=torch.Generator().manual_seed(0))
    pos = torch.randperm(100, generator=torch.Generator().manual_seed(0))[:64]
    assert torch.equal(y2, torch.stack([x[b, fps[b, pos]] for b in range(3)]))
    ps = T.fps_then_random_subset(x, 64, 100, torch.Generator().manual_seed(0), per_sample=True)
    assert ps.shape == (3, 64, 3)
    assert T.fps_then_random_subset(x, 300, 8192).shape == (3, 300, 3)  # point_all capped at N
    assert T.default_point_all(1024) == 1200 and T.default_point_all(2048) == 2400
    with pytest.raises(ValueError, match="npoints"):
        T.fps_then_random_subset(x, 200, point_all=100)
    assert math.isfinite(float(y.sum()))
