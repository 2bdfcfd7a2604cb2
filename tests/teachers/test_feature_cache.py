import os
import random
import warnings

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

pytest.importorskip("open_clip", reason="open_clip (with a torchvision matching torch) is needed "
                    "for the CLIP teachers")

from recon.data import SyntheticShapes  # noqa: E402
from recon.data.images import ImageTransform  # noqa: E402
from recon.teachers import (CachedTeacherDataset, OnlineTeacherFeatures,  # noqa: E402
                            TeacherFeatureCache, all_prompts, build_image_teacher,
                            build_text_teacher)


SET = dict(num_classes=3, num_per_class=4, num_points=128, image_size=32, workers=1)  # 9 train


class Counting:
    """Wraps a teacher, counting encoded inputs; can fail after a number of calls."""

    def __init__(self, teacher, fail_after=None):
        self.t, self.calls, self.items, self.fail_after = teacher, 0, 0, fail_after
        self.arch, self.weights_id, self.dim = teacher.arch, teacher.weights_id, teacher.dim

    def encode(self, x):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        self.items += len(x)
        return self.t.encode(x)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("syn"))
    ds = SyntheticShapes(root, "train", npoints=64, **SET)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ds, build_text_teacher("tiny", "random"), build_image_teacher("tiny", "random")


def _cache(tmp_path, env, text=None, image=None, **kw):
    ds, t, i = env
    kw.setdefault("views", 2)
    kw.setdefault("progress", False)
    return TeacherFeatureCache(str(tmp_path / "cache"), ds, text or Counting(t),
                               image or Counting(i), **kw)


def test_build_values_and_hit(tmp_path, env):
    ds, t, i = env
    c = _cache(tmp_path, env, batch_size=6, chunk=4)
    assert not c.is_complete()
    c.build()
    assert c.is_complete()
    assert c.text_teacher.items == 3 * 60 and c.image_teacher.items == len(ds) * 2
    # text: the 60 prompts of the category, in the official zero-shot order
    got = c.text_features("cube")
    assert got.shape == (60, 512)
    np.testing.assert_allclose(got, t.encode(all_prompts("cube")).numpy(), atol=1e-4)
    # image: view v of sample k is the train pipeline replayed from (seed, k, v)
    from recon.teachers.cache import _view_seed

    img = ImageTransform(train=True)(ds.load_image(3), random.Random(_view_seed(0, 3, 1)))
    np.testing.assert_allclose(c.image_features(3)[1], i.encode(img[None])[0].numpy(), atol=1e-4)
    # a second cache object with the same key computes nothing
    again = _cache(tmp_path, env)
    again.build()
    assert again.text_teacher.calls == 0 and again.image_teacher.calls == 0
    np.testing.assert_array_equal(again.image_features(5), c.image_features(5))


def test_key_change_invalidates(tmp_path, env):
    _cache(tmp_path, env).build()
    more_views = _cache(tmp_path, env, views=3)  # text entry is shared: not recomputed
    more_views.build()
    assert more_views.image_teacher.items == len(env[0]) * 3 and more_views.text_teacher.calls == 0
    _, t, i = env
    other_w = Counting(i)
    other_w.weights_id = "another-file-digest"
    c = _cache(tmp_path, env, image=other_w)
    c.build()
    assert other_w.items == len(env[0]) * 2
    other_t = Counting(t)
    other_t.weights_id = "x"
    c = _cache(tmp_path, env, text=other_t)
    c.build()
    assert other_t.items == 3 * 60
    # the other split is another key too
    test_split = SyntheticShapes(env[0].root, "test", 64, **SET)
    c = TeacherFeatureCache(str(tmp_path / "cache"), test_split, None, Counting(i), views=2,
                            progress=False)
    c.build()
    assert c.image_teacher.items == len(test_split) * 2


def test_interrupted_build_resumes(tmp_path, env):
    n = len(env[0])
    broken = Counting(env[2], fail_after=2)
    c = _cache(tmp_path, env, image=broken, batch_size=4, chunk=2)  # 2 shapes per batch, flush each
    with pytest.raises(KeyboardInterrupt):
        c.build()
    assert not c.is_complete()
    resumed = Counting(env[2])
    c2 = _cache(tmp_path, env, image=resumed, batch_size=4, chunk=2)
    c2.build()
    assert c2.is_complete()
    assert resumed.items == (n - 4) * 2  # the 4 flushed shapes are not recomputed
    full = _cache(tmp_path / "fresh", env, batch_size=4)
    full.build()
    np.testing.assert_allclose(c2.image_store.feats, full.image_store.feats, atol=1e-5)


def test_cached_dataset_items_and_loader(tmp_path, env):
    ds = env[0]
    c = _cache(tmp_path, env)
    wrapped = CachedTeacherDataset(ds, c)
    assert len(wrapped) == len(ds) and wrapped.classes == ds.classes
    item = wrapped[7]
    assert "image" not in item and item["points"].shape == (64, 3)
    assert item["img_feat"].shape == (768,) and item["text_feat"].shape == (512,)
    assert any(np.allclose(item["img_feat"].numpy(), v) for v in c.image_features(7))
    assert any(np.allclose(item["text_feat"].numpy(), v) for v in c.text_features(item["text"]))
    seen = {tuple(wrapped[7]["text_feat"][:3].tolist()) for _ in range(40)}
    assert len(seen) > 5  # a prompt is drawn per access
    batch = next(iter(DataLoader(wrapped, batch_size=8, num_workers=2, shuffle=True)))
    assert batch["points"].shape == (8, 64, 3) and batch["img_feat"].shape == (8, 768)
    assert batch["text_feat"].shape == (8, 512) and batch["label"].shape == (8,)
    with pytest.raises(ValueError, match="different dataset"):
        CachedTeacherDataset(SyntheticShapes(ds.root, "test", 64, **SET), c)


def test_online_mode(env):
    ds, t, i = env
    online = CachedTeacherDataset(ds, online=True)
    item = online[0]
    assert item["prompt"] in all_prompts(item["text"]) and item["image"].shape == (3, 224, 224)
    batch = next(iter(DataLoader(online, batch_size=3)))
    batch = OnlineTeacherFeatures(t, i)(batch)
    assert batch["img_feat"].shape == (3, 768) and batch["text_feat"].shape == (3, 512)
    with pytest.raises(ValueError, match="needs a text_teacher"):
        TeacherFeatureCache("/tmp/x", ds)


def test_standardize_uses_the_cache_moments(tmp_path, env):
    c = _cache(tmp_path, env).build()
    for store in (c.image_store, c.text_store):
        flat = np.asarray(store.feats, np.float64).reshape(-1, store.shape[-1])
        mean, std = store.moments(chunk_rows=2)  # several chunks: the accumulation must be exact
        np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(std, flat.std(0), rtol=1e-4, atol=1e-6)
        assert os.path.exists(os.path.join(store.folder, "moments.npy"))
    ds = env[0]
    raw, std_ds = CachedTeacherDataset(ds, c), CachedTeacherDataset(ds, c, standardize=True)
    random.seed(3)
    a = raw[1]
    random.seed(3)
    b = std_ds[1]  # same drawn view and prompt
    for key, store in (("img_feat", c.image_store), ("text_feat", c.text_store)):
        mean, sd = store.moments()
        expect = (a[key] - torch.from_numpy(mean)) / torch.from_numpy(np.where(sd > 0, sd, 1).astype(np.float32))
        torch.testing.assert_close(b[key], expect)
        assert b[key].dtype == torch.float32 and torch.isfinite(b[key]).all()
    # over every stored text feature the standardized values have mean 0 and std 1 per dimension
    z = (np.asarray(c.text_store.feats, np.float64).reshape(-1, c.text_store.shape[-1]) - c.text_store.moments()[0]) \
        / c.text_store.moments()[1]
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-4)
    with pytest.raises(ValueError, match="standardize"):
        CachedTeacherDataset(ds, None, online=True, standardize=True)
