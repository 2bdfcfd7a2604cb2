"""``pytorch3d.ops`` on recon's kernels: ``knn_points``, ``knn_gather``, ``sample_farthest_points``,
``ball_query``, ``chamfer_distance``.

Same names, arguments, shapes and padding as pytorch3d. Points must be 3-D (pytorch3d accepts
any D) and plain tensors (no ``Pointclouds``); ``norm=1`` is not supported. Differences in
results are listed in docs/ops.md ("switching from pytorch3d").
"""

from __future__ import annotations

from collections import namedtuple
from typing import Sequence

import torch

from ..ball_query import ball_query as _ball_query
from ..chamfer import chamfer_distance as _chamfer
from ..fps import furthest_point_sample as _fps
from ..knn import knn as _knn
from ._random_start import fps_random_starts

__all__ = ["knn_points", "knn_gather", "sample_farthest_points", "ball_query", "chamfer_distance"]

_KNN = namedtuple("KNN", "dists idx knn")


def _norm2(norm: int) -> None:
    if norm != 2:
        raise ValueError(f"norm must be 2 (squared L2); recon has no L1 kNN, got norm={norm}")


def _pad_last(t: torch.Tensor, k: int, value) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, k - t.shape[-1]), value=value) if t.shape[-1] < k else t


def knn_gather(x: torch.Tensor, idx: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """``x (N, M, U)``, ``idx (N, L, K)`` -> ``(N, L, K, U)``; slots ``k >= lengths[n]`` are 0."""
    if x.dim() != 3 or idx.dim() != 3 or x.shape[0] != idx.shape[0]:
        raise ValueError(f"x must be (N, M, U) and idx (N, L, K) with one N, got {tuple(x.shape)}, {tuple(idx.shape)}")
    N, L, K = idx.shape
    U = x.shape[-1]
    safe = idx.clamp(0, max(x.shape[1] - 1, 0)).long()
    out = torch.gather(x, 1, safe.reshape(N, L * K, 1).expand(-1, -1, U)).reshape(N, L, K, U)
    if lengths is not None:
        empty = torch.arange(K, device=x.device)[None, :] >= lengths.to(x.device)[:, None]  # (N, K)
        out = out.masked_fill(empty[:, None, :, None], 0.0)
    return out


def knn_points(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor | None = None,
    lengths2: torch.Tensor | None = None,
    norm: int = 2,
    K: int = 1,
    version: int = -1,
    return_nn: bool = False,
    return_sorted: bool = True,
) -> _KNN:
    """``K`` nearest neighbours in ``p2`` of every point of ``p1`` (pytorch3d's ``knn_points``).

    Returns ``KNN(dists (N, P1, K), idx (N, P1, K), knn (N, P1, K, 3) or None)``: squared
    distances ascending, ties to the lower index (also with ``return_sorted=False``); padded
    with zeros (``dists`` and ``idx``) where a cloud of ``p2`` has fewer than ``K`` points and
    where a cloud of ``p1`` ends. ``version`` is ignored.
    """
    _norm2(norm)
    kk = min(K, p2.shape[1]) if p2.dim() == 3 else K
    dists, idx = _knn(p1, p2, kk, query_lengths=lengths1, ref_lengths=lengths2)
    dists, idx = _pad_last(dists, K, 0.0), _pad_last(idx, K, -1)
    idx = idx.clamp_min(0)
    nn = knn_gather(p2, idx, lengths2) if return_nn else None
    if return_nn and lengths1 is not None:
        nn = nn.masked_fill((torch.arange(p1.shape[1], device=p1.device)[None, :] >= lengths1[:, None])[..., None, None], 0.0)
    return _KNN(dists=dists, idx=idx, knn=nn)


def ball_query(
    p1: torch.Tensor,
    p2: torch.Tensor,
    lengths1: torch.Tensor | None = None,
    lengths2: torch.Tensor | None = None,
    K: int = 500,
    radius: float = 0.2,
    return_nn: bool = True,
) -> _KNN:
    """The first ``K`` points of ``p2`` (in index order) within ``radius`` of each point of ``p1``.

    Returns ``KNN(dists, idx, knn)``: ``dists (N, P1, K)`` squared distances (0 where unused),
    ``idx (N, P1, K)`` (-1 where unused), ``knn (N, P1, K, 3)`` (0 where unused) or None.
    """
    dists, idx = _ball_query(
        p1, p2, radius, K, query_lengths=lengths1, ref_lengths=lengths2
    )
    nn = None
    if return_nn:
        nn = knn_gather(p2, idx).masked_fill((idx < 0)[..., None], 0.0)
    return _KNN(dists=dists, idx=idx, knn=nn)


def sample_farthest_points(
    points: torch.Tensor,
    lengths: torch.Tensor | None = None,
    K: int | Sequence[int] | torch.Tensor = 50,
    random_start_point: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Farthest point sampling of ``K`` points per cloud (pytorch3d's ``sample_farthest_points``).

    ``K`` is an int or one count per cloud. Returns ``(sampled (N, max K, 3), idx (N, max K))``;
    a cloud with fewer than ``K`` points gets all of them, the rest of its row is ``idx = -1``
    and points 0. Starts at index 0, or at a uniformly random point of each cloud with
    ``random_start_point`` (drawn from torch's global generator).
    """
    if points.dim() != 3:
        raise ValueError(f"points must have shape (N, P, 3), got {tuple(points.shape)}")
    N, P = points.shape[0], points.shape[1]
    counts = None
    if isinstance(K, int):
        kmax = K
    else:
        counts = torch.as_tensor(K, dtype=torch.long, device=points.device)
        if counts.shape != (N,):
            raise ValueError(f"K must be an int or hold one count per cloud ({N}), got {tuple(counts.shape)}")
        kmax = int(counts.max()) if N else 0
    if kmax < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    npoint = min(kmax, P)
    if counts is not None:
        counts = counts.clamp(max=npoint)
    if random_start_point:
        lens = lengths if lengths is not None else torch.full((N,), P, dtype=torch.long)
        cnt = counts if counts is not None else torch.full((N,), npoint, dtype=torch.long)
        idx = torch.full((N, npoint), -1, dtype=torch.long, device=points.device)
        for b, row in enumerate(fps_random_starts(points, lens, cnt)):
            idx[b, : row.shape[0]] = row
    else:
        idx = _fps(points, npoint, 0, lengths=lengths, counts=counts)
    idx = _pad_last(idx, kmax, -1)
    sampled = knn_gather(points, idx[..., None])[..., 0, :].masked_fill((idx < 0)[..., None], 0.0)
    return sampled, idx


_REDUCTIONS = ("mean", "sum", "max", None)


def chamfer_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    x_lengths: torch.Tensor | None = None,
    y_lengths: torch.Tensor | None = None,
    x_normals: torch.Tensor | None = None,
    y_normals: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    batch_reduction: str | None = "mean",
    point_reduction: str | None = "mean",
    norm: int = 2,
    single_directional: bool = False,
    abs_cosine: bool = True,
):
    """Chamfer distance with pytorch3d's reductions (``chamfer_distance``).

    Per point: the squared distance to the nearest point of the other cloud (and, with normals,
    ``1 - |cos|`` (or ``1 - cos`` when ``abs_cosine=False``) between the two normals). Points
    past a cloud's length contribute 0. ``point_reduction``: "mean" (over each cloud's length),
    "sum", "max" (not with normals) or None (per-point values, no batch reduction);
    ``batch_reduction``: "mean" (over the batch, or by ``weights.sum()``), "sum" or None.
    ``single_directional`` keeps only x -> y.

    Returns:
        ``(loss, loss_normals)`` (``loss_normals`` None without normals). Both directions are
        added ("max": their maximum, the Hausdorff distance). With ``point_reduction=None``
        each is a pair ``(per point of x (N, P1), per point of y (N, P2))``, or only the x part
        when single-directional.
    """
    _norm2(norm)
    if point_reduction not in _REDUCTIONS:
        raise ValueError(f"point_reduction must be one of {_REDUCTIONS}, got {point_reduction!r}")
    if batch_reduction not in ("mean", "sum", None):
        raise ValueError(f"batch_reduction must be 'mean', 'sum' or None, got {batch_reduction!r}")
    if point_reduction is None and batch_reduction is not None:
        raise ValueError("batch_reduction must be None when point_reduction is None")
    normals = x_normals is not None or y_normals is not None
    if normals and (x_normals is None or y_normals is None):
        raise ValueError("give both x_normals and y_normals, or neither")
    if normals and point_reduction == "max":
        raise ValueError("point_reduction='max' does not support normals")
    N, P1, P2 = x.shape[0], x.shape[1], y.shape[1]
    d_xy, d_yx, i_xy, i_yx = _chamfer(x, y, x_lengths=x_lengths, y_lengths=y_lengths)
    lx = x_lengths if x_lengths is not None else torch.full((N,), P1, dtype=torch.long, device=x.device)
    ly = y_lengths if y_lengths is not None else torch.full((N,), P2, dtype=torch.long, device=x.device)
    if weights is not None:
        if weights.shape != (N,):
            raise ValueError(f"weights must have shape (N,) = ({N},), got {tuple(weights.shape)}")
        d_xy, d_yx = d_xy * weights[:, None], d_yx * weights[:, None]

    def cos_term(na, nb, idx):
        nb_at = knn_gather(nb, idx.clamp_min(0)[..., None])[..., 0, :]
        cos = torch.nn.functional.cosine_similarity(na, nb_at, dim=-1, eps=1e-6)
        t = 1 - (cos.abs() if abs_cosine else cos)
        t = t.masked_fill(idx < 0, 0.0)
        return t * weights[:, None] if weights is not None else t

    n_xy = cos_term(x_normals, y_normals, i_xy) if normals else None
    n_yx = cos_term(y_normals, x_normals, i_yx) if normals else None

    def reduce(v, lengths):  # over the points of each cloud
        if v is None or point_reduction is None:
            return v
        if point_reduction == "max":
            return v.max(1).values if v.shape[1] else v.new_zeros(v.shape[0])
        r = v.sum(1)
        return r / lengths.clamp(min=1).to(r.dtype) if point_reduction == "mean" else r

    cx, cy = reduce(d_xy, lx), reduce(d_yx, ly)
    nx, ny = reduce(n_xy, lx), reduce(n_yx, ly)
    if single_directional:
        loss, loss_n = cx, nx
    elif point_reduction == "max":
        loss, loss_n = torch.maximum(cx, cy), None
    elif point_reduction is not None:
        loss, loss_n = cx + cy, (nx + ny if normals else None)
    else:
        loss, loss_n = (cx, cy), ((nx, ny) if normals else None)
    if batch_reduction is None:
        return loss, loss_n

    def over_batch(v):
        if v is None:
            return None
        v = v.sum()
        if batch_reduction == "mean":
            if weights is None:
                return v / max(N, 1)
            total = weights.sum()
            return v / torch.where(total == 0, torch.ones_like(total), total)
        return v

    return over_batch(loss), over_batch(loss_n)
