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


# --- the official image pipeline against torchvision's own transforms, same drawn parameters ------

def _image(w=300, h=280, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    smooth = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], -1)
    arr = np.clip(smooth + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def _tv_tensor(F, img):
    from recon.data.images import IMAGENET_MEAN, IMAGENET_STD

    return F.normalize(F.to_tensor(img), IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("seed", range(6))
def test_train_pipeline_matches_torchvision(seed):
    import random

    F = pytest.importorskip("torchvision.transforms.functional")
    from torchvision.transforms import InterpolationMode

    from recon.data.images import ImageTransform, crop_params

    img = _image(seed=seed)
    ours = ImageTransform(train=True, randaugment=False)(img, random.Random(seed))
    rng = random.Random(seed)  # replay the draws: flip, then the crop box
    flip = rng.random() < 0.5
    x, y, cw, ch = crop_params(256, 256, (0.64, 1.0), (3 / 4, 4 / 3), rng)
    ref = F.resize(img, [256, 256], InterpolationMode.BICUBIC)
    ref = F.hflip(ref) if flip else ref
    ref = F.resized_crop(ref, y, x, ch, cw, [224, 224], InterpolationMode.BICUBIC)
    torch.testing.assert_close(ours, _tv_tensor(F, ref), rtol=0, atol=1e-5)


def test_eval_pipeline_matches_torchvision():
    F = pytest.importorskip("torchvision.transforms.functional")
    from torchvision.transforms import InterpolationMode

    from recon.data.images import ImageTransform

    img = _image(seed=7)
    ref = F.center_crop(F.resize(img, [256, 256], InterpolationMode.BICUBIC), [224, 224])
    torch.testing.assert_close(ImageTransform(train=False)(img), _tv_tensor(F, ref), rtol=0, atol=1e-5)


def test_crop_params_follow_torchvisions_rule():
    import random

    from recon.data.images import crop_params

    rng = random.Random(0)
    for _ in range(200):
        x, y, cw, ch = crop_params(256, 256, (0.64, 1.0), (3 / 4, 4 / 3), rng)
        assert 0 <= x <= 256 - cw and 0 <= y <= 256 - ch
        assert 0.64 * 256 * 256 * 0.9 <= cw * ch <= 256 * 256 and 3 / 4 - 0.02 <= cw / ch <= 4 / 3 + 0.02
    # a ratio no crop can meet falls back to torchvision's centre crop at the clamped ratio
    assert crop_params(100, 10, (0.99, 1.0), (1.0, 1.0), random.Random(0)) == (45, 0, 10, 10)


class _Coin:
    """An rng whose ``random()`` is fixed: < 0.5 negates a RandAugment magnitude."""

    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


@pytest.mark.parametrize("axis", ["x", "y"])
@pytest.mark.parametrize("v,coin", [(1, 0.9), (5, 0.1), (9, 0.9), (7, 0.2)])
def test_randaugment_translate_is_an_integer_pixel_shift(axis, v, coin):
    F = pytest.importorskip("torchvision.transforms.functional")
    from torchvision.transforms import InterpolationMode

    from recon.data.images import _translate

    img = _image(224, 224, seed=v)
    out = _translate(axis)(img, v, 0.3, 0, _Coin(coin))
    shift = int((-1 if coin < 0.5 else 1) * v * 0.3 / 10 * 224)  # FixMatch: int(v * size)
    # PIL's AFFINE (1, 0, t, ...) samples the input at x + t: torchvision's translate by -t
    move = [-shift, 0] if axis == "x" else [0, -shift]
    ref = F.affine(img, angle=0.0, translate=move, scale=1.0, shear=[0.0, 0.0], interpolation=InterpolationMode.NEAREST)
    assert np.array_equal(np.asarray(out), np.asarray(ref))
    a, s = np.asarray(img), abs(shift)
    kept = (a[:, s:] if shift > 0 else a[:, :224 - s]) if axis == "x" else (a[s:] if shift > 0 else a[:224 - s])
    got = np.asarray(out)
    got = (got[:, :224 - s] if shift > 0 else got[:, s:]) if axis == "x" else (got[:224 - s] if shift > 0 else got[s:])
    assert np.array_equal(got, kept)  # whole pixels moved, none interpolated
