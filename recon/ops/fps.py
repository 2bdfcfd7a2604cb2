"""Farthest point sampling (FPS)."""

from __future__ import annotations

import torch

from . import _backend, _checks, reference

__all__ = ["furthest_point_sample"]


def furthest_point_sample(xyz: torch.Tensor, npoint: int, start_idx: int = 0) -> torch.Tensor:
    """Farthest point sampling: ``npoint`` indices that spread over each cloud.

    Starts at ``start_idx`` (0 is what the official pointnet2_ops does), then repeatedly adds
    the point whose squared L2 distance to the already chosen set is largest; ties go to the
    lowest index. Exact and deterministic; identical on CPU and CUDA. Unlike pointnet2_ops it
    does not skip points near the origin.

    Args:
        xyz: ``(B, N, 3)`` points, float16 / bfloat16 / float32 / float64 (half types are
            computed in float32), on cpu or cuda, any strides. ``N >= 1``.
        npoint: number of points to pick, ``1 <= npoint <= N``.
        start_idx: the first pick, ``0 <= start_idx < N``.

    Returns:
        ``(B, npoint)`` int64 indices into ``N``, in selection order. ``B == 0`` gives an empty
        ``(0, npoint)`` tensor.

    NaN: a point with a NaN coordinate gets a NaN distance and is never picked (except as
    ``start_idx``); once every remaining candidate is NaN, index 0 is returned for the rest.
    Duplicates: once every distinct point is chosen all distances are 0 and index 0 repeats.

    Raises:
        TypeError: ``xyz`` is not a dense floating tensor, or ``npoint``/``start_idx`` not ints.
        ValueError: ``xyz`` is not ``(B, N, 3)`` with ``N >= 1``, or an int is out of range.

    Example:
        >>> xyz = torch.rand(2, 1024, 3)
        >>> idx = furthest_point_sample(xyz, 64)
        >>> centers = gather_points(xyz, idx)  # (2, 64, 3)
    """
    _checks.points(xyz, "xyz")
    n = xyz.shape[1]
    _checks.integer(npoint, "npoint", 1, n, f"1 <= npoint <= N (N={n})")
    _checks.integer(start_idx, "start_idx", 0, n - 1, f"0 <= start_idx < N (N={n})")
    if _backend.use_kernels(xyz):
        return torch.ops.recon.furthest_point_sample(xyz.contiguous(), npoint, start_idx)
    return reference.furthest_point_sample(xyz, npoint, start_idx)


if _backend.HAVE_C:

    @torch.library.register_fake("recon::furthest_point_sample")
    def _fps_fake(xyz: torch.Tensor, npoint: int, start_idx: int) -> torch.Tensor:
        return xyz.new_empty((xyz.shape[0], npoint), dtype=torch.long)
