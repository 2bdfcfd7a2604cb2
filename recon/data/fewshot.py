"""ModelNet40 few-shot splits (``<way>way_<shot>shot/<fold>.pkl``) of Point-BERT."""

from __future__ import annotations

import os
from typing import Callable, Optional

import numpy as np
from torch.utils.data import Dataset

from recon.errors import DataFormatError

from . import _files
from ._safe_pickle import load_pickle
from .transforms import pc_normalize

__all__ = ["ModelNetFewShot"]

LAYOUT = """  <root>/<way>way_<shot>shot/<fold>.pkl   (also accepted: <way>way<shot>shot/)
      pickle {"train": [(points [P,>=3] float, label int, name), ...], "test": [...]}
      way in {5, 10}, shot in {10, 20}, fold in 0..9"""
ORIGIN = "ModelNetFewshot.zip from Point-BERT's DATASET.md (github.com/lulutang0608/Point-BERT)"
NAME = "ModelNetFewShot"


def _malformed(path: str, dataset: str, err: BaseException) -> DataFormatError:
    return DataFormatError(str(_files.malformed(path, dataset, f"{type(err).__name__}: {err}", LAYOUT, ORIGIN)))


class ModelNetFewShot(Dataset):
    """One few-shot episode set: items ``{"points", "label", "index"}``.

    The ``.pkl`` is read with a restricted unpickler (numpy arrays and plain containers only): a file
    referring to anything else, or a garbled one, raises :class:`recon.errors.DataFormatError`.

    Points are pc-normalised (xyz only), kept as stored (8192 officially) unless ``npoints`` is
    given (first rows = FPS prefix of the official files); the train split shuffles point order.
    Labels are ``0..way-1``. ``classes`` holds the names found in the pickle per label.
    """

    def __init__(self, root: str, way: int = 5, shot: int = 10, fold: int = 0, split: str = "train",
                 npoints: Optional[int] = None, use_normals: bool = False,
                 transform: Optional[Callable] = None):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        self.way, self.shot, self.fold, self.split = int(way), int(shot), int(fold), split
        self.npoints, self.use_normals, self.transform = npoints, use_normals, transform
        cands = [os.path.join(root, f"{way}way_{shot}shot", f"{fold}.pkl"),
                 os.path.join(root, f"{way}way{shot}shot", f"{fold}.pkl")]
        path = next((p for p in cands if os.path.exists(p)), None)
        if path is None:
            raise _files.missing(cands[0], NAME, LAYOUT, ORIGIN)
        self.path = path
        try:
            rows = load_pickle(path, NAME)[split]
            self.points = [np.asarray(r[0], dtype=np.float32) for r in rows]
            self.labels = np.array([int(np.asarray(r[1]).reshape(-1)[0]) for r in rows], dtype=np.int64)
            names = [str(r[2]) if len(r) > 2 else "" for r in rows]
        except DataFormatError:
            raise
        except Exception as e:  # noqa: BLE001 - any unpickling problem is a malformed file
            raise _malformed(path, NAME, e) from None
        for i, p in enumerate(self.points):
            if p.ndim != 2 or p.shape[1] < (6 if use_normals else 3) or (npoints and p.shape[0] < npoints):
                raise _files.corrupt(NAME, i, path, ValueError(f"points of shape {p.shape}"))
        n_cls = int(self.labels.max()) + 1 if len(self.labels) else 0
        self.classes = [""] * n_cls
        for lb, nm in zip(self.labels, names):
            # names look like 'airplane_0627': keep the class part
            self.classes[lb] = self.classes[lb] or ("_".join(nm.split("_")[:-1]) or nm)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict:
        index = _files.wrap_index(index, len(self))
        pc = pc_normalize(self.points[index][:, : 6 if self.use_normals else 3])
        if self.npoints:
            pc = pc[: self.npoints]
        return _files.point_item(pc, self.labels[index], index, self.split == "train", self.transform)
