"""Exact k nearest neighbours."""

from __future__ import annotations

import torch

from . import _backend, _checks, reference
from ._grad import gathered_dist2_backward

__all__ = ["knn"]


def knn(
    query: torch.Tensor,
    ref: torch.Tensor,
    k: int,
    *,
    query_lengths: torch.Tensor | None = None,
    ref_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest reference points of every query point (exact, brute force).

    Args:
        query: ``(B, M, 3)`` query points, float16 / bfloat16 / float32 / float64, cpu or cuda;
            ``M >= 1``.
        ref: ``(B, N, 3)`` reference points, same dtype, device and ``B``; ``N >= 1``.
        k: number of neighbours, ``1 <= k <= N``.
        query_lengths: optional int64 ``(B,)`` (ragged batch): only the first
            ``query_lengths[b]`` queries of cloud ``b`` are real; the other rows are padding.
        ref_lengths: optional int64 ``(B,)``: only the first ``ref_lengths[b]`` reference
            points of cloud ``b`` are searched (``k`` may exceed it).

    Returns:
        ``dist2`` ``(B, M, k)``: squared L2 distances ``(dx*dx + dy*dy) + dz*dz`` in the input
        dtype (computed in float32 for half types), ascending; differentiable in ``query`` and
        ``ref``. ``idx`` ``(B, M, k)`` int64 indices into ``N``; equal distances are ordered by
        index (lower first). ``B == 0`` gives empty tensors. With lengths, padded query rows and
        slots past a cloud's ``ref_lengths`` are ``dist2 = 0``, ``idx = -1``.

    NaN: a distance involving a NaN coordinate counts as ``+inf``: a NaN reference point comes
    after every finite one (in index order among the ``+inf``), and its ``dist2`` is ``inf``.

    Raises:
        TypeError: non-floating points, dtype mismatch, a sparse (non-strided) tensor, ``k``
            not an int.
        ValueError: shapes not ``(B, *, 3)``, batch or device mismatch, ``k`` outside ``[1, N]``.

    Example:
        >>> xyz = torch.rand(2, 1024, 3)
        >>> centers = gather_points(xyz, furthest_point_sample(xyz, 64))
        >>> dist2, idx = knn(centers, xyz, 32)   # (2, 64, 32) each; idx[..., 0] is the center
    """
    _checks.points(query, "query", "(B, M, 3)")
    _checks.points(ref, "ref", "(B, N, 3)")
    _checks.pair(query, "query", ref, "ref")
    n = ref.shape[1]
    _checks.integer(k, "k", 1, n, f"1 <= k <= N (N={n} reference points)")
    B = query.shape[0]
    _checks.lengths(query_lengths, "query_lengths", B, query.shape[1], query, "query")
    _checks.lengths(ref_lengths, "ref_lengths", B, n, ref, "ref")
    if _backend.use_kernels(query):
        return torch.ops.recon.knn(
            query.contiguous(), ref.contiguous(), k, query_lengths, ref_lengths
        )
    return reference.knn(query, ref, k, query_lengths=query_lengths, ref_lengths=ref_lengths)


if _backend.HAVE_C:

    @torch.library.register_fake("recon::knn")
    def _knn_fake(query: torch.Tensor, ref: torch.Tensor, k: int, lengths1=None, lengths2=None):
        B, M = query.shape[0], query.shape[1]
        return query.new_empty((B, M, k)), query.new_empty((B, M, k), dtype=torch.long)

    def _knn_setup_context(ctx, inputs, output) -> None:
        query, ref = inputs[0], inputs[1]
        _, idx = output
        ctx.save_for_backward(query, ref, idx)

    def _knn_backward(ctx, grad_dist, grad_idx):
        query, ref, idx = ctx.saved_tensors
        grad_q, grad_r = gathered_dist2_backward(
            query, ref, idx, grad_dist, ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        )
        return grad_q, grad_r, None, None, None

    torch.library.register_autograd(
        "recon::knn", _knn_backward, setup_context=_knn_setup_context
    )
