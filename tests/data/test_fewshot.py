import os
import pickle

import numpy as np
import pytest

from data_writers import write_fewshot
from recon.data import ModelNetFewShot
from recon.errors import DataFormatError


@pytest.mark.parametrize("fmt", ["{way}way_{shot}shot", "{way}way{shot}shot"])
def test_both_folder_spellings(tmp_path, fmt):
    data = write_fewshot(str(tmp_path), way=5, shot=10, fold=3, folder_fmt=fmt)
    ds = ModelNetFewShot(str(tmp_path), way=5, shot=10, fold=3, split="test")
    assert len(ds) == 5 and ds.classes == ["airplane", "bathtub", "bed", "bench", "bookshelf"]
    item = ds[2]
    assert item["points"].shape == (64, 3) and item["label"] == 2
    p = data["test"][2][0][:, :3]
    p = (p - p.mean(0)) / np.linalg.norm(p - p.mean(0), axis=1).max()
    np.testing.assert_allclose(item["points"].numpy(), p, atol=1e-5)  # test: not shuffled
    tr = ModelNetFewShot(str(tmp_path), 5, 10, 3, "train", npoints=32, use_normals=True)
    assert len(tr) == 10 and tr[0]["points"].shape == (32, 6)


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"10way_20shot.*0\.pkl") as e:
        ModelNetFewShot(str(tmp_path), way=10, shot=20)
    assert "Point-BERT" in str(e.value)
    os.makedirs(tmp_path / "5way_10shot")
    (tmp_path / "5way_10shot" / "0.pkl").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"malformed file .*0\.pkl"):
        ModelNetFewShot(str(tmp_path))


class _RunsCode:
    """Unpickling this would call ``fn(*args)``: a stand-in for any code a crafted file could run."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("where", ["top", "row", "label"])
def test_crafted_pkl_runs_no_code(tmp_path, where):
    marker = tmp_path / "pwned"
    data = write_fewshot(str(tmp_path))
    evil = _RunsCode(os.system, f"touch {marker}")
    if where == "top":
        data = evil
    elif where == "row":
        data["train"][0] = (data["train"][0][0], 0, evil)
    else:
        data["test"][-1] = (data["test"][-1][0], _RunsCode(open, str(marker), "w"), "x_0001")
    with open(tmp_path / "5way_10shot" / "0.pkl", "wb") as f:
        pickle.dump(data, f)
    with pytest.raises(DataFormatError, match=r"refusing to read .*5way_10shot.*0\.pkl"):
        ModelNetFewShot(str(tmp_path))
    assert not marker.exists()


def test_real_format_pkl_with_numpy_labels_and_protocol_2(tmp_path):
    data = write_fewshot(str(tmp_path))
    data = {s: [(p.astype(np.float64), np.int64(c), np.str_(n)) for p, c, n in rows] for s, rows in data.items()}
    with open(tmp_path / "5way_10shot" / "0.pkl", "wb") as f:
        pickle.dump(data, f, protocol=2)
    ds = ModelNetFewShot(str(tmp_path), split="train")
    assert len(ds) == 10 and ds.classes[1] == "bathtub" and ds[0]["points"].dtype.is_floating_point
