"""``pointnet2_ops.pointnet2_utils`` on recon's kernels (CPU and CUDA, any float dtype).

Same names, arguments and layouts: points ``(B, N, 3)``, features channel-first ``(B, C, N)``,
indices int32. Differences in results (the origin skip of pointnet2's FPS, the boundary of the
ball) are listed in docs/ops.md ("switching from pointnet2_ops").
"""

from __future__ import annotations

import torch

from ..ball_query import ball_query as _ball_query
from ..fps import furthest_point_sample as _fps
from ..knn import knn as _knn

__all__ = [
    "furthest_point_sample",
    "gather_operation",
    "three_nn",
    "three_interpolate",
    "grouping_operation",
    "ball_query",
    "QueryAndGroup",
    "GroupAll",
]


def furthest_point_sample(xyz: torch.Tensor, npoint: int) -> torch.Tensor:
    """``(B, N, 3)`` -> ``(B, npoint)`` int32 indices, starting at index 0."""
    return _fps(xyz, npoint, 0).int()


def _channel_gather(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``features (B, C, N)``, ``idx (B, ...)`` -> ``(B, C, ...)``, differentiable in features."""
    if features.dim() != 3 or idx.shape[0] != features.shape[0]:
        raise ValueError(
            f"features must be (B, C, N) and idx (B, ...) with one B, got {tuple(features.shape)} and {tuple(idx.shape)}"
        )
    B, C, _ = features.shape
    flat = idx.reshape(B, 1, -1).long().expand(-1, C, -1)
    return torch.gather(features, 2, flat).reshape(B, C, *idx.shape[1:])


def gather_operation(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``features (B, C, N)``, ``idx (B, npoint)`` -> ``(B, C, npoint)``."""
    return _channel_gather(features, idx)


def grouping_operation(features: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``features (B, C, N)``, ``idx (B, npoint, nsample)`` -> ``(B, C, npoint, nsample)``."""
    return _channel_gather(features, idx)


def three_nn(unknown: torch.Tensor, known: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 3 nearest ``known`` points of every ``unknown`` point.

    Returns ``(dist (B, n, 3), idx (B, n, 3) int32)``: Euclidean distances (the square root of
    the squared ones), ascending, ties to the lower index. With fewer than 3 known points the
    missing slots are ``(inf, 0)``.
    """
    k = min(3, known.shape[1]) if known.dim() == 3 else 3
    dist2, idx = _knn(unknown, known, k)
    if k < 3:
        dist2 = torch.nn.functional.pad(dist2, (0, 3 - k), value=float("inf"))
        idx = torch.nn.functional.pad(idx, (0, 3 - k), value=0)
    return dist2.sqrt(), idx.int()


def three_interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``sum_j weight[b, n, j] * features[b, :, idx[b, n, j]]``: ``(B, c, m)`` -> ``(B, c, n)``.

    Differentiable in ``features`` and in ``weight``.
    """
    if weight.shape != idx.shape or idx.dim() != 3:
        raise ValueError(f"idx and weight must both be (B, n, 3), got {tuple(idx.shape)} and {tuple(weight.shape)}")
    grouped = _channel_gather(features, idx)  # (B, c, n, 3)
    return (grouped * weight[:, None].to(grouped.dtype)).sum(-1)


def ball_query(radius: float, nsample: int, xyz: torch.Tensor, new_xyz: torch.Tensor) -> torch.Tensor:
    """``(B, npoint, nsample)`` int32: the first ``nsample`` points of ``xyz`` (index order)
    within ``radius`` of each ``new_xyz`` point; unused slots repeat the first hit, and a ball
    without any point is all 0."""
    _, idx = _ball_query(new_xyz, xyz, radius, nsample)
    first = idx[..., :1].clamp_min(0)
    return torch.where(idx >= 0, idx, first).int()


class QueryAndGroup(torch.nn.Module):
    """Ball query + grouping: ``forward(xyz (B, N, 3), new_xyz (B, npoint, 3), features (B, C, N))``
    -> ``(B, 3 + C, npoint, nsample)`` (relative xyz first when ``use_xyz``)."""

    def __init__(self, radius: float, nsample: int, use_xyz: bool = True):
        super().__init__()
        self.radius, self.nsample, self.use_xyz = radius, nsample, use_xyz

    def forward(self, xyz: torch.Tensor, new_xyz: torch.Tensor, features: torch.Tensor | None = None) -> torch.Tensor:
        idx = ball_query(self.radius, self.nsample, xyz, new_xyz)
        grouped_xyz = grouping_operation(xyz.transpose(1, 2), idx) - new_xyz.transpose(1, 2)[..., None]
        if features is None:
            if not self.use_xyz:
                raise ValueError("QueryAndGroup needs features when use_xyz=False")
            return grouped_xyz
        grouped = grouping_operation(features, idx)
        return torch.cat([grouped_xyz, grouped], dim=1) if self.use_xyz else grouped


class GroupAll(torch.nn.Module):
    """Everything in one group: ``forward(xyz (B, N, 3), new_xyz (ignored), features (B, C, N))``
    -> ``(B, 3 + C, 1, N)`` (absolute xyz first when ``use_xyz``)."""

    def __init__(self, use_xyz: bool = True):
        super().__init__()
        self.use_xyz = use_xyz

    def forward(self, xyz: torch.Tensor, new_xyz: torch.Tensor | None = None, features: torch.Tensor | None = None) -> torch.Tensor:
        grouped_xyz = xyz.transpose(1, 2)[:, :, None, :]
        if features is None:
            return grouped_xyz
        grouped = features[:, :, None, :]
        return torch.cat([grouped_xyz, grouped], dim=1) if self.use_xyz else grouped
