"""Linear-SVM probe of frozen features (paper Table 10; RECON_FACTS.md §8).

Feature per cloud (official ``PointTransformerSVM``): ``[max over the cls/img/text query outputs,
max(local tokens) + mean(local tokens)]`` = 2C, from 1024 FPS points (deterministic, eval mode, no
augmentation).  ``sklearn.svm.LinearSVC(C=0.075)`` is fit on the train features and scored on test.
Features are cached on disk keyed by the checkpoint's hash, the dataset and the sampling.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .common import (
    add_common_args,
    build_dataset,
    build_model,
    check_dataset_name,
    file_digest,
    fps_points,
    iterate_batches,
    load_npoints,
    log,
    parse_kv,
    path_tag,
    run_main,
    write_result,
)

SVM_C = 0.075  # official cfgs/svm/modelnet40.yaml


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
        raise ValueError("dataset: no samples to extract features from")
    return torch.cat(feats).numpy(), torch.cat(labels).numpy()


def cached_features(cache_dir, key: str, compute) -> tuple[np.ndarray, np.ndarray]:
    """Load ``<cache_dir>/<key>.npz`` if present, else ``compute()`` and store it."""
    path = Path(cache_dir) / f"{key}.npz" if cache_dir else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            log(f"features from cache {path}")
            return z["features"], z["labels"]
    feats, labels = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, features=feats, labels=labels)
        tmp.replace(path)
    return feats, labels


def fit_and_score(train_x, train_y, test_x, test_y, c: float = SVM_C, seed: int = 0) -> float:
    """Fit ``LinearSVC(C=c)`` (otherwise sklearn defaults) on train, return test accuracy in %."""
    from recon._optional import require

    LinearSVC = require("sklearn.svm", purpose="the linear SVM").LinearSVC

    if len(np.unique(train_y)) < 2:
        raise ValueError("dataset: the SVM needs at least two classes in the train split")
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


def pretrained_vs_random(model_name: str, checkpoint: str, root, dataset: str = "synthetic", npoints: int = 1024,
                         model_kwargs: dict | None = None, data_kwargs: dict | None = None, batch_size: int = 32,
                         cache_dir=None, seed: int = 0) -> dict:
    """Linear-SVM accuracy of pretrained features beside the same model at random init.

    The demo's first evidence that pretraining helps (same data, same protocol, same seed for the
    random weights).

    Returns:
        ``dict(pretrained=%, random=%, margin=pretrained - random, n_test, seconds)``.
    """
    key = check_dataset_name(dataset)
    model_kwargs, data_kwargs = dict(model_kwargs or {}), dict(data_kwargs or {})
    n_load = load_npoints(key, npoints)
    train_set = build_dataset(key, root, "train", npoints=n_load, **data_kwargs)
    test_set = build_dataset(key, root, "test", npoints=n_load, **data_kwargs)
    t0 = time.perf_counter()
    accs = {}
    for tag, ckpt in (("pretrained", checkpoint), ("random", None)):
        model = build_model(model_name, ckpt, seed=seed, num_classes=len(train_set.classes), npoints=npoints,
                            **model_kwargs)
        weights = file_digest(ckpt) if ckpt else f"random-seed{seed}"
        cache_key = f"{model_name}_{weights}_{key}_{path_tag(root)}_{path_tag(repr(sorted(model_kwargs.items())), 6)}"
        res = svm_accuracy(model, train_set, test_set, npoints, batch_size, cache_dir, cache_key if cache_dir else None)
        accs[tag] = res["acc"]
    return dict(pretrained=accs["pretrained"], random=accs["random"], margin=accs["pretrained"] - accs["random"],
                n_test=res["n_test"], seconds=time.perf_counter() - t0)


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default="modelnet40", help="modelnet40 (official) | modelnet10 | synthetic | scan_*")
    p.add_argument("--root", required=True, help="dataset root in the real format")
    p.add_argument("--checkpoint", default=None, help="pretrained checkpoint; none = random weights (said so)")
    add_common_args(p, "recon_base")
    p.add_argument("--npoints", type=int, default=1024, help="FPS points per cloud (official 1024)")
    p.add_argument("--c", type=float, default=SVM_C, help=f"LinearSVC C (official {SVM_C})")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cache-dir", default="runs/svm_cache", help="feature cache ('' disables)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights when no checkpoint")
    p.add_argument("--out", default=None, help="write the result JSON here")


def run(args) -> dict:
    """Run the SVM protocol from parsed arguments; prints and returns the result dict."""
    key = check_dataset_name(args.dataset)
    data_kw = parse_kv(args.data_args, "data-args")
    n_load = load_npoints(key, args.npoints)
    train_set = build_dataset(key, args.root, "train", npoints=n_load, **data_kw)
    test_set = build_dataset(key, args.root, "test", npoints=n_load, **data_kw)
    model_kw = parse_kv(args.model_args, "model-args")
    model = build_model(args.model, args.checkpoint, seed=args.seed, num_classes=len(train_set.classes),
                        npoints=args.npoints, **model_kw)
    weights = file_digest(args.checkpoint) if args.checkpoint else f"random-seed{args.seed}"
    root_tag = path_tag(args.root)
    model_tag = path_tag(repr(sorted(model_kw.items())) + repr(sorted(data_kw.items())), 6)
    cache_key = f"{args.model}_{weights}_{key}_{root_tag}_{model_tag}"
    res = svm_accuracy(model, train_set, test_set, npoints=args.npoints, batch_size=args.batch_size,
                       cache_dir=args.cache_dir or None, cache_key=cache_key, c=args.c)
    notes = [] if args.checkpoint else ["random weights (no checkpoint)"]
    result = dict(protocol="svm", dataset=key, setting=f"LinearSVC C={args.c}, FPS-{args.npoints}", value=res["acc"],
                  std=None, n=res["n_test"], model=args.model, checkpoint=args.checkpoint, notes=notes, **{
                      k: v for k, v in res.items() if k != "acc"})
    print(f"linear SVM {key}: {res['acc']:.2f}% on {res['n_test']} test clouds "
          f"({res['dim']}-d features of {args.model}{', RANDOM weights' if not args.checkpoint else ''})")
    if args.out:
        write_result(args.out, result)
        log(f"wrote {args.out}")
    return result


def add_svm_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``recon svm`` on an argparse ``subparsers`` object; sets ``func``."""
    p = subparsers.add_parser("svm", help="linear-SVM probe of frozen features (Table 10)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_args(p)
    p.set_defaults(func=run)
    return p


def main_svm(argv: Sequence[str] | None = None) -> int:
    """``recon svm`` as a function: returns the exit code."""
    p = argparse.ArgumentParser(prog="recon svm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_args(p)
    return run_main(run, p, argv)
