import h5py
import numpy as np
import pytest

from data_writers import write_scanobjectnn
from recon.data import ScanObjectNN

VARIANTS = {"hardest": ("main_split", "objectdataset_augmentedrot_scale75"),
            "objbg": ("main_split", "objectdataset"),
            "objonly": ("main_split_nobg", "objectdataset")}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variants(tmp_path, variant):
    folder, stem = VARIANTS[variant]
    data = write_scanobjectnn(str(tmp_path), folder, stem)
    te = ScanObjectNN(str(tmp_path), variant, "test")
    assert len(te) == 6 and len(te.classes) == 15 and te.classes[-1] == "toilet"
    item = te[4]
    assert item["points"].shape == (64, 3) and item["label"] == 4
    np.testing.assert_array_equal(item["points"].numpy(), data["test"][0][4])  # no normalisation
    tr = ScanObjectNN(str(tmp_path), variant, "train")[1]["points"].numpy()
    raw = data["training"][0][1]
    assert not np.array_equal(tr, raw)  # train: shuffled point order ...
    np.testing.assert_array_equal(np.sort(tr, 0), np.sort(raw, 0))  # ... of the same points


def test_root_may_be_the_variant_folder(tmp_path):
    write_scanobjectnn(str(tmp_path), "main_split", "objectdataset")
    assert len(ScanObjectNN(str(tmp_path / "main_split"), "objbg", "test")) == 6


def test_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="main_split_nobg/training_objectdataset.h5") as e:
        ScanObjectNN(str(tmp_path), "objonly")
    assert "scanobjectnn" in str(e.value)
    with pytest.raises(ValueError, match="variant"):
        ScanObjectNN(str(tmp_path), "PB_T50")
    (tmp_path / "main_split").mkdir()
    with h5py.File(tmp_path / "main_split" / "test_objectdataset.h5", "w") as f:
        f["points"] = np.zeros((2, 4, 3))
    with pytest.raises(ValueError, match=r"malformed file .*test_objectdataset.h5"):
        ScanObjectNN(str(tmp_path), "objbg", "test")
    with h5py.File(tmp_path / "main_split" / "test_objectdataset.h5", "w") as f:
        f["data"] = np.zeros((2, 4, 3), np.float32)
        f["label"] = np.array([0, 15])
    with pytest.raises(ValueError, match="sample 1"):
        ScanObjectNN(str(tmp_path), "objbg", "test")
