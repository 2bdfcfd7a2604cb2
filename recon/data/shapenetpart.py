"""ShapeNetPart (``shapenetcore_partanno_segmentation_benchmark_v0_normal``) for part segmentation.

The layout and item semantics of the official ``PartNormalDataset`` (docs/official.md §15):

* ``synsetoffset2category.txt``: lines ``Name synset``; the category id is the LINE ORDER;
* ``<synset>/<token>.txt``: rows ``x y z nx ny nz part`` with global part ids 0-49;
* ``train_test_split/shuffled_{train,val,test}_file_list.json``: lists of
  ``shape_data/<synset>/<token>``; ``trainval`` = train + val;
* each cloud is normalised as a whole (centroid to the origin, largest radius 1), then sampled to
  ``npoints`` by a random choice WITH replacement.

The official code draws that choice afresh at test time too (``sampling="random"``); recon's
default draws it afresh for the training splits and from a fixed seed per shape for ``val`` /
``test`` (``sampling="fixed"``, the same points every evaluation); ``sampling="full"`` returns the
whole cloud (variable N: evaluate with batch size 1).

Items: ``points`` float32 ``(npoints, 3)`` (``(npoints, 6)`` with ``normals=True``), ``label``
the category id, ``seg`` int64 ``(npoints,)`` global part ids, ``index``.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from recon.errors import DataFormatError, MissingFileError

from .transforms import pc_normalize

__all__ = ["ShapeNetPart", "PART_IDS", "CATEGORY_SYNSETS", "SPLITS", "SAMPLING", "LAYOUT"]

NAME = "ShapeNetPart"
# The 16 categories in the official file order, and the global ids of each one's parts.
PART_IDS = OrderedDict([
    ("Airplane", [0, 1, 2, 3]), ("Bag", [4, 5]), ("Cap", [6, 7]), ("Car", [8, 9, 10, 11]),
    ("Chair", [12, 13, 14, 15]), ("Earphone", [16, 17, 18]), ("Guitar", [19, 20, 21]), ("Knife", [22, 23]),
    ("Lamp", [24, 25, 26, 27]), ("Laptop", [28, 29]), ("Motorbike", [30, 31, 32, 33, 34, 35]),
    ("Mug", [36, 37]), ("Pistol", [38, 39, 40]), ("Rocket", [41, 42, 43]), ("Skateboard", [44, 45, 46]),
    ("Table", [47, 48, 49]),
])
CATEGORY_SYNSETS = OrderedDict([
    ("Airplane", "02691156"), ("Bag", "02773838"), ("Cap", "02954340"), ("Car", "02958343"),
    ("Chair", "03001627"), ("Earphone", "03261776"), ("Guitar", "03467517"), ("Knife", "03624134"),
    ("Lamp", "03636649"), ("Laptop", "03642806"), ("Motorbike", "03790512"), ("Mug", "03797390"),
    ("Pistol", "03948459"), ("Rocket", "04099429"), ("Skateboard", "04225987"), ("Table", "04379243"),
])
SPLITS = ("train", "val", "trainval", "test")
SAMPLING = ("random", "fixed", "full")
LAYOUT = """  <root>/synsetoffset2category.txt            lines 'Name synset' (category id = line order)
  <root>/<synset>/<token>.txt                  rows 'x y z nx ny nz part' (part: global id 0-49)
  <root>/train_test_split/shuffled_{train,val,test}_file_list.json
                                               JSON lists of 'shape_data/<synset>/<token>'"""
ORIGIN = ("shapenetcore_partanno_segmentation_benchmark_v0_normal.zip (PointNet++ / Point-MAE DATASET.md; "
          "shapenet.cs.stanford.edu/media/); root is the unpacked folder")


def _missing(path: str) -> MissingFileError:
    return MissingFileError(f"{NAME}: missing file or folder {path!r}.\nExpected layout:\n{LAYOUT}\n"
                            f"Where it comes from: {ORIGIN}")


def _malformed(path: str, what: str) -> DataFormatError:
    return DataFormatError(f"{NAME}: malformed file {path!r}: {what}.\nExpected layout:\n{LAYOUT}")


def read_categories(root: str) -> list[tuple[str, str]]:
    """``[(name, synset), ...]`` from ``synsetoffset2category.txt`` in file order."""
    path = os.path.join(root, "synsetoffset2category.txt")
    if not os.path.isfile(path):
        raise _missing(path)
    out = []
    with open(path) as f:
        for ln in f:
            fields = ln.split()
            if not fields:
                continue
            if len(fields) != 2:
                raise _malformed(path, f"expected 'Name synset' per line, got {ln.strip()!r}")
            if fields[0] not in PART_IDS:
                raise _malformed(path, f"unknown category {fields[0]!r}; ShapeNetPart has {list(PART_IDS)}")
            out.append((fields[0], fields[1]))
    if not out:
        raise _malformed(path, "no categories")
    return out


def read_split(root: str, split: str) -> list[tuple[str, str]]:
    """``[(synset, token), ...]`` listed by the split file(s) of ``split``."""
    if split not in SPLITS:
        raise ValueError(f"{NAME}: split must be one of {SPLITS}, got {split!r}")
    out = []
    for part in (("train", "val") if split == "trainval" else (split,)):
        path = os.path.join(root, "train_test_split", f"shuffled_{part}_file_list.json")
        if not os.path.isfile(path):
            raise _missing(path)
        try:
            with open(path) as f:
                entries = json.load(f)
            if not isinstance(entries, list):
                raise ValueError("not a JSON list")
            for e in entries:
                fields = str(e).split("/")
                if len(fields) != 3:
                    raise ValueError(f"entry {e!r} is not 'shape_data/<synset>/<token>'")
                out.append((fields[1], fields[2]))
        except ValueError as e:
            raise _malformed(path, str(e)) from None
    return out


def read_shape(path: str) -> np.ndarray:
    """A ``<token>.txt`` file -> float32 ``(N, 7)``."""
    if not os.path.isfile(path):
        raise _missing(path)
    try:
        arr = np.loadtxt(path, dtype=np.float32, ndmin=2)
    except ValueError as e:
        raise _malformed(path, f"cannot parse the rows ({e})") from None
    if arr.shape[1] != 7 or arr.shape[0] == 0:
        raise _malformed(path, f"expected rows of 7 numbers 'x y z nx ny nz part', got shape {arr.shape}")
    return arr


class ShapeNetPart(Dataset):
    """ShapeNetPart part segmentation (see the module docstring for layout and items).

    Args:
        root: the ``shapenetcore_partanno_segmentation_benchmark_v0_normal`` folder.
        split: ``train`` | ``val`` | ``trainval`` | ``test``.
        npoints: points per item (official 2048).
        normals: append the normals (``points`` becomes ``(npoints, 6)``; official ``normal_channel``).
        sampling: ``random`` (official: a fresh choice with replacement every access), ``fixed``
            (the same choice every access, seeded by ``seed`` and the index) or ``full`` (the whole
            cloud); default ``random`` for train/trainval, ``fixed`` for val/test.
        seed: seed of the ``fixed`` sampling.
        cache_size: parsed clouds kept in memory (official 20000).
    """

    name = NAME
    SPLITS = SPLITS

    def __init__(self, root: str, split: str = "train", npoints: int = 2048, normals: bool = False,
                 sampling: str | None = None, seed: int = 0, cache_size: int = 20000):
        root = os.fspath(root)
        if not os.path.isdir(root):
            raise _missing(root)
        if sampling is None:
            sampling = "random" if split in ("train", "trainval") else "fixed"
        if sampling not in SAMPLING:
            raise ValueError(f"{NAME}: sampling must be one of {SAMPLING}, got {sampling!r}")
        if int(npoints) < 1:
            raise ValueError(f"{NAME}: npoints must be >= 1, got {npoints}")
        self.root, self.split, self.npoints = root, split, int(npoints)
        self.normals, self.sampling, self.seed = bool(normals), sampling, int(seed)
        cats = read_categories(root)
        self.classes = [n for n, _ in cats]
        self.category_parts = [PART_IDS[n] for n in self.classes]
        cat_of = {s: i for i, (_, s) in enumerate(cats)}
        listed = read_split(root, split)
        for syn, tok in listed:
            if syn not in cat_of:
                raise _malformed(os.path.join(root, "train_test_split", f"shuffled_{split}_file_list.json"),
                                 f"synset {syn!r} (of {tok!r}) is not in synsetoffset2category.txt")
        by_cat: dict[int, list[str]] = {}
        for syn, tok in listed:
            by_cat.setdefault(cat_of[syn], []).append(tok)
        self.items = []  # (category id, path) in the official order: categories, then sorted tokens
        for c, (_, syn) in enumerate(cats):
            for tok in sorted(set(by_cat.get(c, []))):
                self.items.append((c, os.path.join(root, syn, tok + ".txt")))
        for _, path in self.items:
            if not os.path.isfile(path):
                raise _missing(path)
        self.cache_size = int(cache_size)
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def _load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        hit = self._cache.get(index)
        if hit is not None:
            return hit
        c, path = self.items[index]
        arr = read_shape(path)
        seg = arr[:, 6].astype(np.int64)
        if not np.all(seg == arr[:, 6]) or not np.isin(seg, self.category_parts[c]).all():
            bad = arr[~np.isin(arr[:, 6], self.category_parts[c]), 6][:3].tolist()
            raise _malformed(path, f"part labels {bad} are not parts of {self.classes[c]} "
                                   f"({self.category_parts[c]})")
        pts = pc_normalize(arr[:, :6] if self.normals else arr[:, :3]).astype(np.float32)
        if len(self._cache) < self.cache_size:
            self._cache[index] = (pts, seg)
        return pts, seg

    def _choice(self, index: int, n: int) -> np.ndarray | None:
        if self.sampling == "full":
            return None
        if self.sampling == "fixed":
            return np.random.default_rng([self.seed, index]).choice(n, self.npoints, replace=True)
        return np.random.choice(n, self.npoints, replace=True)

    def __getitem__(self, index: int) -> dict:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} shapes")
        index %= len(self)
        pts, seg = self._load(index)
        pick = self._choice(index, len(seg))
        if pick is not None:
            pts, seg = pts[pick], seg[pick]
        return {"points": torch.from_numpy(np.ascontiguousarray(pts)), "label": self.items[index][0],
                "seg": torch.from_numpy(np.ascontiguousarray(seg)), "index": index}
