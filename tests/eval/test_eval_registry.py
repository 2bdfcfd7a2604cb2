"""One vocabulary for datasets: canonical names, class names and config sections name the same things."""

import pytest

from recon.data import ModelNet40, ScanObjectNN, SyntheticShapes
from recon.data import registry
from recon.errors import ConfigError, DataFormatError, MissingFileError, ReconError


def test_canonical_names_and_classes():
    assert registry.DATASET_NAMES == ("synthetic", "modelnet10", "modelnet40", "scan_hardest", "scan_objbg",
                                      "scan_objonly")
    assert registry.dataset_class("scan_objbg") is ScanObjectNN and registry.dataset_class("ScanObjectNN") is ScanObjectNN
    assert registry.dataset_class("modelnet10") is ModelNet40 and registry.dataset_class("synthetic") is SyntheticShapes
    assert registry.check_name("ModelNet40") == "modelnet40"  # the commands accept any case
    with pytest.raises(ConfigError, match="dataset: expected one of synthetic, modelnet10"):
        registry.check_name("shapenet")
    with pytest.raises(ConfigError, match="not a dataset of recon.data"):
        registry.dataset_class("CorruptSampleError")


@pytest.mark.parametrize("name, args, canonical", [
    ("ScanObjectNN", {"variant": "objonly"}, "scan_objonly"),
    ("ScanObjectNN", {}, "scan_hardest"),
    ("ModelNet40", {"num_category": 10, "npoints": 8192}, "modelnet10"),
    ("ModelNet40", {"npoints": 8192}, "modelnet40"),
    ("SyntheticShapes", {"num_per_class": 4}, "synthetic"),
    ("scan_objbg", {}, "scan_objbg"),
    ("ModelNetFewShot", {"way": 5}, "modelnet_fewshot"),
])
def test_a_config_section_has_one_canonical_name(name, args, canonical):
    assert registry.canonical_name(name, args) == canonical


def test_official_names_key_the_official_tables():
    from recon.models import ZEROSHOT_RATIOS

    for name in registry.DATASET_NAMES:
        assert registry.spec(name).official in ZEROSHOT_RATIOS, name
    assert registry.spec("synthetic").official == "modelnet40"


def test_build_by_canonical_or_class_name(tmp_path):
    a = registry.build_dataset("synthetic", tmp_path, "test", npoints=256, num_per_class=2, num_classes=2)
    b = registry.build_dataset("SyntheticShapes", tmp_path, "test", npoints=256, num_per_class=2, num_classes=2)
    assert len(a) == len(b) == 2 and a.classes == b.classes and a.npoints == b.npoints == 256
    assert registry.build_dataset("synthetic", tmp_path, "test", num_per_class=2, num_classes=2).npoints == 1024
    with pytest.raises(ConfigError, match="split"):
        registry.build_dataset("synthetic", tmp_path, "val")
    assert registry.load_npoints("modelnet40", 1024) == 1024 and registry.load_npoints("scan_objbg", 1024) is None
    assert registry.load_npoints("synthetic", 256) == 2048


def test_readers_raise_recon_errors_that_are_also_the_builtins(tmp_path):
    with pytest.raises(MissingFileError) as err:
        registry.build_dataset("scan_objbg", tmp_path, "test")
    assert isinstance(err.value, FileNotFoundError) and "Expected layout" in str(err.value)
    (tmp_path / "main_split").mkdir()
    (tmp_path / "main_split" / "test_objectdataset.h5").write_bytes(b"not hdf5")
    with pytest.raises(DataFormatError) as err:
        registry.build_dataset("scan_objbg", tmp_path, "test")
    assert isinstance(err.value, ValueError) and isinstance(err.value, ReconError)
    with pytest.raises(ConfigError, match="variant"):
        ScanObjectNN(str(tmp_path), variant="hard")
