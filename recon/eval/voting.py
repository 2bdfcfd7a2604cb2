"""Test-time voting and seed statistics for ``recon test`` (RECON_FACTS.md §9, "Voting").

The honest default is ONE pass of 10 votes with a fixed seed: FPS each cloud to ``point_all``, then
for every vote take a random ``npoints`` subset, apply the dataset's test transform, and average the
logits.  ``official_voting`` reproduces the official ``test()``: it repeats that pass 299 times and
reports the MAXIMUM accuracy, an optimistic number (the best of 299 random draws on the test set).
``seed_summary`` gives mean +- std over finetuning seeds (the README instead picks the best of 8).
"""

from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch

from .common import log

OFFICIAL_PASSES = 299  # official test(): for i in range(1, 300)
OFFICIAL_VOTES = 10


def point_all(npoints: int, n_available: int) -> int:
    """Official pre-vote FPS size: 1200/2400/4800/8192 for 1024/2048/4096/8192 points, capped at N."""
    table = {1024: 1200, 2048: 2400, 4096: 4800, 8192: 8192}
    if npoints not in table:
        raise ValueError(f"npoints: expected one of {sorted(table)}, got {npoints}")
    return min(table[npoints], n_available)


def scale_per_axis(points: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Official ModelNet test transform ``PointcloudScale``: per-sample per-axis scale U[2/3, 3/2]."""
    s = torch.rand(points.shape[0], 1, 3, generator=generator) * (3 / 2 - 2 / 3) + 2 / 3
    return points * s.to(points)


def rotate_y(points: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Official ScanObjectNN-hardest test transform ``PointcloudRotate``: per-sample angle about y."""
    a = torch.rand(points.shape[0], generator=generator) * 2 * math.pi
    c, s, z, o = a.cos(), a.sin(), torch.zeros_like(a), torch.ones_like(a)
    rot = torch.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(-1, 3, 3).to(points)
    return points @ rot


# Test transform per dataset (official test_vote); None = no transform.
VOTE_TRANSFORMS: dict[str, Callable | None] = {
    "modelnet10": scale_per_axis, "modelnet40": scale_per_axis, "scan_hardest": rotate_y,
    "scan_objbg": None, "scan_objonly": None, "synthetic": scale_per_axis,
}


@torch.no_grad()
def vote_logits(model, points: torch.Tensor, npoints: int, votes: int = OFFICIAL_VOTES,
                transform: Callable | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean logits over ``votes`` random ``npoints`` subsets of the FPS'd cloud.

    Args:
        model: classifier, ``[B, npoints, 3] -> [B, K]`` logits.
        points: ``[B, N, 3]``.

    Returns:
        ``[B, K]`` averaged logits.
    """
    from .common import fps_points

    if votes < 1:
        raise ValueError(f"votes: expected >= 1, got {votes}")
    base = fps_points(points, point_all(npoints, points.shape[1]))
    total = None
    for _ in range(votes):
        idx = torch.stack([torch.randperm(base.shape[1], generator=generator)[:npoints] for _ in range(base.shape[0])])
        pts = torch.gather(base, 1, idx.to(base.device)[..., None].expand(-1, -1, 3))
        if transform is not None:
            pts = transform(pts, generator=generator)
        logits = model(pts).float()
        total = logits if total is None else total + logits
    return total / votes


def vote_accuracy(model, batches: Iterable, npoints: int, votes: int = OFFICIAL_VOTES,
                  transform: Callable | None = None, generator: torch.Generator | None = None) -> float:
    """Accuracy (%) of one voting pass over ``(points, labels)`` batches."""
    model.eval()
    correct = total = 0
    for points, labels in batches:
        pred = vote_logits(model, points, npoints, votes, transform, generator).argmax(-1).cpu()
        correct += int((pred == labels).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("dataset: no samples to evaluate")
    return 100.0 * correct / total


def official_voting(model, make_batches: Callable[[], Iterable], npoints: int, passes: int = OFFICIAL_PASSES,
                    votes: int = OFFICIAL_VOTES, transform: Callable | None = None, seed: int = 0) -> dict:
    """The official protocol: ``passes`` voting passes, report the MAXIMUM (said loudly).

    Returns:
        ``dict(acc=max, mean, std, passes, accs)``; ``acc`` is the official (optimistic) figure.
    """
    log(f"OFFICIAL VOTING: best of {passes} passes x {votes} votes on the test set -- an optimistic "
        "maximum over random draws, not a single-pass accuracy")
    gen = torch.Generator().manual_seed(seed)
    accs = [vote_accuracy(model, make_batches(), npoints, votes, transform, gen) for _ in range(passes)]
    arr = np.asarray(accs)
    return dict(acc=float(arr.max()), mean=float(arr.mean()), std=float(arr.std()), passes=passes, accs=accs)


def seed_summary(accs: Iterable[float]) -> dict:
    """Mean, population std, min and max of per-seed accuracies (``--seeds N``)."""
    arr = np.asarray(list(accs), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("accs: expected at least one accuracy")
    return dict(mean=float(arr.mean()), std=float(arr.std()), min=float(arr.min()), max=float(arr.max()),
                n=int(arr.size))
