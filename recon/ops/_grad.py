"""The backward of a squared distance to gathered neighbours (kNN, ball query).

``dist2[b, m, j] = |q[b, m] - r[b, idx[b, m, j]]|^2`` gives ``d/dq = 2 g (q - r_idx)`` and
``d/dr_idx = -2 g (q - r_idx)``; slots with ``idx < 0`` (padding) carry no gradient.
"""

from __future__ import annotations

import torch


def gathered_dist2_backward(
    query: torch.Tensor,
    ref: torch.Tensor,
    idx: torch.Tensor,
    grad: torch.Tensor,
    need_query: bool,
    need_ref: bool,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    acc = torch.float64 if query.dtype == torch.float64 else torch.float32
    B, M, k = idx.shape
    valid = idx >= 0
    safe = torch.where(valid, idx, torch.zeros_like(idx)).reshape(B, M * k, 1).expand(-1, -1, 3)
    q, r = query.to(acc), ref.to(acc)
    g = torch.where(valid, grad.to(acc), torch.zeros((), dtype=acc, device=grad.device))
    nb = torch.gather(r, 1, safe).reshape(B, M, k, 3)
    t = (g + g)[..., None] * (q[:, :, None, :] - nb)
    grad_q = t.sum(2).to(query.dtype) if need_query else None
    grad_r = None
    if need_ref:
        grad_r = torch.zeros_like(r).scatter_add(1, safe, -t.reshape(B, M * k, 3)).to(ref.dtype)
    return grad_q, grad_r
