"""Few-shot classification grid (paper Table 2; docs/official.md §8-9): the protocol's pieces.

The grid runs way x shot x fold: each fold is one run on ``<way>way_<shot>shot/<fold>.pkl`` whose
accuracy is that fold's result.  Each finished fold writes ``<out>/<way>way_<shot>shot/fold<k>.json``
and is never run again (resume); the summary is mean +- std over folds, as the paper's table.

The run itself is a callable ``run_fold(cfg) -> dict(acc=...)``; ``recon fewshot``
(:mod:`recon.apps.fewshot`) binds it to a finetune of a few-shot config. :func:`write_fewshot_pickles`
writes episodes in the official format from any labelled dataset, so the protocol runs offline on the
synthetic set; :func:`frozen_backbone` is the model of the official ``linear`` / ``mlp3`` protocols.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import re
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from recon.atomic import atomic_write
from recon.errors import ConfigError

from .results import write_result

__all__ = ["PAPER_WAYS", "PAPER_SHOTS", "PAPER_FOLDS", "fold_path", "load_fold", "run_grid", "summarize",
           "format_table", "write_fewshot_pickles", "frozen_backbone", "parse_folds"]

log = logging.getLogger("recon.eval")

PAPER_WAYS, PAPER_SHOTS, PAPER_FOLDS = (5, 10), (10, 20), tuple(range(10))


def fold_path(out_dir, way: int, shot: int, fold: int) -> Path:
    """Where one fold's result JSON lives."""
    return Path(out_dir) / f"{way}way_{shot}shot" / f"fold{fold}.json"


def load_fold(path: Path) -> dict | None:
    """A finished fold's result, or None if the file is missing or not a finished result."""
    try:
        res = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return res if isinstance(res, dict) and isinstance(res.get("acc"), (int, float)) else None


def run_grid(
    run_fold: Callable[[dict], dict],
    base_cfg: dict,
    out_dir,
    ways: Iterable[int] = PAPER_WAYS,
    shots: Iterable[int] = PAPER_SHOTS,
    folds: Iterable[int] = PAPER_FOLDS,
) -> dict:
    """Run every (way, shot, fold) not yet finished, then summarise.

    Args:
        run_fold: ``cfg -> dict(acc=% , ...)``; ``cfg`` is ``base_cfg`` plus ``way``, ``shot``, ``fold``,
            ``out_dir`` (a per-fold directory for its checkpoints/logs).
        base_cfg: settings shared by all folds (config, data root, pretrained checkpoint, seed).
        out_dir: results root; ``fold_path`` gives each fold's JSON.

    Returns:
        ``{"<way>way_<shot>shot": dict(mean, std, n, accs, folds)}`` (std over folds, ddof=0).
    """
    results: dict[tuple[int, int], dict[int, float]] = {}
    for way in ways:
        for shot in shots:
            for fold in folds:
                path = fold_path(out_dir, way, shot, fold)
                res = load_fold(path)
                if res is not None:
                    log.info(f"{way}-way {shot}-shot fold {fold}: done before ({res['acc']:.2f}%), skipped")
                else:
                    cfg = dict(base_cfg, way=way, shot=shot, fold=fold, out_dir=str(path.with_suffix("")))
                    t0 = time.perf_counter()
                    res = dict(run_fold(cfg))
                    if not isinstance(res.get("acc"), (int, float)) or math.isnan(res["acc"]):
                        raise ValueError(f"run_fold: expected dict(acc=<number>), got {res!r}")
                    res.update(way=way, shot=shot, fold=fold, seconds=time.perf_counter() - t0)
                    write_result(path, res)
                    log.info(f"{way}-way {shot}-shot fold {fold}: {res['acc']:.2f}%")
                results.setdefault((way, shot), {})[fold] = float(res["acc"])
    return summarize(results)


def summarize(results: dict[tuple[int, int], dict[int, float]]) -> dict:
    """Mean and population std (ddof=0) of the fold accuracies per (way, shot)."""
    summary = {}
    for (way, shot), per_fold in results.items():
        accs = np.array([per_fold[f] for f in sorted(per_fold)], dtype=np.float64)
        summary[f"{way}way_{shot}shot"] = dict(way=way, shot=shot, mean=float(accs.mean()), std=float(accs.std()),
                                               n=len(accs), folds=sorted(per_fold), accs=accs.tolist())
    return summary


def format_table(summary: dict) -> str:
    """Markdown table in the paper's layout: rows = way, columns = shot, cells 'mean ± std (n folds)'."""
    ways = sorted({v["way"] for v in summary.values()})
    shots = sorted({v["shot"] for v in summary.values()})
    lines = ["| | " + " | ".join(f"{s}-shot" for s in shots) + " |", "|---" * (len(shots) + 1) + "|"]
    for w in ways:
        cells = []
        for s in shots:
            v = summary.get(f"{w}way_{s}shot")
            cells.append(f"{v['mean']:.1f} ± {v['std']:.1f} ({v['n']} folds)" if v else "—")
        lines.append(f"| {w}-way | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_fewshot_pickles(train_set, test_set, out_root, way: int, shot: int, fold: int, n_test: int = 20,
                          seed: int = 0) -> Path:
    """Write one fold in the official pickle format from any labelled dataset.

    Draws ``way`` classes and, per class, ``shot`` train and ``n_test`` test clouds (seeded by
    ``seed``, ``way``, ``shot`` and ``fold``); labels are remapped to ``0..way-1`` as in the official
    pickles.  File: ``<out_root>/<way>way_<shot>shot/<fold>.pkl`` =
    ``{"train": [(points [N, 3] float32, label, name)], "test": [...]}``.
    """
    rng = np.random.default_rng([seed, way, shot, fold])

    def by_class(ds):
        groups: dict[int, list[int]] = {}
        for i in range(len(ds)):
            groups.setdefault(int(ds[i]["label"]), []).append(i)
        return groups

    train_idx, test_idx = by_class(train_set), by_class(test_set)
    usable = sorted(c for c in train_idx if len(train_idx[c]) >= shot and len(test_idx.get(c, [])) >= n_test)
    if len(usable) < way:
        raise ConfigError(f"way: only {len(usable)} classes have {shot} train and {n_test} test samples, need {way}")
    chosen = rng.choice(usable, size=way, replace=False)
    names = getattr(train_set, "classes", None)
    split = {"train": [], "test": []}
    for new_label, cls in enumerate(chosen.tolist()):
        for part, ds, pool, k in (("train", train_set, train_idx, shot), ("test", test_set, test_idx, n_test)):
            for i in rng.choice(pool[cls], size=k, replace=False).tolist():
                pts = np.asarray(ds[i]["points"], dtype=np.float32)[:, :3]
                name = names[cls] if names else str(cls)
                split[part].append((pts, new_label, name))
    path = Path(out_root) / f"{way}way_{shot}shot" / f"{fold}.pkl"

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            pickle.dump(split, f)

    atomic_write(str(path), write)  # a later run reads it back
    return path


def frozen_backbone(base: str = "recon_base", **kwargs):
    """The official ``linear`` / ``mlp3`` protocols: a registry classifier whose parameters train only
    if their name contains ``'cls'`` (``cls_token``, ``cls_pos``, the head), as the official runner
    freezes them; BatchNorm statistics still update in train mode.

    Used from a config as ``model: {name: "recon.eval.fewshot:frozen_backbone", base: recon_base,
    head: linear}`` (``mlp3`` = the full 3-layer head on the frozen backbone).
    """
    from recon.models import create_model

    model = create_model(base, **kwargs)
    for name, p in model.named_parameters():
        p.requires_grad_("cls" in name)
    return model


def parse_folds(text: str) -> list[int]:
    """``"0-9"`` / ``"0,3,5"`` / ``"4"`` -> list of fold numbers."""
    out = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ConfigError(f"folds: expected e.g. '0-9' or '0,1,2', got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        out.extend(range(lo, hi + 1))
    return out
