"""ShapeNet-55 with the rendered views of ReCon (the pretraining data)."""

from __future__ import annotations

import copy
import json
import os
from typing import Callable, Optional, Union

import numpy as np
import torch
from torch.utils.data import Dataset

from recon.errors import ConfigError

from . import _files
from .images import ImageTransform, read_image
from .transforms import pc_normalize

__all__ = ["ShapeNet55"]

LAYOUT = """  <root>/shapenet_pc/<synset>-<model>.npy     float [8192, 3] per shape
  <root>/shapenet_img/<synset>-<model>.png    one rendered view per shape
  <root>/ShapeNet-55/train.txt, test.txt      one '<synset>-<model>.npy' per line
  <root>/shapenet55.json                      [{"catalogue": <synset as int>, "describe": "<text>"}, ...]"""
ORIGIN = ("ShapeNet-55 point clouds and splits: Point-BERT's DATASET.md (ShapeNet55-34); rendered "
          "images, updated lists and shapenet55.json: ReCon's DATASET.md (github.com/qizekun/ReCon)")


def _synset(catalogue) -> str:
    # The json stores the synset as an integer without its leading 0 (keyed by '0' + str(...)).
    return str(catalogue).strip().zfill(8)


class ShapeNet55(Dataset):
    """ShapeNet-55: items ``{"points" [npoints,3], "label", "image" [3,224,224], "text", "index"}``.

    Points: a random subset of ``npoints`` of the stored cloud (torch RNG, so DataLoader workers
    differ), then ``pc_normalize`` — the official order. ``label`` is the position of the shape's
    synset in :attr:`synsets` (sorted), ``text`` the category description from ``shapenet55.json``.

    Args:
        root: folder with the layout in :data:`LAYOUT`.
        split: ``"train"`` or ``"test"``.
        npoints: points per sample (``<=`` stored points).
        whole: train + test lists (what the official pretraining uses, test list first).
        transform: optional callable on the ``[npoints, 3]`` tensor.
        image_transform: ``"train"`` (official random pipeline), ``"eval"`` (deterministic),
            a callable ``PIL.Image -> Tensor``, or ``None`` to skip images.
        bgr: read images in cv2's BGR order (official behaviour).
        pack_dir: if given, all clouds are packed once into one memory-mapped
            ``pack_dir/points-<hash>.npy`` ``[n, P, 3]`` and read from there: no per-sample file
            open, which is what makes the data path fast (≈ 12 bytes × P per shape on disk).
    """

    name = "ShapeNet-55"

    def __init__(self, root: str, split: str = "train", npoints: int = 1024, whole: bool = False,
                 transform: Optional[Callable] = None,
                 image_transform: Union[str, Callable, None] = "train", bgr: bool = True,
                 pack_dir: Optional[str] = None):
        if split not in ("train", "test"):
            raise ConfigError(f"split must be 'train' or 'test', got {split!r}")
        if int(npoints) <= 0:
            raise ConfigError(f"npoints must be positive, got {npoints}")
        self.root, self.split, self.npoints, self.whole = root, split, int(npoints), whole
        self.transform, self.bgr = transform, bgr
        if isinstance(image_transform, str):
            if image_transform not in ("train", "eval"):
                raise ConfigError(f"image_transform must be 'train', 'eval', a callable or None, "
                                 f"got {image_transform!r}")
            image_transform = ImageTransform(train=image_transform == "train")
        self.image_transform = image_transform
        req = lambda *p: _files.require(os.path.join(root, *p), self.name, LAYOUT, ORIGIN)  # noqa: E731
        self.pc_dir, self.img_dir = req("shapenet_pc"), os.path.join(root, "shapenet_img")
        json_path = req("shapenet55.json")
        lists = ["test", "train"] if whole else [split]
        lines = []
        for s in lists:
            lines += _files.read_lines(req("ShapeNet-55", f"{s}.txt"))
        try:
            with open(json_path) as f:
                records = json.load(f)
            describe = {_synset(r["catalogue"]): str(r["describe"]) for r in records}
        except (ValueError, KeyError, TypeError) as e:
            raise _files.malformed(json_path, self.name, f"expected a list of records with "
                                   f"'catalogue' and 'describe' ({type(e).__name__}: {e})",
                                   LAYOUT, ORIGIN) from None
        self.ids, taxa = [], []
        for ln in lines:
            name = ln.split()[0]
            if "-" not in name or not name.endswith(".npy"):
                raise _files.malformed(os.path.join(root, "ShapeNet-55", f"{split}.txt"), self.name,
                                       f"line {ln!r} is not '<synset>-<model>.npy'", LAYOUT, ORIGIN)
            taxon = name.split("-")[0]
            if taxon not in describe:
                raise _files.malformed(json_path, self.name, f"no record for synset {taxon} "
                                       f"(used by {name})", LAYOUT, ORIGIN)
            self.ids.append(name[: -len(".npy")])
            taxa.append(taxon)
        self.synsets = sorted(set(describe))
        self.classes = [describe[s] for s in self.synsets]
        pos = {s: i for i, s in enumerate(self.synsets)}
        self.labels = np.array([pos[t] for t in taxa], dtype=np.int64)
        self.texts = [describe[t] for t in taxa]
        self.pack_path, self._packed = None, None
        if pack_dir is not None:
            self.pack_path = self._pack(pack_dir)

    def _pack(self, pack_dir: str) -> str:
        """Writes (once) the stacked clouds of this split; returns the file."""
        import hashlib

        key = hashlib.sha256("\n".join([os.path.abspath(self.pc_dir)] + self.ids).encode()).hexdigest()
        path = os.path.join(pack_dir, f"points-{key[:16]}.npy")
        if os.path.exists(path):
            return path
        os.makedirs(pack_dir, exist_ok=True)
        first = self.load_points(0)
        tmp = f"{path}.{os.getpid()}.tmp"
        out = np.lib.format.open_memmap(tmp, "w+", np.float32, (len(self), first.shape[0], 3))
        for i in range(len(self)):
            pc = self.load_points(i)
            if pc.shape[0] != first.shape[0]:
                raise _files.corrupt(self.name, i, self.ids[i] + ".npy", ValueError(
                    f"{pc.shape[0]} points where sample 0 has {first.shape[0]}: cannot pack, "
                    f"use pack_dir=None"))
            out[i] = pc[:, :3]
        out.flush()
        del out
        os.replace(tmp, path)
        return path

    @property
    def sample_ids(self) -> list:
        """``<synset>-<model>`` of every sample, in order (used to key feature caches)."""
        return self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def without_images(self) -> "ShapeNet55":
        """A shallow copy that skips image loading (for cached teacher features)."""
        other = copy.copy(self)
        other.image_transform = None
        return other

    def image_path(self, index: int) -> str:
        return os.path.join(self.img_dir, self.ids[index] + ".png")

    def load_image(self, index: int):
        """The raw view as a PIL image (BGR-ordered when ``bgr``)."""
        path = self.image_path(index)
        if not os.path.exists(path):
            raise _files.missing(path, self.name, LAYOUT, ORIGIN)
        try:
            return read_image(path, bgr=self.bgr)
        except Exception as e:  # noqa: BLE001 - reported with the index
            raise _files.corrupt(self.name, index, path, e) from e

    def load_points(self, index: int) -> np.ndarray:
        path = os.path.join(self.pc_dir, self.ids[index] + ".npy")
        if not os.path.exists(path):
            raise _files.missing(path, self.name, LAYOUT, ORIGIN)
        try:
            pc = np.load(path, mmap_mode="r", allow_pickle=False)
            if pc.ndim != 2 or pc.shape[1] < 3 or pc.shape[0] < self.npoints:
                raise ValueError(f"expected [>= {self.npoints}, 3] points, got shape {pc.shape}")
        except Exception as e:  # noqa: BLE001
            raise _files.corrupt(self.name, index, path, e) from e
        return pc

    def __getstate__(self):
        return {**self.__dict__, "_packed": None}  # re-opened in each DataLoader worker

    def __getitem__(self, index: int) -> dict:
        index = _files.wrap_index(index, len(self))
        if self.pack_path is not None:
            if self._packed is None:  # a plain ndarray over the map: indexing it is cheap
                self._packed = np.load(self.pack_path, mmap_mode="r").view(np.ndarray)
            pc = self._packed[index]
        else:
            pc = self.load_points(index)
        pick = torch.randperm(pc.shape[0])[: self.npoints].numpy()
        pc = np.asarray(pc[pick, :3], dtype=np.float32)
        if not np.isfinite(pc).all():
            raise _files.corrupt(self.name, index, self.ids[index] + ".npy",
                                 ValueError("non-finite coordinates"))
        points = torch.from_numpy(pc_normalize(pc))
        if self.transform is not None:
            points = self.transform(points)
        item = {"points": points, "label": int(self.labels[index]), "text": self.texts[index],
                "index": index}
        if self.image_transform is not None:
            item["image"] = self.image_transform(self.load_image(index))
        return item
