"""Linear-SVM probe of frozen features (paper Table 10; docs/official.md §8).

Feature per cloud (official ``PointTransformerSVM``): ``[max over the cls/img/text query outputs,
max(local tokens) + mean(local tokens)]`` = 2C, from 1024 FPS points (deterministic, eval mode, no
augmentation).  ``sklearn.svm.LinearSVC(C=0.075)`` is fit on the train features and scored on test.
Features are cached on disk keyed by the checkpoint's hash, the dataset and the sampling.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import torch

from recon.atomic import atomic_write
from recon.data.registry import build_dataset, check_name, load_npoints
from recon.data.transforms import fps_points
from recon.errors import DataFormatError

from .frozen import frozen_model, iterate_batches

__all__ = ["SVM_C", "extract_features", "cached_features", "fit_and_score", "svm_accuracy", "feature_cache_key",
           "svm_probe", "pretrained_vs_random", "path_tag"]

SVM_C = 0.075  # official cfgs/svm/modelnet40.yaml
log = logging.getLogger("recon.eval")


def path_tag(text: str | os.PathLike, length: int = 8) -> str:
    """Short hash of a resolved path (or of any text): a cache-key part, so that two dataset roots or
    two model settings never share cache entries."""
    if isinstance(text, Path) or os.path.sep in str(text) or os.path.exists(str(text)):
        text = str(Path(text).resolve())
    return hashlib.sha256(str(text).encode()).hexdigest()[:length]


def feature_cache_key(model_name: str, checkpoint: str | None, seed: int, dataset: str, root, settings: str) -> str:
    """The feature-cache key of one (weights, dataset, settings): the checkpoint's digest (or the random
    seed), the dataset's name and resolved root, and a hash of the other settings."""
    from recon.teachers.weights import file_digest

    weights = file_digest(checkpoint) if checkpoint else f"random-seed{seed}"
    return f"{model_name}_{weights}_{dataset}_{path_tag(root)}_{path_tag(settings, 6)}"


@torch.no_grad()
def extract_features(model, batches, npoints: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Run ``model.forward_features`` in eval mode over ``(points, labels)`` batches.

    Returns:
        ``(features [n, 2C] float32, labels [n] int64)``.
    """
    model.eval()
    from recon.models import svm_feature

    feats, labels = [], []
    for points, label in batches:
        feats.append(svm_feature(model.forward_features(fps_points(points, npoints))).float().cpu())
        labels.append(label.cpu())
    if not feats:
        raise DataFormatError("dataset: no samples to extract features from")
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def cached_features(cache_dir, key: str, compute) -> tuple[np.ndarray, np.ndarray]:
    """Load ``<cache_dir>/<key>.npz`` if present, else ``compute()`` and store it."""
    path = Path(cache_dir) / f"{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            log.info(f"features from cache {path}")
            return z["features"], z["labels"]
    feats, labels = compute()
    if path is not None:
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a bare name
                np.savez(f, features=feats, labels=labels)

        atomic_write(str(path), write)
    return feats, labels


def fit_and_score(train_x, train_y, test_x, test_y, c: float = SVM_C, seed: int = 0) -> float:
    """Fit ``LinearSVC(C=c)`` (otherwise sklearn defaults) on train, return test accuracy in %."""
    from recon._optional import require

    LinearSVC = require("sklearn.svm", purpose="the linear SVM").LinearSVC

    if len(np.unique(train_y)) < 2:
        raise DataFormatError("dataset: the SVM needs at least two classes in the train split")
    clf = LinearSVC(C=c, random_state=seed)
    clf.fit(train_x, train_y)
    return 100.0 * float((clf.predict(test_x) == test_y).mean())


def svm_accuracy(model, train_set, test_set, npoints=1024, batch_size=32, cache_dir=None, cache_key=None,
                 c: float = SVM_C) -> dict:
    """Linear-SVM accuracy of ``model``'s frozen features (the whole protocol, as a function).

    Args:
        cache_key: prefix of the cache file names (checkpoint hash + dataset); no caching if None.

    Returns:
        ``dict(acc=%, n_train, n_test, dim, seconds_features, seconds_svm)``.
    """
    t0 = time.perf_counter()
    xs = {}
    for split, ds in (("train", train_set), ("test", test_set)):
        key = f"{cache_key}_{split}_fps{npoints}" if cache_key else None
        xs[split] = cached_features(cache_dir if key else None, key or "",
                                    lambda ds=ds: extract_features(model, iterate_batches(ds, batch_size), npoints))
    t1 = time.perf_counter()
    acc = fit_and_score(*xs["train"], *xs["test"], c=c)
    t2 = time.perf_counter()
    return dict(acc=acc, n_train=len(xs["train"][1]), n_test=len(xs["test"][1]), dim=int(xs["train"][0].shape[1]),
                seconds_features=t1 - t0, seconds_svm=t2 - t1)


def svm_probe(model_name: str, checkpoint: str | None, root, dataset: str = "modelnet40", npoints: int = 1024,
              model_kwargs: dict | None = None, data_kwargs: dict | None = None, batch_size: int = 32,
              cache_dir=None, seed: int = 0, c: float = SVM_C, datasets: tuple | None = None) -> dict:
    """The whole probe by names: ``dataset``'s splits at ``root``, registry model ``model_name`` with
    ``checkpoint``'s weights (random, seeded by ``seed``, when None), features cached under
    :func:`feature_cache_key` in ``cache_dir`` (None: no cache).

    Args:
        datasets: the ``(train, test)`` splits when already built (the caller probes several weights).

    Returns:
        :func:`svm_accuracy`'s dict.
    """
    key = check_name(dataset)
    model_kwargs, data_kwargs = dict(model_kwargs or {}), dict(data_kwargs or {})
    if datasets is None:
        n_load = load_npoints(key, npoints)
        datasets = tuple(build_dataset(key, root, s, npoints=n_load, **data_kwargs) for s in ("train", "test"))
    train_set, test_set = datasets
    model = frozen_model(model_name, checkpoint, seed=seed, num_classes=len(train_set.classes), npoints=npoints,
                         **model_kwargs)
    cache_key = feature_cache_key(model_name, checkpoint, seed, key, root,
                                  repr(sorted(model_kwargs.items())) + repr(sorted(data_kwargs.items())))
    return svm_accuracy(model, train_set, test_set, npoints, batch_size, cache_dir, cache_key if cache_dir else None,
                        c=c)


def pretrained_vs_random(model_name: str, checkpoint: str, root, dataset: str = "synthetic", npoints: int = 1024,
                         model_kwargs: dict | None = None, data_kwargs: dict | None = None, batch_size: int = 32,
                         cache_dir=None, seed: int = 0) -> dict:
    """Linear-SVM accuracy of pretrained features beside the same model at random init.

    The demo's first evidence that pretraining helps (same data, same protocol, same seed for the
    random weights).

    Returns:
        ``dict(pretrained=%, random=%, margin=pretrained - random, n_test, seconds)``.
    """
    key = check_name(dataset)
    n_load = load_npoints(key, npoints)
    splits = tuple(build_dataset(key, root, s, npoints=n_load, **dict(data_kwargs or {})) for s in ("train", "test"))
    t0 = time.perf_counter()
    accs = {}
    for tag, ckpt in (("pretrained", checkpoint), ("random", None)):
        res = svm_probe(model_name, ckpt, root, key, npoints, model_kwargs, data_kwargs, batch_size, cache_dir, seed,
                        datasets=splits)
        accs[tag] = res["acc"]
    return dict(pretrained=accs["pretrained"], random=accs["random"], margin=accs["pretrained"] - accs["random"],
                n_test=res["n_test"], seconds=time.perf_counter() - t0)
