"""Exact k nearest neighbours."""

from __future__ import annotations

import torch

from . import _backend, _checks, reference

__all__ = ["knn"]


def knn(query: torch.Tensor, ref: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` nearest reference points of every query point (exact, brute force).

    Args:
        query: ``(B, M, 3)`` query points, float16 / bfloat16 / float32 / float64, cpu or cuda;
            ``M >= 1``.
        ref: ``(B, N, 3)`` reference points, same dtype, device and ``B``; ``N >= 1``.
        k: number of neighbours, ``1 <= k <= N``.

    Returns:
        ``dist2`` ``(B, M, k)``: squared L2 distances ``(dx*dx + dy*dy) + dz*dz`` in the input
        dtype (computed in float32 for half types), ascending; differentiable in ``query`` and
        ``ref``. ``idx`` ``(B, M, k)`` int64 indices into ``N``; equal distances are ordered by
        index (lower first). ``B == 0`` gives empty tensors.

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
    if _backend.use_kernels(query):
        return torch.ops.recon.knn(query.contiguous(), ref.contiguous(), k)
    return reference.knn(query, ref, k)


if _backend.HAVE_C:

    @torch.library.register_fake("recon::knn")
    def _knn_fake(query: torch.Tensor, ref: torch.Tensor, k: int):
        B, M = query.shape[0], query.shape[1]
        return query.new_empty((B, M, k)), query.new_empty((B, M, k), dtype=torch.long)

    def _knn_setup_context(ctx, inputs, output) -> None:
        query, ref, _ = inputs
        _, idx = output
        ctx.save_for_backward(query, ref, idx)

    def _knn_backward(ctx, grad_dist, grad_idx):
        # dist2[b, m, j] = |q_m - r_idx|^2: d/dq = 2 g (q - r_idx), d/dr_idx = -2 g (q - r_idx).
        query, ref, idx = ctx.saved_tensors
        acc = torch.float64 if query.dtype == torch.float64 else torch.float32
        B, M, k = idx.shape
        q, r, g = query.to(acc), ref.to(acc), grad_dist.to(acc)
        nb = torch.gather(r, 1, idx.reshape(B, M * k, 1).expand(-1, -1, 3)).reshape(B, M, k, 3)
        t = (g + g)[..., None] * (q[:, :, None, :] - nb)
        grad_q = grad_r = None
        if ctx.needs_input_grad[0]:
            grad_q = t.sum(2).to(query.dtype)
        if ctx.needs_input_grad[1]:
            grad_r = torch.zeros_like(r).scatter_add(
                1, idx.reshape(B, M * k, 1).expand(-1, -1, 3), -t.reshape(B, M * k, 3)
            )
            grad_r = grad_r.to(ref.dtype)
        return grad_q, grad_r, None

    torch.library.register_autograd(
        "recon::knn", _knn_backward, setup_context=_knn_setup_context
    )
