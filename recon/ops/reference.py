"""Plain-PyTorch versions of every ``recon.ops`` function, with identical signatures.

They are the oracle of the tests and the fallback when the compiled extension ``recon._C``
is missing. They follow the exact arithmetic of the kernels (``csrc/common/geometry.h``):

* squared distances are ``(dx*dx + dy*dy) + dz*dz``, each operation rounded on its own;
* float16 / bfloat16 inputs are computed in float32, float32 / float64 in themselves;
* orderings are by (distance, index): ties go to the lower index;
* a NaN distance counts as ``+inf`` for kNN and Chamfer (a NaN point is nobody's nearest
  neighbour while a finite one is left); in FPS a NaN propagates into the running distance
  and a point whose running distance is NaN is never selected.

Memory is O(B·M·N): fine as an oracle, not for large clouds.
"""

from __future__ import annotations

import torch

__all__ = [
    "furthest_point_sample",
    "gather_points",
    "knn",
    "group_points",
    "chamfer_distance",
    "ChamferDistanceL2",
    "ChamferDistanceL1",
    "ball_query",
]


def _acc(t: torch.Tensor) -> torch.Tensor:
    return t if t.dtype == torch.float64 else t.float()


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise squared distances ``[..., M, N]`` between ``a [..., M, 3]`` and ``b [..., N, 3]``."""
    d = a[..., :, None, :] - b[..., None, :, :]
    return (d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) + d[..., 2] * d[..., 2]


def furthest_point_sample(
    xyz: torch.Tensor,
    npoint: int,
    start_idx: int = 0,
    *,
    lengths: torch.Tensor | None = None,
    counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Farthest point sampling by a loop over ``npoint``, vectorised over the batch.

    Args:
        xyz: ``(B, N, 3)`` floating point cloud.
        npoint: number of points to select, ``1 <= npoint <= N``.
        start_idx: index of the first selected point.
        lengths, counts: optional ``(B,)``: cloud ``b`` is its first ``lengths[b]`` points and
            gets ``min(counts[b], lengths[b])`` samples (run on its own slice), then -1.

    Returns:
        ``(B, npoint)`` int64 indices into ``N``.
    """
    if lengths is not None or counts is not None:
        out = torch.full((xyz.shape[0], npoint), -1, dtype=torch.long, device=xyz.device)
        for b in range(xyz.shape[0]):
            n = int(lengths[b]) if lengths is not None else xyz.shape[1]
            c = min(int(counts[b]) if counts is not None else npoint, n)
            if c > 0:
                out[b, :c] = furthest_point_sample(xyz[b : b + 1, :n], c, start_idx)[0]
        return out
    B, N, _ = xyz.shape
    p = _acc(xyz)
    idx = torch.empty(B, npoint, dtype=torch.long, device=xyz.device)
    if B == 0 or npoint == 0:
        return idx
    mind = torch.full((B, N), float("inf"), dtype=p.dtype, device=xyz.device)
    batch = torch.arange(B, device=xyz.device)
    last = torch.full((B,), start_idx, dtype=torch.long, device=xyz.device)
    idx[:, 0] = last
    neg_inf = torch.tensor(float("-inf"), dtype=p.dtype, device=xyz.device)
    for i in range(1, npoint):
        c = p[batch, last][:, None, :]  # (B, 1, 3)
        d = p - c
        d = (d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) + d[..., 2] * d[..., 2]
        mind = torch.where((d < mind) | torch.isnan(d), d, mind)
        key = torch.where(torch.isnan(mind), neg_inf, mind)
        last = torch.argmax(key, dim=1)  # first maximum: ties -> lowest index; all -inf -> 0
        idx[:, i] = last
    return idx


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points [B, N, C]``, ``idx [B, M]`` -> ``[B, M, C]`` with ``out[b, m] = points[b, idx[b, m]]``."""
    C = points.shape[-1]
    return torch.gather(points, 1, idx[..., None].expand(-1, -1, C))


def group_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``points [B, N, C]``, ``idx [B, M, k]`` -> ``[B, M, k, C]``."""
    B, M, k = idx.shape
    return gather_points(points, idx.reshape(B, M * k)).reshape(B, M, k, points.shape[-1])


def knn(
    query: torch.Tensor,
    ref: torch.Tensor,
    k: int,
    *,
    query_lengths: torch.Tensor | None = None,
    ref_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact kNN of every query point among the reference points.

    Returns:
        ``dist2 [B, M, k]`` (squared distances, ascending, in the input dtype) and
        ``idx [B, M, k]`` int64 (ties -> lower index). With lengths, each cloud is searched on
        its own slice; rows of padded queries and slots past a cloud's length are
        ``(0, -1)``.
    """
    if query_lengths is not None or ref_lengths is not None:
        return _per_cloud(
            lambda q, r: knn(q, r, min(k, r.shape[1])) if r.shape[1] else None,
            (query, query_lengths), (ref, ref_lengths), (query.shape[1], k), query.dtype,
        )
    d = _sq_dist(_acc(query), _acc(ref))
    d = torch.nan_to_num(d, nan=float("inf"), posinf=float("inf"))
    dist, idx = torch.sort(d, dim=-1, stable=True)
    return dist[..., :k].to(query.dtype), idx[..., :k].contiguous()


def _nearest(d: torch.Tensor) -> torch.Tensor:
    """Index of the first minimum along the last dim, NaN counting as +inf."""
    d = torch.nan_to_num(d, nan=float("inf"), posinf=float("inf"))
    m = d.min(dim=-1, keepdim=True).values
    hit = d == m
    return hit.to(torch.uint8).argmax(dim=-1)  # first True


def chamfer_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    x_lengths: torch.Tensor | None = None,
    y_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared nearest-neighbour distances both ways, differentiable in ``x`` and ``y``.

    Returns:
        ``d_xy [B, N]``, ``d_yx [B, M]`` (input dtype), ``idx_xy [B, N]``, ``idx_yx [B, M]``
        (int64). With lengths each cloud pair is computed on its slices; padded rows (and all
        rows when the other cloud is empty) are ``(0, -1)``.
    """
    if x_lengths is not None or y_lengths is not None:
        def one(a: torch.Tensor, b: torch.Tensor):
            if not (a.shape[1] and b.shape[1]):
                return None
            d_ab, d_ba, i_ab, i_ba = chamfer_distance(a, b)
            return d_ab[..., None], i_ab[..., None]

        d_xy, i_xy = _per_cloud(one, (x, x_lengths), (y, y_lengths), (x.shape[1], 1), x.dtype)
        d_yx, i_yx = _per_cloud(one, (y, y_lengths), (x, x_lengths), (y.shape[1], 1), y.dtype)
        return d_xy[..., 0], d_yx[..., 0], i_xy[..., 0], i_yx[..., 0]
    xa, ya = _acc(x), _acc(y)
    with torch.no_grad():
        d = _sq_dist(xa, ya)
        idx_xy = _nearest(d) if d.shape[-1] else d.new_zeros(d.shape[:-1], dtype=torch.long)
        idx_yx = (
            _nearest(d.transpose(1, 2))
            if d.shape[-2]
            else d.new_zeros((d.shape[0], d.shape[-1]), dtype=torch.long)
        )

    def directed(a: torch.Tensor, b: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        diff = a - gather_points(b, idx)
        return (diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]) + diff[..., 2] * diff[..., 2]

    d_xy = directed(xa, ya, idx_xy).to(x.dtype)
    d_yx = directed(ya, xa, idx_yx).to(y.dtype)
    return d_xy, d_yx, idx_xy, idx_yx


class ChamferDistanceL2(torch.nn.Module):
    """``mean(d_xy) + mean(d_yx)`` (the official ``cdl2``)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d_xy, d_yx, _, _ = chamfer_distance(x, y)
        return d_xy.mean() + d_yx.mean()


class ChamferDistanceL1(torch.nn.Module):
    """``(mean(sqrt(d_xy)) + mean(sqrt(d_yx))) / 2`` (the official ``cdl1``)."""

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d_xy, d_yx, _, _ = chamfer_distance(x, y)
        return (d_xy.sqrt().mean() + d_yx.sqrt().mean()) / 2


def _valid(lengths: torch.Tensor | None, B: int, n: int, device: torch.device) -> torch.Tensor:
    """``(B, n)`` bool: position ``i`` of cloud ``b`` is inside its length (all True without)."""
    ar = torch.arange(n, device=device)[None, :].expand(B, n)
    return ar < lengths.to(device)[:, None] if lengths is not None else torch.ones_like(ar, dtype=torch.bool)


def ball_query(
    query: torch.Tensor,
    ref: torch.Tensor,
    radius: float,
    k: int,
    *,
    query_lengths: torch.Tensor | None = None,
    ref_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``k`` reference points in index order with ``dist2 < radius**2``.

    Returns:
        ``dist2 [B, M, k]`` (input dtype, 0 in unused slots) and ``idx [B, M, k]`` int64
        (ascending, -1 in unused slots).
    """
    B, M, _ = query.shape
    N = ref.shape[1]
    qa, ra = _acc(query), _acc(ref)
    d = _sq_dist(qa, ra)
    r2 = torch.tensor(radius * radius, dtype=qa.dtype, device=qa.device)
    hit = (d < r2) & _valid(ref_lengths, B, N, d.device)[:, None, :]
    hit = hit & _valid(query_lengths, B, M, d.device)[:, :, None]
    ar = torch.arange(N, device=d.device)
    key, pos = torch.sort(torch.where(hit, ar, ar + N), dim=-1)  # hits first, by index
    kk = min(k, N)
    ok, pos = key[..., :kk] < N, pos[..., :kk]
    dist = torch.where(ok, torch.gather(d, -1, pos), torch.zeros((), dtype=d.dtype, device=d.device))
    idx = torch.where(ok, pos, torch.full_like(pos, -1))
    if k > N:
        dist = torch.nn.functional.pad(dist, (0, k - N))
        idx = torch.nn.functional.pad(idx, (0, k - N), value=-1)
    return dist.to(query.dtype), idx


def _per_cloud(fn, a, b, shape: tuple[int, int], dtype: torch.dtype):
    """Runs ``fn(a_b, b_b)`` on every cloud's slices (``(points, lengths)`` pairs) and pads the
    ``(1, rows, slots)`` results into ``(B, *shape)`` with distance 0 and index -1."""
    (pa, la), (pb, lb) = a, b
    B = pa.shape[0]
    dist = pa.new_zeros((B, *shape), dtype=dtype)
    idx = torch.full((B, *shape), -1, dtype=torch.long, device=pa.device)
    for i in range(B):
        na = int(la[i]) if la is not None else pa.shape[1]
        nb = int(lb[i]) if lb is not None else pb.shape[1]
        out = fn(pa[i : i + 1, :na], pb[i : i + 1, :nb])
        if out is not None and na:
            d, j = out
            dist[i, :na, : d.shape[-1]] = d[0]
            idx[i, :na, : j.shape[-1]] = j[0]
    return dist, idx
