import os
import pickle

import numpy as np
import pytest
import torch

from data_writers import write_dat, write_modelnet
from recon.data import ModelNet40
from recon.data.modelnet import build_fps_cache, load_dat
from recon.errors import DataFormatError
from recon.ops import furthest_point_sample


def test_builds_fps_cache_from_txt(tmp_path):
    root = str(tmp_path)
    write_modelnet(root)
    ds = ModelNet40(root, "test", npoints=32)
    assert os.path.basename(ds.dat_path) == "modelnet40_test_32pts_fps.dat"
    assert len(ds) == 6 and ds.classes == ["airplane", "bathtub", "bed"]
    item = ds[3]
    assert item["points"].shape == (32, 3) and item["points"].dtype == torch.float32
    assert item["label"] == 1 and item["index"] == 3
    pcs, labels = load_dat(ds.dat_path)
    assert [int(x) for x in labels] == [0, 0, 1, 1, 2, 2]
    # the .dat holds the FPS rows (all 6 columns) in FPS order, like the official pickles
    with open(ds.dat_path, "rb") as f:
        raw_pcs, raw_labels = pickle.load(f)
    assert raw_pcs[0].dtype == np.float32 and raw_pcs[0].shape == (32, 6)
    assert raw_labels[0].dtype == np.int32 and raw_labels[0].shape == (1,)
    txt = np.loadtxt(os.path.join(root, "bathtub", "bathtub_0003.txt"), delimiter=",", dtype=np.float32)
    idx = furthest_point_sample(torch.from_numpy(txt[None, :, :3]), 32)[0].numpy()
    np.testing.assert_array_equal(raw_pcs[2], txt[idx])
    # test split keeps FPS order, pc-normalised
    p = pcs[3][:, :3]
    p = (p - p.mean(0)) / np.linalg.norm(p - p.mean(0), axis=1).max()
    np.testing.assert_allclose(item["points"].numpy(), p, atol=1e-5)
    # second construction reuses the cache
    mtime = os.path.getmtime(ds.dat_path)
    ModelNet40(root, "test", npoints=32)
    assert os.path.getmtime(ds.dat_path) == mtime
    n = ModelNet40(root, "train", npoints=32, use_normals=True)[0]["points"]
    assert n.shape == (32, 6)


def test_8k_file_prefix_and_shuffle(tmp_path):
    root = str(tmp_path)
    write_modelnet(root, rows=20)
    pcs, _ = write_dat(os.path.join(root, "modelnet40_train_8192pts_fps.dat"))
    ds = ModelNet40(root, "train", npoints=1024)
    assert ds.dat_path.endswith("8192pts_fps.dat") and len(ds) == 3
    x = ds[0]["points"].numpy()
    full = pcs[0][:, :3]
    full = (full - full.mean(0)) / np.linalg.norm(full - full.mean(0), axis=1).max()
    # train split: the 1024-point FPS prefix, shuffled
    assert x.shape == (1024, 3)
    np.testing.assert_allclose(np.sort(x, axis=0), np.sort(full[:1024], axis=0), atol=1e-6)
    assert not np.allclose(x, full[:1024])
    assert ModelNet40(root, "train", npoints=8192)[1]["points"].shape == (8192, 3)


def test_modelnet10(tmp_path):
    root = str(tmp_path)
    write_modelnet(root, classes=("bathtub", "bed"), num_category=10)
    ds = ModelNet40(root, "train", npoints=16, num_category=10)
    assert ds.classes == ["bathtub", "bed"] and len(ds) == 4
    assert os.path.exists(os.path.join(root, "modelnet10_train_16pts_fps.dat"))


def test_errors(tmp_path):
    root = str(tmp_path)
    with pytest.raises(FileNotFoundError, match="modelnet40_shape_names.txt") as e:
        ModelNet40(root)
    assert "modelnet40_normal_resampled" in str(e.value)
    write_modelnet(root, rows=20)
    with pytest.raises(ValueError, match="fewer than npoints"):
        ModelNet40(root, "train", npoints=1024)
    with open(os.path.join(root, "modelnet40_test_8192pts_fps.dat"), "wb") as f:
        f.write(b"garbage")
    with pytest.raises(ValueError, match=r"malformed file .*8192pts_fps.dat"):
        ModelNet40(root, "test", npoints=1024)
    os.remove(os.path.join(root, "modelnet40_test_8192pts_fps.dat"))
    with open(os.path.join(root, "bed", "bed_0001.txt"), "w") as f:
        f.write("1,2,3\n")
    with pytest.raises(ValueError, match=r"sample 4 .*bed_0001.txt"):
        build_fps_cache(root, "train", 8)
    with pytest.raises(ValueError, match="num_category"):
        ModelNet40(root, num_category=20)
    with pytest.raises(FileNotFoundError, match="_8pts_fps.dat"):
        ModelNet40(root, "test", npoints=8, build_cache=False)


class _RunsCode:
    """Unpickling this would call ``fn(*args)``: a stand-in for any code a crafted file could run."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("payload", ["open", "os.system", "nested"])
def test_crafted_dat_runs_no_code(tmp_path, payload):
    root = str(tmp_path)
    write_modelnet(root, rows=20)
    marker = tmp_path / "pwned"
    path = os.path.join(root, "modelnet40_test_8192pts_fps.dat")
    good = [np.zeros((8192, 6), np.float32)], [np.array([0], np.int32)]
    evil = {"open": _RunsCode(open, str(marker), "w"), "os.system": _RunsCode(os.system, f"touch {marker}"),
            "nested": [[good[0][0], _RunsCode(os.system, f"touch {marker}")], good[1]]}[payload]
    with open(path, "wb") as f:
        pickle.dump(evil, f)
    with pytest.raises(DataFormatError, match=r"refusing to read .*8192pts_fps\.dat.*(io\.open|system)"):
        ModelNet40(root, "test", npoints=1024)
    with pytest.raises(DataFormatError, match=r"8192pts_fps\.dat"):
        load_dat(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_real_format_dat_loads_under_every_protocol(tmp_path, protocol):
    rng = np.random.default_rng(protocol)
    pcs = [rng.normal(size=(50, 6)).astype(np.float32), np.asfortranarray(rng.normal(size=(40, 6)))]
    labels = [np.array([1], np.int32), np.int64(2)]  # a numpy scalar label is read too
    path = tmp_path / "x.dat"
    with open(path, "wb") as f:
        pickle.dump([pcs, labels], f, protocol=protocol)
    got, lab = load_dat(str(path))
    np.testing.assert_array_equal(got[1], pcs[1].astype(np.float32))
    assert lab.tolist() == [1, 2]


def test_truncated_dat_is_a_data_format_error(tmp_path):
    path = tmp_path / "t.dat"
    write_dat(str(path), n=2, points=16)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataFormatError, match=r"malformed file .*t\.dat"):
        load_dat(str(path))
