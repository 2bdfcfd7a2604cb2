import os

import numpy as np
import pytest
import torch
from PIL import Image

from data_writers import SYNSETS, write_shapenet
from recon.data import CorruptSampleError, ShapeNet55
from recon.data.images import IMAGENET_MEAN, IMAGENET_STD, ImageTransform, read_image


@pytest.fixture
def root(tmp_path):
    write_shapenet(str(tmp_path))
    return str(tmp_path)


def test_items(root):
    ds = ShapeNet55(root, "train", npoints=64)
    assert len(ds) == 3 and len(ShapeNet55(root, "test", 64)) == 3
    assert len(ShapeNet55(root, "train", 64, whole=True)) == 6
    assert ds.classes == [SYNSETS[s] for s in sorted(SYNSETS)]
    item = ds[1]
    assert item["points"].shape == (64, 3) and item["points"].dtype == torch.float32
    assert item["label"] == 1 and item["text"] == "chair" and item["index"] == 1
    assert item["image"].shape == (3, 224, 224) and item["image"].dtype == torch.float32
    p = item["points"]
    assert torch.allclose(p.mean(0), torch.zeros(3), atol=1e-5)
    assert abs(float(p.norm(dim=1).max()) - 1) < 1e-5
    # the subset is drawn from the stored cloud (up to normalisation)
    raw = np.load(os.path.join(root, "shapenet_pc", ds.sample_ids[1] + ".npy"))
    torch.manual_seed(0)
    a = ds[1]["points"]
    torch.manual_seed(0)
    pick = torch.randperm(raw.shape[0])[:64].numpy()
    sub = raw[pick]
    sub = (sub - sub.mean(0)) / np.linalg.norm(sub - sub.mean(0), axis=1).max()
    np.testing.assert_allclose(a.numpy(), sub, atol=1e-5)


def test_image_is_bgr_by_default(root):
    # the stored views are pure red; cv2 (and we, by default) see them as BGR (0, 0, 255)
    ev = ShapeNet55(root, "train", 32, image_transform="eval")
    img = ev[0]["image"]
    expect_bgr = [(0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], (0 - IMAGENET_MEAN[1]) / IMAGENET_STD[1],
                  (1 - IMAGENET_MEAN[2]) / IMAGENET_STD[2]]
    assert torch.allclose(img.mean((1, 2)), torch.tensor(expect_bgr), atol=1e-3)
    rgb = ShapeNet55(root, "train", 32, image_transform="eval", bgr=False)[0]["image"]
    assert rgb[0].mean() > 2 and rgb[2].mean() < -1
    assert "image" not in ShapeNet55(root, "train", 32, image_transform=None)[0]
    assert "image" not in ev.without_images()[0] and "image" in ev[0]


def test_train_transform_random_but_replayable(tmp_path):
    import random

    path = str(tmp_path / "x.png")
    arr = (np.random.default_rng(0).random((60, 80, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(path)
    im = read_image(path)
    assert np.array_equal(np.asarray(im), arr[:, :, ::-1])
    t = ImageTransform(train=True)
    a, b = t(im, random.Random(1)), t(im, random.Random(1))
    assert a.shape == (3, 224, 224) and torch.equal(a, b)
    assert not torch.equal(a, t(im, random.Random(2)))
    e = ImageTransform(train=False)
    assert torch.equal(e(im), e(im))


def test_errors(root, tmp_path):
    with pytest.raises(FileNotFoundError, match="shapenet55.json") as e:
        os.rename(os.path.join(root, "shapenet55.json"), os.path.join(root, "x.json"))
        ShapeNet55(root)
    assert "Expected layout" in str(e.value) and "Point-BERT" in str(e.value)
    os.rename(os.path.join(root, "x.json"), os.path.join(root, "shapenet55.json"))
    with open(os.path.join(root, "shapenet55.json"), "w") as f:
        f.write('[{"catalog": 1}]')
    with pytest.raises(ValueError, match="malformed file .*shapenet55.json"):
        ShapeNet55(root)
    with pytest.raises(ValueError, match="split"):
        ShapeNet55(root, split="val")


def test_corrupt_sample_names_index(root):
    ds = ShapeNet55(root, "train", 64)
    with open(os.path.join(root, "shapenet_pc", ds.sample_ids[2] + ".npy"), "wb") as f:
        f.write(b"not a numpy file")
    with pytest.raises(CorruptSampleError, match=r"sample 2 .*npy"):
        ds[2]
    os.remove(ds.image_path(0))
    with pytest.raises(FileNotFoundError, match=r"\.png"):
        ds[0]
    with pytest.raises(IndexError):
        ds[3]
    small = ShapeNet55(root, "test", npoints=500)  # fewer stored points than asked
    with pytest.raises(CorruptSampleError, match="sample 0"):
        small[0]


def test_packed_store_matches_files(root, tmp_path):
    plain = ShapeNet55(root, "train", 64, image_transform=None)
    packed = ShapeNet55(root, "train", 64, image_transform=None, pack_dir=str(tmp_path / "pack"))
    assert os.path.exists(packed.pack_path)
    for i in range(len(plain)):
        torch.manual_seed(i)
        a = plain[i]["points"]
        torch.manual_seed(i)
        assert torch.equal(a, packed[i]["points"])
    again = ShapeNet55(root, "train", 64, pack_dir=str(tmp_path / "pack"))
    assert again.pack_path == packed.pack_path  # reused
    loader = torch.utils.data.DataLoader(packed, batch_size=3, num_workers=2)
    assert next(iter(loader))["points"].shape == (3, 64, 3)
