"""ModelNet40 / ModelNet10 (``modelnet40_normal_resampled``) with the official FPS ``.dat`` cache."""

from __future__ import annotations

import os
import pickle
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from recon.atomic import atomic_write, build_once
from recon.errors import DataFormatError

from . import _files
from ._safe_pickle import load_pickle
from .transforms import pc_normalize

__all__ = ["ModelNet40", "build_fps_cache", "load_dat"]

LAYOUT = """  <root>/modelnet{C}_shape_names.txt           one class name per line (C = 40 or 10)
  <root>/modelnet{C}_train.txt, modelnet{C}_test.txt   shape ids like 'airplane_0001'
  <root>/<class>/<id>.txt                      rows 'x,y,z,nx,ny,nz' (10000 per shape)
  <root>/modelnet{C}_{split}_{P}pts_fps.dat    pickle [list of float32 [P,6], list of int32 [1]]
                                               (P = 8192 officially; built from the txt when missing)"""
ORIGIN = ("modelnet40_normal_resampled.zip from PointNet++ (shapenet.cs.stanford.edu/media/); the "
          "*_8192pts_fps.dat files from Point-BERT's DATASET.md (github.com/lulutang0608/Point-BERT)")
NAME = "ModelNet"


def _malformed(path: str, dataset: str, err: BaseException) -> DataFormatError:
    return DataFormatError(str(_files.malformed(path, dataset, f"{type(err).__name__}: {err}", LAYOUT, ORIGIN)))


def load_dat(path: str, dataset: str = NAME):
    """Reads an official ``.dat`` pickle → (list of float32 [P, 6] arrays, int64 labels [n]).

    The pickle is read by :func:`recon.data._safe_pickle.load_pickle`, which admits only numpy arrays
    and plain containers: a file referring to anything else raises :class:`DataFormatError` naming
    it, and nothing in it runs. A truncated or garbled file raises :class:`DataFormatError` too.
    """
    try:
        points, labels = load_pickle(path, dataset)
        points = [np.asarray(p, dtype=np.float32) for p in points]
        labels = np.array([int(np.asarray(lb).reshape(-1)[0]) for lb in labels], dtype=np.int64)
        if len(points) != len(labels) or any(p.ndim != 2 or p.shape[1] < 3 for p in points):
            raise ValueError("expected equally long lists of [P, >=3] arrays and [1] labels")
    except DataFormatError:
        raise
    except Exception as e:  # noqa: BLE001 - any unpickling problem is a malformed file
        raise _malformed(path, dataset, e) from None
    return points, labels


def _read_txt(path: str, index: int) -> np.ndarray:
    if not os.path.exists(path):
        raise _files.missing(path, NAME, LAYOUT, ORIGIN)
    try:
        arr = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        if arr.shape[1] != 6:
            raise ValueError(f"expected 6 comma-separated columns, got {arr.shape[1]}")
    except Exception as e:  # noqa: BLE001
        raise _files.corrupt(NAME, index, path, e) from e
    return arr


def build_fps_cache(root: str, split: str, npoints: int = 8192, num_category: int = 40,
                    out_path: Optional[str] = None, batch: int = 16) -> str:
    """Builds ``modelnet{C}_{split}_{npoints}pts_fps.dat`` from the txt files.

    Each shape keeps the ``npoints`` rows chosen by ``recon.ops.furthest_point_sample`` (start at
    row 0; the official builder used a random start), in FPS order, all 6 columns.
    Returns the written path. Shapes with the same row count are sampled together.
    """
    from recon.ops import furthest_point_sample

    names, items = _index(root, split, num_category)
    out_path = out_path or os.path.join(root, f"modelnet{num_category}_{split}_{npoints}pts_fps.dat")
    pcs = [_read_txt(path, i) for i, (_, path) in enumerate(items)]
    out: list = [None] * len(pcs)
    for n in sorted({p.shape[0] for p in pcs}):
        same = [i for i, p in enumerate(pcs) if p.shape[0] == n]
        if n < npoints:
            raise ValueError(f"{NAME}: {items[same[0]][1]!r} has {n} rows, fewer than npoints={npoints}")
        for s in range(0, len(same), batch):
            chunk = same[s: s + batch]
            xyz = torch.from_numpy(np.stack([pcs[i][:, :3] for i in chunk]))
            idx = furthest_point_sample(xyz, npoints).numpy()
            for j, i in enumerate(chunk):
                out[i] = np.ascontiguousarray(pcs[i][idx[j]])
    labels = [np.array([names.index(c)], dtype=np.int32) for c, _ in items]
    atomic_write(out_path, lambda tmp: _dump(tmp, [out, labels]))  # a unique temporary per writer
    return out_path


def _dump(path: str, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f)


def _index(root: str, split: str, num_category: int):
    req = lambda n: _files.require(os.path.join(root, n), NAME, LAYOUT, ORIGIN)  # noqa: E731
    names = _files.read_lines(req(f"modelnet{num_category}_shape_names.txt"))
    ids = _files.read_lines(req(f"modelnet{num_category}_{split}.txt"))
    items = []
    for sid in ids:
        cls = "_".join(sid.split("_")[:-1])
        if cls not in names:
            raise _files.malformed(os.path.join(root, f"modelnet{num_category}_{split}.txt"), NAME,
                                   f"id {sid!r} names no class of modelnet{num_category}_shape_names.txt",
                                   LAYOUT, ORIGIN)
        items.append((cls, os.path.join(root, cls, sid + ".txt")))
    return names, items


class ModelNet40(Dataset):
    """ModelNet40 (or ModelNet10 with ``num_category=10``): items ``{"points", "label", "index"}``.

    Points come from the FPS-ordered ``.dat`` cache, so the first ``npoints`` rows are exactly
    ``fps(cloud, npoints)`` from index 0, what the official validation feeds the model. With
    ``npoints=8192`` the stored clouds are returned as the official loader does (the train loop
    then applies :func:`recon.data.transforms.fps_then_random_subset`). Points are pc-normalised;
    the train split shuffles point order (official); ``use_normals`` keeps 6 channels.

    Cache lookup: ``modelnet{C}_{split}_{npoints}pts_fps.dat``, else the 8192-point file's prefix,
    else it is built from the txt files (see :func:`build_fps_cache`).
    """

    def __init__(self, root: str, split: str = "train", npoints: int = 1024, num_category: int = 40,
                 use_normals: bool = False, transform: Optional[Callable] = None,
                 build_cache: bool = True):
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if num_category not in (10, 40):
            raise ValueError(f"num_category must be 10 or 40, got {num_category}")
        if int(npoints) <= 0:
            raise ValueError(f"npoints must be positive, got {npoints}")
        self.root, self.split, self.npoints, self.num_category = root, split, int(npoints), num_category
        self.use_normals, self.transform = use_normals, transform
        self.name = f"ModelNet{num_category}"
        names_path = _files.require(os.path.join(root, f"modelnet{num_category}_shape_names.txt"),
                                    self.name, LAYOUT, ORIGIN)
        self.classes = _files.read_lines(names_path)
        exact = os.path.join(root, f"modelnet{num_category}_{split}_{self.npoints}pts_fps.dat")
        full = os.path.join(root, f"modelnet{num_category}_{split}_8192pts_fps.dat")
        if os.path.exists(exact):
            path = exact
        elif self.npoints < 8192 and os.path.exists(full):
            path = full
        elif build_cache:  # one builder among the ranks / jobs sharing root; the others wait, then read
            build_once(exact, lambda: os.path.exists(exact),
                       lambda: build_fps_cache(root, split, self.npoints, num_category))
            path = exact
        else:
            raise _files.missing(exact, self.name, LAYOUT, ORIGIN)
        self.dat_path = path
        self.points, self.labels = load_dat(path, self.name)
        for i, p in enumerate(self.points):
            if p.shape[0] < self.npoints or (use_normals and p.shape[1] < 6):
                raise _files.corrupt(self.name, i, path, ValueError(
                    f"shape {p.shape}, need >= {self.npoints} rows and {6 if use_normals else 3} columns"))
        _files.check_labels(self.labels, len(self.classes), self.name, path)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, index: int) -> dict:
        index = _files.wrap_index(index, len(self))
        # Normalise the stored cloud first, then keep the FPS prefix: official eval order.
        pc = pc_normalize(self.points[index][:, : 6 if self.use_normals else 3])[: self.npoints]
        return _files.point_item(pc, self.labels[index], index, self.split == "train", self.transform)
