"""ShapeNetPart loader on files the test writes, and the synthetic part set."""

import json
import os

import numpy as np
import pytest
import torch

from partseg_writers import CATEGORIES, write_shapenetpart
from recon.data import ShapeNetPart, SyntheticParts
from recon.data.shapenetpart import PART_IDS
from recon.errors import DataFormatError, MissingFileError


@pytest.fixture
def root(tmp_path):
    return write_shapenetpart(tmp_path / "spn")


def test_splits_order_and_items(root):
    train = ShapeNetPart(root, "train", npoints=100)
    val, test = ShapeNetPart(root, "val", npoints=100), ShapeNetPart(root, "test", npoints=100)
    trainval = ShapeNetPart(root, "trainval", npoints=100)
    assert (len(train), len(val), len(test), len(trainval)) == (9, 6, 6, 15)
    assert train.classes == list(CATEGORIES)  # category id = line order of synsetoffset2category.txt
    # official order: categories in file order, then sorted tokens (the JSON lists were written reversed)
    cats = [c for c, _ in train.items]
    assert cats == sorted(cats)
    assert [os.path.basename(p) for c, p in train.items if c == 0] == [f"train_airplane_{i:03d}.txt" for i in range(3)]
    item = train[4]
    assert item["points"].shape == (100, 3) and item["points"].dtype == torch.float32
    assert item["seg"].shape == (100,) and item["seg"].dtype == torch.int64
    assert item["label"] == 1 and set(item["seg"].tolist()) <= set(PART_IDS["Mug"])


def test_full_cloud_normalised_before_sampling(root):
    ds = ShapeNetPart(root, "test", sampling="full")
    c, path = ds.items[0]
    raw = np.loadtxt(path, dtype=np.float32)
    item = ds[0]
    assert item["points"].shape == (len(raw), 3)
    xyz = raw[:, :3] - raw[:, :3].mean(0)
    xyz /= np.linalg.norm(xyz, axis=1).max()
    np.testing.assert_allclose(item["points"].numpy(), xyz, atol=1e-5)
    np.testing.assert_array_equal(item["seg"].numpy(), raw[:, 6].astype(np.int64))
    # the sampled items are rows of the normalised full cloud, with their labels
    sampled = ShapeNetPart(root, "test", npoints=500, sampling="fixed")[0]
    assert sampled["points"].shape == (500, 3)  # more than the file holds: with replacement
    rows = {tuple(np.round(p, 4)) + (s,) for p, s in zip(xyz, raw[:, 6])}
    assert all(tuple(np.round(p, 4)) + (float(s),) in rows
               for p, s in zip(sampled["points"].numpy(), sampled["seg"].numpy()))


def test_sampling_modes(root):
    fixed = ShapeNetPart(root, "test", npoints=64)
    assert fixed.sampling == "fixed"
    assert torch.equal(fixed[1]["points"], fixed[1]["points"])
    assert not torch.equal(ShapeNetPart(root, "test", npoints=64, seed=1)[1]["points"], fixed[1]["points"])
    rnd = ShapeNetPart(root, "train", npoints=64)
    assert rnd.sampling == "random"
    np.random.seed(0)
    a = rnd[0]["points"]
    assert not torch.equal(a, rnd[0]["points"])
    normals = ShapeNetPart(root, "test", npoints=64, normals=True)[0]["points"]
    assert normals.shape == (64, 6)
    with pytest.raises(ValueError, match="sampling"):
        ShapeNetPart(root, "test", sampling="fps")
    with pytest.raises(ValueError, match="split"):
        ShapeNetPart(root, "testing")


def test_missing_files_name_the_file_and_layout(root, tmp_path):
    with pytest.raises(MissingFileError, match="does_not_exist"):
        ShapeNetPart(tmp_path / "does_not_exist")
    os.remove(os.path.join(root, "train_test_split", "shuffled_val_file_list.json"))
    with pytest.raises(MissingFileError, match="shuffled_val_file_list.json") as e:
        ShapeNetPart(root, "trainval")
    assert "synsetoffset2category.txt" in str(e.value)  # the expected layout is spelled out
    syn = CATEGORIES["Mug"][0]
    os.remove(os.path.join(root, syn, "test_mug_001.txt"))
    with pytest.raises(MissingFileError, match="test_mug_001.txt"):
        ShapeNetPart(root, "test")
    os.remove(os.path.join(root, "synsetoffset2category.txt"))
    with pytest.raises(MissingFileError, match="synsetoffset2category.txt"):
        ShapeNetPart(root, "train")


def test_malformed_files(root):
    syn = CATEGORIES["Airplane"][0]
    bad = os.path.join(root, syn, "train_airplane_000.txt")
    np.savetxt(bad, np.ones((10, 5)))
    with pytest.raises(DataFormatError, match="train_airplane_000.txt"):
        ShapeNetPart(root, "train")[0]
    arr = np.zeros((10, 7))
    arr[:, 6] = 40  # a Pistol part in an airplane
    np.savetxt(bad, arr)
    with pytest.raises(DataFormatError, match="not parts of Airplane"):
        ShapeNetPart(root, "train")[0]
    with open(os.path.join(root, "train_test_split", "shuffled_test_file_list.json"), "w") as f:
        json.dump(["shape_data/99999999/abc"], f)
    with pytest.raises(DataFormatError, match="99999999"):
        ShapeNetPart(root, "test")
    with open(os.path.join(root, "synsetoffset2category.txt"), "a") as f:
        f.write("Spaceship 01234567\n")
    with pytest.raises(DataFormatError, match="Spaceship"):
        ShapeNetPart(root, "train")


def test_synthetic_parts_in_the_real_layout(tmp_path):
    root = tmp_path / "syn"
    ds = SyntheticParts(root, "train", npoints=128, categories=("Mug", "Table"),
                        counts={"train": 3, "val": 1, "test": 2}, num_points=(300, 400))
    assert os.path.isfile(root / "synsetoffset2category.txt")
    assert ds.classes == list(PART_IDS)  # all 16 categories listed: ids match the real data
    assert len(ds) == 6 and {c for c, _ in ds.items} == {11, 15}
    item = ds[0]
    assert item["label"] == 11 and set(item["seg"].tolist()) <= {36, 37}
    assert set(item["seg"].tolist()) == {36, 37}  # mug body and handle both sampled
    # the real loader reads the folder on its own; a second construction reuses it
    assert len(ShapeNetPart(root, "test")) == 4
    mtime = os.path.getmtime(root / "synthetic_parts.json")
    SyntheticParts(root, "val", categories=("Mug", "Table"), counts={"train": 3, "val": 1, "test": 2},
                   num_points=(300, 400))
    assert os.path.getmtime(root / "synthetic_parts.json") == mtime
