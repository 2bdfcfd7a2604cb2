"""Indexing points (or per-point features) with the indices that FPS and kNN return."""

from __future__ import annotations

import torch

from . import _checks

__all__ = ["gather_points", "group_points"]


def gather_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Picks rows of every cloud: ``out[b, m] = points[b, idx[b, m]]``.

    Plain ``torch.gather``: differentiable in ``points``, any dtype, cpu or cuda, traced by
    ``torch.compile``.

    Args:
        points: ``(B, N, C)`` points or features.
        idx: ``(B, M)`` int64 (or int32) indices in ``[0, N)``, same device and batch size.

    Returns:
        ``(B, M, C)`` tensor of ``points``' dtype.

    Raises:
        TypeError: ``idx`` is not an integer tensor, or a sparse (non-strided) argument.
        ValueError: wrong ranks, batch or device mismatch, or (on CPU) an index out of range.

    Example:
        >>> xyz = torch.rand(2, 1024, 3)
        >>> centers = gather_points(xyz, furthest_point_sample(xyz, 64))  # (2, 64, 3)
    """
    _checks.features(points, "points")
    _checks.indices(idx, "idx", 2, "(B, M)", points, "points")
    return torch.gather(points, 1, idx.long()[..., None].expand(-1, -1, points.shape[-1]))


def group_points(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Gathers a neighbourhood per query: ``out[b, m, j] = points[b, idx[b, m, j]]``.

    Args:
        points: ``(B, N, C)`` points or features.
        idx: ``(B, M, k)`` int64 (or int32) indices in ``[0, N)``, e.g. from :func:`knn`.

    Returns:
        ``(B, M, k, C)`` tensor of ``points``' dtype, differentiable in ``points``.

    Raises:
        TypeError: ``idx`` is not an integer tensor, or a sparse (non-strided) argument.
        ValueError: wrong ranks, batch or device mismatch, or (on CPU) an index out of range.

    Example:
        >>> xyz = torch.rand(2, 1024, 3)
        >>> centers = gather_points(xyz, furthest_point_sample(xyz, 64))
        >>> _, idx = knn(centers, xyz, 32)
        >>> groups = group_points(xyz, idx) - centers[:, :, None]  # (2, 64, 32, 3)
    """
    _checks.features(points, "points")
    _checks.indices(idx, "idx", 3, "(B, M, k)", points, "points")
    B, M, k = idx.shape
    flat = idx.long().reshape(B, M * k, 1).expand(-1, -1, points.shape[-1])
    return torch.gather(points, 1, flat).reshape(B, M, k, points.shape[-1])
