"""Teacher features computed once and stored memory-mapped on disk, read by pretraining.

The teachers are frozen, so their outputs are a function of (input, weights). The cache keeps
the official randomness by storing every candidate the official code samples from:

* text: the features of all 60 prompts (20 templates × 3 endings, :mod:`.prompts` order) of every
  category text → ``text/<key>/feats.npy`` ``[T, 60, Dt]``;
* image: ``views`` augmented views per image (the official random pipeline, each view replayable
  from ``(seed, index, view)``) → ``image/<key>/feats.npy`` ``[n, views, Di]``.

:class:`CachedTeacherDataset` then draws one prompt and one view per access. A key is the hash of
everything the features depend on (dataset + split + sample ids, teacher arch + weights digest,
views, image pipeline, seed); a changed key gives a new entry, never stale features. Progress is
flushed chunk by chunk, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from typing import Callable, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from recon.atomic import atomic_write, atomic_write_json, build_once

from .prompts import NUM_PROMPTS, all_prompts, random_prompt

__all__ = ["TeacherFeatureCache", "CachedTeacherDataset", "OnlineTeacherFeatures",
           "dataset_fingerprint"]

_VERSION = 1


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def dataset_fingerprint(dataset) -> dict:
    """What identifies a dataset's samples: class, split, length and a hash of its sample ids."""
    ids = getattr(dataset, "sample_ids", None)
    return {
        "type": type(dataset).__name__,
        "root": os.path.abspath(getattr(dataset, "root", "")),
        "split": getattr(dataset, "split", None),
        "whole": getattr(dataset, "whole", None),
        "bgr": getattr(dataset, "bgr", None),
        "len": len(dataset),
        "ids": _hash(list(ids)) if ids is not None else None,
    }


def _view_seed(seed: int, index: int, view: int) -> int:
    return (seed << 44) + (index << 10) + view


class _Views(Dataset):
    """``views`` augmented copies of image ``indices[j]`` → ``[views, 3, H, W]``."""

    def __init__(self, dataset, indices, views, transform, seed):
        self.dataset, self.indices, self.views = dataset, indices, views
        self.transform, self.seed = transform, seed

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, j):
        i = int(self.indices[j])
        img = self.dataset.load_image(i)
        return torch.stack([self.transform(img, random.Random(_view_seed(self.seed, i, v)))
                            for v in range(self.views)])


class _Store:
    """One memory-mapped feature array plus a per-row 'done' mask and a meta file."""

    def __init__(self, folder: str, meta: dict, shape, dtype):
        self.folder, self.meta, self.shape, self.dtype = folder, meta, tuple(shape), np.dtype(dtype)
        self.feats_path = os.path.join(folder, "feats.npy")
        self.done_path = os.path.join(folder, "done.npy")
        self.meta_path = os.path.join(folder, "meta.json")
        self._feats = None

    def _meta_matches(self) -> bool:
        try:
            with open(self.meta_path) as f:
                return json.load(f) == self.meta
        except (OSError, ValueError):
            return False

    def open_for_write(self):
        """(feats memmap r+, done memmap r+), creating or resetting the folder when needed."""
        ok = self._meta_matches() and os.path.exists(self.feats_path) and os.path.exists(self.done_path)
        if ok:
            try:
                feats = np.load(self.feats_path, mmap_mode="r+")
                done = np.load(self.done_path, mmap_mode="r+")
                ok = feats.shape == self.shape and feats.dtype == self.dtype and done.shape == self.shape[:1]
            except (OSError, ValueError):
                ok = False
        if not ok:  # absent, foreign or damaged: start this entry over
            shutil.rmtree(self.folder, ignore_errors=True)
            os.makedirs(self.folder)
            feats = np.lib.format.open_memmap(self.feats_path, "w+", self.dtype, self.shape)
            done = np.lib.format.open_memmap(self.done_path, "w+", np.bool_, self.shape[:1])
            done[:] = False
            done.flush()
            atomic_write_json(self.meta_path, self.meta, indent=1)
        return feats, done

    def complete(self) -> bool:
        if not (self._meta_matches() and os.path.exists(self.done_path)):
            return False
        try:
            return bool(np.load(self.done_path, mmap_mode="r").all())
        except (OSError, ValueError):
            return False

    @property
    def feats(self) -> np.ndarray:
        if self._feats is None:  # opened lazily: once per DataLoader worker, never pickled
            self._feats = np.load(self.feats_path, mmap_mode="r").view(np.ndarray)
        return self._feats

    def moments(self, chunk_rows: int = 4096) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension ``(mean, std)`` float32 ``[D]`` over every stored feature (all rows, views,
        prompts), accumulated in float64 over chunks (a ShapeNet cache does not fit in memory) and
        kept in ``moments.npy`` beside the features (recomputed if the features are newer)."""
        path = os.path.join(self.folder, "moments.npy")
        if os.path.exists(path) and os.path.getmtime(path) >= os.path.getmtime(self.feats_path):
            m = np.load(path)
            return m[0], m[1]
        feats = self.feats.reshape(self.shape[0], -1, self.shape[-1])
        total, sq, n = np.zeros(self.shape[-1]), np.zeros(self.shape[-1]), 0
        for i in range(0, feats.shape[0], chunk_rows):
            block = np.asarray(feats[i:i + chunk_rows], np.float64).reshape(-1, self.shape[-1])
            total += block.sum(0)
            sq += np.square(block).sum(0)
            n += block.shape[0]
        mean = total / max(n, 1)
        std = np.sqrt(np.maximum(sq / max(n, 1) - mean * mean, 0.0))
        out = np.stack([mean, std]).astype(np.float32)

        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:
                np.save(f, out)

        atomic_write(path, write)  # every rank may compute it at once: identical content, whole files
        return out[0], out[1]

    def __getstate__(self):
        return {**self.__dict__, "_feats": None}


class TeacherFeatureCache:
    """Computes and serves the teachers' features for one dataset split.

    Args:
        root: cache folder (entries live in ``root/text/<key>`` and ``root/image/<key>``).
        dataset: a dataset with ``text`` items and ``load_image(i)`` / ``texts`` (ShapeNet55,
            SyntheticShapes); the cache rows follow its order.
        text_teacher, image_teacher: built teachers (``.arch``, ``.weights_id``, ``.dim``,
            ``.encode``); either may be ``None`` to cache one modality only.
        views: augmented views per image (K).
        image_transform: ``(PIL image, rng) -> [3, H, W]``; default the official train pipeline.
        seed: seed of the views.
        batch_size: images per teacher batch (views included: ``batch_size // views`` shapes).
        num_workers: DataLoader workers decoding and augmenting images.
        chunk: shapes per flushed chunk (resume granularity).
        dtype: storage dtype (``float32``; ``float16`` halves the disk).
    """

    def __init__(self, root: str, dataset, text_teacher=None, image_teacher=None, views: int = 8,
                 image_transform: Optional[Callable] = None, seed: int = 0, batch_size: int = 64,
                 num_workers: int = 0, chunk: int = 512, dtype="float32", progress: bool = True):
        if text_teacher is None and image_teacher is None:
            raise ValueError("TeacherFeatureCache needs a text_teacher, an image_teacher or both")
        if views < 1:
            raise ValueError(f"views must be >= 1, got {views}")
        if image_teacher is not None and not hasattr(dataset, "load_image"):
            raise TypeError(f"{type(dataset).__name__} has no load_image(i): no image features")
        from recon.data.images import ImageTransform

        self.root, self.dataset, self.views, self.seed = root, dataset, int(views), int(seed)
        self.text_teacher, self.image_teacher = text_teacher, image_teacher
        self.image_transform = image_transform or ImageTransform(train=True)
        self.batch_size, self.num_workers, self.chunk = batch_size, num_workers, chunk
        self.progress = progress
        self.texts = sorted(set(dataset.texts)) if text_teacher is not None else []
        self.text_row = {t: i for i, t in enumerate(self.texts)}
        self.fingerprint = dataset_fingerprint(dataset)
        self.text_store = self.image_store = None
        if text_teacher is not None:
            meta = {"version": _VERSION, "kind": "text", "arch": text_teacher.arch,
                    "weights": text_teacher.weights_id, "texts": self.texts,
                    "prompts": NUM_PROMPTS, "dtype": str(np.dtype(dtype))}
            self.text_store = _Store(os.path.join(root, "text", _hash(meta)), meta,
                                     (len(self.texts), NUM_PROMPTS, text_teacher.dim), dtype)
        if image_teacher is not None:
            meta = {"version": _VERSION, "kind": "image", "arch": image_teacher.arch,
                    "weights": image_teacher.weights_id, "dataset": self.fingerprint,
                    "views": self.views, "seed": self.seed, "transform": repr(self.image_transform),
                    "dtype": str(np.dtype(dtype))}
            self.image_store = _Store(os.path.join(root, "image", _hash(meta)), meta,
                                      (len(dataset), self.views, image_teacher.dim), dtype)

    # -- building -------------------------------------------------------------------------------
    def is_complete(self) -> bool:
        return all(s is None or s.complete() for s in (self.text_store, self.image_store))

    def build(self) -> "TeacherFeatureCache":
        """Computes whatever is missing (resuming a partial entry); a complete one is reused.

        Safe to call from every rank, or from several jobs sharing ``root``: one process builds
        each entry (a file lock beside its folder), the others wait for it, then read. The entry's
        'done' mask is flushed after the features it vouches for, so a builder killed half-way
        leaves an entry the next builder resumes, never one taken for complete.
        """
        for store, make in ((self.text_store, self._build_text), (self.image_store, self._build_images)):
            if store is not None:
                build_once(store.folder, store.complete, make)
        return self

    def _bar(self, total, desc):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress)

    def _build_text(self):
        feats, done = self.text_store.open_for_write()
        todo = np.flatnonzero(~done[:])
        with self._bar(len(todo), f"text features ({self.text_teacher.arch}, 60 prompts/text)") as bar:
            for s in range(0, len(todo), max(1, self.chunk // NUM_PROMPTS)):
                rows = todo[s: s + max(1, self.chunk // NUM_PROMPTS)]
                prompts = [p for r in rows for p in all_prompts(self.texts[r])]
                out = self.text_teacher.encode(prompts).cpu().numpy()
                feats[rows] = out.reshape(len(rows), NUM_PROMPTS, -1).astype(feats.dtype)
                feats.flush()
                done[rows] = True
                done.flush()
                bar.update(len(rows))

    def _build_images(self):
        feats, done = self.image_store.open_for_write()
        todo = np.flatnonzero(~done[:])
        per_batch = max(1, self.batch_size // self.views)
        loader = DataLoader(_Views(self.dataset, todo, self.views, self.image_transform, self.seed),
                            batch_size=per_batch, num_workers=self.num_workers, shuffle=False)
        pos = 0
        pending = []
        with self._bar(len(todo), f"image features ({self.image_teacher.arch}, {self.views} views)") as bar:
            for imgs in loader:
                b = imgs.shape[0]
                out = self.image_teacher.encode(imgs.flatten(0, 1)).cpu().numpy()
                rows = todo[pos: pos + b]
                feats[rows] = out.reshape(b, self.views, -1).astype(feats.dtype)
                pending.extend(rows.tolist())
                pos += b
                bar.update(b)
                if len(pending) >= self.chunk or pos == len(todo):
                    feats.flush()
                    done[pending] = True
                    done.flush()
                    pending = []

    # -- reading --------------------------------------------------------------------------------
    def _require(self, store, what):
        if store is None:
            raise ValueError(f"this cache was built without a {what} teacher")
        if not store.complete():
            raise RuntimeError(f"{what} feature cache {store.folder!r} is incomplete: call build()")
        return store.feats

    def text_features(self, text: str) -> np.ndarray:
        """``[60, Dt]``: every prompt of ``text`` in the official zero-shot order."""
        feats = self._require(self.text_store, "text")
        if text not in self.text_row:
            raise KeyError(f"text {text!r} is not among the cached category texts")
        return feats[self.text_row[text]]

    def image_features(self, index: int) -> np.ndarray:
        """``[views, Di]``: the cached views of sample ``index``."""
        return self._require(self.image_store, "image")[index]


class CachedTeacherDataset(Dataset):
    """Wraps a dataset: items gain ``"img_feat"`` ``[Di]`` and ``"text_feat"`` ``[Dt]``.

    Per access a random cached view and a random (template, ending) prompt are drawn (python
    ``random``, seeded per DataLoader worker by torch), as the official code draws a prompt per
    step. Images are not decoded (the features replace them).

    With ``online=True`` no cache is read: items keep ``"image"`` and gain ``"prompt"`` (a random
    prompt string); :class:`OnlineTeacherFeatures` then runs the teachers on the batch, exactly as
    the official model does every step.

    ``standardize=True`` z-scores every feature dimension with the cache's own mean and std
    (:meth:`_Store.moments`). The official recipe regresses the raw features (the default); the
    option exists for teachers whose raw features are dominated by a component shared by all
    inputs (the demo's random-init towers: their per-sample variation is a few % of the feature
    norm, so SmoothL1 on raw features gives the query almost no signal).
    """

    def __init__(self, dataset, cache: Optional[TeacherFeatureCache] = None, online: bool = False,
                 standardize: bool = False):
        if online and standardize:
            raise ValueError("standardize: needs the feature cache's statistics; it cannot be used with online=True")
        if online:
            self.dataset = dataset
        else:
            if cache is None:
                raise ValueError("CachedTeacherDataset needs a cache unless online=True")
            if len(cache.dataset) != len(dataset) or dataset_fingerprint(dataset) != cache.fingerprint:
                raise ValueError("the cache was built for a different dataset/split "
                                 f"({cache.fingerprint}) than {dataset_fingerprint(dataset)}")
            cache.build()
            if cache.image_store is not None and hasattr(dataset, "without_images"):
                dataset = dataset.without_images()
            self.dataset = dataset
        self.online = online
        self.classes = getattr(dataset, "classes", None)
        # only the stores travel to DataLoader workers, never the teachers
        self._img = cache.image_store if cache is not None and not online else None
        self._txt = cache.text_store if cache is not None and not online else None
        self._text_row = dict(cache.text_row) if self._txt is not None else {}
        self._views = cache.views if cache is not None else 0
        self._moments = {}
        if standardize:
            for key, store in (("img_feat", self._img), ("text_feat", self._txt)):
                if store is not None:
                    mean, std = store.moments()
                    # a dimension constant over the whole cache carries nothing: leave it at 0, not inf
                    self._moments[key] = (torch.from_numpy(mean), torch.from_numpy(np.where(std > 0, std, 1.0).astype(np.float32)))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        if self.online:
            item["prompt"] = random_prompt(item["text"])
            return item
        if self._img is not None:
            item["img_feat"] = torch.from_numpy(
                np.array(self._img.feats[item["index"], random.randrange(self._views)], np.float32))
        if self._txt is not None:
            item["text_feat"] = torch.from_numpy(np.array(
                self._txt.feats[self._text_row[item["text"]], random.randrange(NUM_PROMPTS)], np.float32))
        for key, (mean, std) in self._moments.items():
            item[key] = (item[key] - mean) / std
        return item


class OnlineTeacherFeatures:
    """Runs the teachers on a collated batch of online items (``"image"``, ``"prompt"``) and adds
    ``"img_feat"`` ``[B, Di]`` / ``"text_feat"`` ``[B, Dt]`` — the official per-step computation."""

    def __init__(self, text_teacher=None, image_teacher=None):
        self.text_teacher, self.image_teacher = text_teacher, image_teacher

    def __call__(self, batch: dict) -> dict:
        if self.image_teacher is not None:
            batch["img_feat"] = self.image_teacher.encode(batch["image"])
        if self.text_teacher is not None:
            batch["text_feat"] = self.text_teacher.encode(list(batch["prompt"]))
        return batch
