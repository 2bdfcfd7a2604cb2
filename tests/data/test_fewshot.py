import os

import numpy as np
import pytest

from data_writers import write_fewshot
from recon.data import ModelNetFewShot


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
