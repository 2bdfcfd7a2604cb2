"""Ball query: the first ``k`` reference points (in index order) inside a radius."""

from __future__ import annotations

import math

import torch

from . import _backend, _checks, reference
from ._grad import gathered_dist2_backward

__all__ = ["ball_query"]


def ball_query(
    query: torch.Tensor,
    ref: torch.Tensor,
    radius: float,
    k: int,
    *,
    query_lengths: torch.Tensor | None = None,
    ref_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For every query point, the first ``k`` reference points with ``dist2 < radius**2``.

    "First" is in index order, not by distance (what PointNet++ grouping and pytorch3d's
    ``ball_query`` return). Exact: on CPU a uniform grid or an early-stopping scan, chosen per
    cloud; on CUDA a tiled scan. Identical results on both.

    Args:
        query: ``(B, M, 3)`` query points, float16 / bfloat16 / float32 / float64, cpu or cuda.
        ref: ``(B, N, 3)`` reference points, same dtype, device and ``B``; ``N >= 1``.
        radius: ball radius, a positive finite number; ``radius**2`` (a Python float) is rounded
            once to the computation dtype (float32 for half types) and compared with ``<``.
        k: slots per query, ``k >= 1`` (may exceed ``N``).
        query_lengths: optional int64 ``(B,)``: cloud ``b`` has ``query_lengths[b]`` valid
            queries; the rows past it are all padding.
        ref_lengths: optional int64 ``(B,)``: only the first ``ref_lengths[b]`` reference points
            of cloud ``b`` are searched.

    Returns:
        ``dist2`` ``(B, M, k)`` squared distances ``(dx*dx + dy*dy) + dz*dz`` in the input dtype,
        differentiable in ``query`` and ``ref``; ``idx`` ``(B, M, k)`` int64, ascending. Unused
        slots (fewer than ``k`` hits, padded queries) have ``idx = -1`` and ``dist2 = 0``.
        A query or reference point with a NaN or infinite coordinate is never inside a ball.

    Raises:
        TypeError: non-floating points, dtype mismatch, ``radius``/``k`` of the wrong type,
            lengths not integer.
        ValueError: shapes, batch or device mismatch, ``radius <= 0``, ``k < 1``, lengths
            outside ``[0, N]`` (resp. ``[0, M]``).

    Example:
        >>> xyz = torch.rand(2, 1024, 3)
        >>> centers = xyz[:, :64]
        >>> dist2, idx = ball_query(centers, xyz, 0.2, 32)   # idx[b, m, 0] == m here
    """
    _checks.points(query, "query", "(B, M, 3)")
    _checks.points(ref, "ref", "(B, N, 3)")
    _checks.pair(query, "query", ref, "ref")
    radius = _radius(radius)
    _checks.integer(k, "k", 1, 2**31 - 2, "k >= 1")
    B = query.shape[0]
    _checks.lengths(query_lengths, "query_lengths", B, query.shape[1], query, "query")
    _checks.lengths(ref_lengths, "ref_lengths", B, ref.shape[1], ref, "ref")
    if _backend.use_kernels(query):
        return torch.ops.recon.ball_query(
            query.contiguous(), ref.contiguous(), radius, k, query_lengths, ref_lengths
        )
    return reference.ball_query(
        query, ref, radius, k, query_lengths=query_lengths, ref_lengths=ref_lengths
    )


def _radius(radius: object) -> float:
    if isinstance(radius, bool) or not isinstance(radius, (int, float, torch.SymFloat, torch.SymInt)):
        raise TypeError(f"radius must be a float, got {type(radius).__name__}")
    if isinstance(radius, (int, float)) and not (radius > 0 and math.isfinite(radius)):
        raise ValueError(f"radius must be positive and finite, got radius={radius}")
    return float(radius) if isinstance(radius, (int, float)) else radius


if _backend.HAVE_C:

    @torch.library.register_fake("recon::ball_query")
    def _ball_query_fake(query, ref, radius, k, lengths1=None, lengths2=None):
        B, M = query.shape[0], query.shape[1]
        return query.new_empty((B, M, k)), query.new_empty((B, M, k), dtype=torch.long)

    def _ball_query_setup_context(ctx, inputs, output) -> None:
        query, ref = inputs[0], inputs[1]
        ctx.save_for_backward(query, ref, output[1])

    def _ball_query_backward(ctx, grad_dist, grad_idx):
        query, ref, idx = ctx.saved_tensors
        grad_q, grad_r = gathered_dist2_backward(
            query, ref, idx, grad_dist, ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        )
        return grad_q, grad_r, None, None, None, None

    torch.library.register_autograd(
        "recon::ball_query", _ball_query_backward, setup_context=_ball_query_setup_context
    )
