"""Inverse-distance interpolation from the nearest reference points (PointNet++ feature
propagation): ``out[m] = sum_j w_j f[idx_j] / sum_j w_j`` with ``w_j = 1 / (d_j + eps)``."""

from __future__ import annotations

import torch

from . import _checks
from .knn import knn

__all__ = ["inverse_distance_weights", "interpolate", "three_nn_interpolate"]


def inverse_distance_weights(
    dist2: torch.Tensor,
    idx: torch.Tensor | None = None,
    *,
    squared: bool = False,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Normalised weights ``w_j / sum_j w_j`` with ``w_j = 1 / (d_j + eps)``.

    Args:
        dist2: ``(B, M, k)`` squared distances (e.g. from :func:`recon.ops.knn`).
        idx: optional ``(B, M, k)`` indices; slots with ``idx < 0`` (padding) get weight 0.
        squared: ``d = dist2`` when True; ``d = sqrt(dist2)`` (Euclidean, PointNet++'s
            ``three_nn``) when False.
        eps: added to ``d`` before the reciprocal (keeps a coincident point finite).

    Returns:
        ``(B, M, k)`` weights in float32 (float64 for float64 input), summing to 1 over the
        last dim; a row without any valid slot is all zeros. Differentiable in ``dist2``.
    """
    acc = torch.float64 if dist2.dtype == torch.float64 else torch.float32
    d = dist2.to(acc)
    if not squared:
        d = d.clamp_min(0).sqrt()
    w = 1.0 / (d + eps)
    if idx is not None:
        w = torch.where(idx >= 0, w, torch.zeros((), dtype=acc, device=w.device))
    total = w.sum(-1, keepdim=True)
    return w / torch.where(total > 0, total, torch.ones((), dtype=acc, device=w.device))


def interpolate(features: torch.Tensor, idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``out[b, m] = sum_j weight[b, m, j] * features[b, idx[b, m, j]]``.

    Args:
        features: ``(B, N, C)`` features of the reference points (any floating dtype).
        idx: ``(B, M, k)`` int64/int32 indices into ``N``; ``-1`` slots contribute nothing.
        weight: ``(B, M, k)`` weights.

    Returns:
        ``(B, M, C)`` in the dtype of ``features`` (summed in float32 for half types);
        differentiable in ``features`` and ``weight``.
    """
    _checks.features(features, "features")
    _checks.tensor(idx, "idx", "(B, M, k)")
    _checks.tensor(weight, "weight", "(B, M, k)")
    if idx.dim() != 3 or weight.shape != idx.shape:
        raise ValueError(
            f"idx and weight must both have shape (B, M, k), got {tuple(idx.shape)} and {tuple(weight.shape)}"
        )
    if idx.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"idx must be int64 (or int32) indices, got {idx.dtype}")
    if not weight.is_floating_point():
        raise TypeError(f"weight must be a floating tensor, got {weight.dtype}")
    if idx.shape[0] != features.shape[0] or idx.device != features.device or weight.device != features.device:
        raise ValueError(
            f"idx, weight and features must share the batch size and device, got "
            f"{tuple(idx.shape)} on {idx.device}, {tuple(weight.shape)} on {weight.device}, "
            f"{tuple(features.shape)} on {features.device}"
        )
    B, M, k = idx.shape
    C = features.shape[-1]
    acc = torch.float64 if features.dtype == torch.float64 else torch.float32
    valid = idx >= 0
    safe = torch.where(valid, idx, torch.zeros_like(idx)).long()
    w = torch.where(valid, weight.to(acc), torch.zeros((), dtype=acc, device=weight.device))
    nb = torch.gather(features.to(acc), 1, safe.reshape(B, M * k, 1).expand(-1, -1, C))
    return (nb.reshape(B, M, k, C) * w[..., None]).sum(2).to(features.dtype)


def three_nn_interpolate(
    query: torch.Tensor,
    ref: torch.Tensor,
    features: torch.Tensor,
    *,
    k: int = 3,
    squared: bool = False,
    eps: float = 1e-8,
    query_lengths: torch.Tensor | None = None,
    ref_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Features of ``ref`` interpolated at ``query`` from the ``k`` nearest reference points.

    Args:
        query: ``(B, M, 3)`` points to interpolate at.
        ref: ``(B, N, 3)`` points carrying ``features``; same dtype, device and ``B``.
        features: ``(B, N, C)`` floating features of ``ref``.
        k: neighbours (3 in PointNet++); a cloud with fewer reference points uses all of them.
        squared: weights from squared distances instead of Euclidean ones
            (see :func:`inverse_distance_weights`).
        eps: added to the distance before the reciprocal.
        query_lengths, ref_lengths: optional int64 ``(B,)`` lengths of a ragged batch; rows of
            padded queries are 0, padded reference points are never used.

    Returns:
        ``(B, M, C)`` in the dtype of ``features``; differentiable in ``features``, and in
        ``query``/``ref`` through the distances. A query whose cloud has no reference point
        gets zeros.
    """
    _checks.features(features, "features")
    _checks.points(ref, "ref", "(B, N, 3)")
    if features.shape[:2] != ref.shape[:2]:
        raise ValueError(
            f"features must have shape (B, N, C) with ref's (B, N) = {tuple(ref.shape[:2])}, "
            f"got {tuple(features.shape)}"
        )
    _checks.integer(k, "k", 1, 2**31 - 2, "k >= 1")
    kk = min(k, ref.shape[1])
    dist2, idx = knn(query, ref, kk, query_lengths=query_lengths, ref_lengths=ref_lengths)
    weight = inverse_distance_weights(dist2, idx, squared=squared, eps=eps)
    return interpolate(features, idx, weight)
