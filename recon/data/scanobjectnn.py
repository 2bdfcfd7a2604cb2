"""ScanObjectNN main split: OBJ_BG, OBJ_ONLY and PB_T50_RS ("hardest") h5 files."""

from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np
from torch.utils.data import Dataset

from recon.errors import ConfigError

from . import _files

__all__ = ["ScanObjectNN", "SCANOBJECTNN_CLASSES"]

SCANOBJECTNN_CLASSES = ["bag", "bin", "box", "cabinet", "chair", "desk", "display", "door", "shelf",
                        "table", "bed", "pillow", "sink", "sofa", "toilet"]

_FILES = {  # variant -> (folder, file stem)
    "hardest": ("main_split", "objectdataset_augmentedrot_scale75"),
    "objbg": ("main_split", "objectdataset"),
    "objonly": ("main_split_nobg", "objectdataset"),
}
LAYOUT = """  <root>/main_split/training_objectdataset_augmentedrot_scale75.h5, test_...   (hardest, PB_T50_RS)
  <root>/main_split/training_objectdataset.h5, test_objectdataset.h5          (objbg, OBJ_BG)
  <root>/main_split_nobg/training_objectdataset.h5, test_objectdataset.h5     (objonly, OBJ_ONLY)
      each with 'data' float [n, 2048, 3] and 'label' int [n] in 0..14"""
ORIGIN = "h5_files.zip of ScanObjectNN (hkust-vgd.github.io/scanobjectnn, terms of use apply)"
NAME = "ScanObjectNN"


class ScanObjectNN(Dataset):
    """ScanObjectNN: items ``{"points" [2048, 3], "label", "index"}``.

    As in the official loader the points are NOT normalised and the train split shuffles their
    order. ``root`` may also be the variant's folder itself.
    """

    def __init__(self, root: str, variant: str = "hardest", split: str = "train",
                 transform: Optional[Callable] = None):
        if variant not in _FILES:
            raise ConfigError(f"variant must be one of {sorted(_FILES)}, got {variant!r}")
        if split not in ("train", "test"):
            raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
        from recon._optional import require

        h5py = require("h5py", purpose="ScanObjectNN's .h5 files")

        self.variant, self.split, self.transform = variant, split, transform
        folder, stem = _FILES[variant]
        fname = f"{'training' if split == 'train' else 'test'}_{stem}.h5"
        cands = [os.path.join(root, folder, fname), os.path.join(root, fname)]
        path = next((p for p in cands if os.path.exists(p)), None)
        if path is None:
            raise _files.missing(cands[0], NAME, LAYOUT, ORIGIN)
        self.path = path
        try:
            with h5py.File(path, "r") as f:
                self.points = np.asarray(f["data"], dtype=np.float32)
                self.labels = np.asarray(f["label"]).reshape(-1).astype(np.int64)
        except Exception as e:  # noqa: BLE001
            raise _files.malformed(path, NAME, f"{type(e).__name__}: {e}", LAYOUT, ORIGIN) from None
        if self.points.ndim != 3 or self.points.shape[2] < 3 or len(self.points) != len(self.labels):
            raise _files.malformed(path, NAME, f"data {self.points.shape} / label {self.labels.shape}",
                                   LAYOUT, ORIGIN)
        self.points = self.points[..., :3]
        self.classes = list(SCANOBJECTNN_CLASSES)
        _files.check_labels(self.labels, len(self.classes), NAME, path)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict:
        index = _files.wrap_index(index, len(self))
        pc = self.points[index]
        if not np.isfinite(pc).all():
            raise _files.corrupt(NAME, index, self.path, ValueError("non-finite coordinates"))
        return _files.point_item(pc, self.labels[index], index, self.split == "train", self.transform)
