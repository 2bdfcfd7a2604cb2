"""Chamfer distance: nearest-neighbour distances between two clouds, both ways."""

from __future__ import annotations

import torch

from . import _backend, _checks, reference

__all__ = ["chamfer_distance", "ChamferDistanceL2", "ChamferDistanceL1"]


def chamfer_distance(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    x_lengths: torch.Tensor | None = None,
    y_lengths: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Squared nearest-neighbour distances from ``x`` to ``y`` and from ``y`` to ``x``.

    Memory is O(B·(N+M)) on CPU (never an N×M matrix). Gradients flow to ``x`` and ``y``
    through the distances (the indices are constants), to any order: a backward with
    ``create_graph=True`` is itself differentiable.

    Args:
        x: ``(B, N, 3)`` points, float16 / bfloat16 / float32 / float64, cpu or cuda, N >= 1.
        y: ``(B, M, 3)`` points, same dtype, device and ``B``, M >= 1.
        x_lengths, y_lengths: optional int64 ``(B,)`` (ragged batch): cloud ``b`` of ``x`` is
            its first ``x_lengths[b]`` points (likewise ``y``); padded points are never
            anybody's neighbour, and their rows (and every row whose other cloud is empty)
            are ``d = 0``, ``idx = -1``.

    Returns:
        ``d_xy`` ``(B, N)``: ``min_j |x_i - y_j|^2``; ``d_yx`` ``(B, M)``: ``min_i |y_j - x_i|^2``
        (input dtype, computed in float32 for half types); ``idx_xy`` ``(B, N)`` and ``idx_yx``
        ``(B, M)`` int64: the nearest index, the lowest one on ties. ``B == 0`` gives empty
        tensors.

    NaN: a distance involving a NaN coordinate counts as ``+inf`` when choosing the nearest
    point; the returned distance is then recomputed from the chosen pair, so a NaN point gets
    a NaN distance (to index 0), and a finite point never picks a NaN partner while a finite
    one exists.

    Raises:
        TypeError: non-floating points, a dtype mismatch, or a sparse (non-strided) tensor.
        ValueError: shapes not ``(B, *, 3)``, a cloud without points, batch or device mismatch.

    Example:
        >>> x, y = torch.rand(2, 2048, 3), torch.rand(2, 2048, 3, requires_grad=True)
        >>> d_xy, d_yx, _, _ = chamfer_distance(x, y)
        >>> (d_xy.mean() + d_yx.mean()).backward()
    """
    _checks.points(x, "x", "(B, N, 3)")
    _checks.points(y, "y", "(B, M, 3)")
    _checks.pair(x, "x", y, "y")
    B = x.shape[0]
    _checks.lengths(x_lengths, "x_lengths", B, x.shape[1], x, "x")
    _checks.lengths(y_lengths, "y_lengths", B, y.shape[1], y, "y")
    if _backend.use_kernels(x):
        return torch.ops.recon.chamfer_forward(x.contiguous(), y.contiguous(), x_lengths, y_lengths)
    return reference.chamfer_distance(x, y, x_lengths=x_lengths, y_lengths=y_lengths)


def _chamfer_grads(
    grad_dxy: torch.Tensor,
    grad_dyx: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    idx_xy: torch.Tensor,
    idx_yx: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """What ``recon::chamfer_backward`` computes, as a differentiable PyTorch expression.

    With the nearest-neighbour indices fixed (they are piecewise constant in the points), the
    gradient is linear in the upstream gradients and in ``x_i - y_idx_xy[i]`` / ``y_j -
    x_idx_yx[j]``, so autograd differentiates this expression into the exact second order.
    Used only when the backward itself must be differentiable (``create_graph=True``).
    """
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    xa, ya = x.to(acc), y.to(acc)

    def directed(a, b, g, idx):
        # d_i = |a_i - b_idx[i]|^2: d/da_i = 2 g_i (a_i - b_idx[i]); d/db_idx[i] = minus that.
        where = idx[..., None].expand(-1, -1, 3)
        t = (g.to(acc) * 2)[..., None] * (a - torch.gather(b, 1, where))
        return t, torch.zeros_like(b).scatter_add(1, where, -t)

    tx, to_y = directed(xa, ya, grad_dxy, idx_xy)
    ty, to_x = directed(ya, xa, grad_dyx, idx_yx)
    return (tx + to_x).to(x.dtype), (ty + to_y).to(y.dtype)


def _loss_pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The losses take mixed float dtypes: under CPU/CUDA autocast a prediction comes out in
    bfloat16/float16 while its target stays float32, so both go to the wider dtype (the raw op keeps
    refusing a mismatch)."""
    if x.dtype != y.dtype and x.is_floating_point() and y.is_floating_point():
        dt = torch.promote_types(x.dtype, y.dtype)
        return x.to(dt), y.to(dt)
    return x, y


class ChamferDistanceL2(torch.nn.Module):
    """Chamfer-L2 loss of the official code (``cdl2``): ``mean(d_xy) + mean(d_yx)``.

    Means run over all points of the whole batch; squared distances, not their roots.

    Example:
        >>> loss = ChamferDistanceL2()(pred, target)   # (B, N, 3), (B, M, 3) -> scalar
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d_xy, d_yx, _, _ = chamfer_distance(*_loss_pair(x, y))
        return d_xy.mean() + d_yx.mean()


class ChamferDistanceL1(torch.nn.Module):
    """Chamfer-L1 of the official code (``cdl1``): ``(mean(sqrt(d_xy)) + mean(sqrt(d_yx))) / 2``.

    As in the official code the gradient of ``sqrt`` is infinite where a distance is exactly 0
    (a point that coincides with its nearest neighbour), which gives NaN gradients there.

    Example:
        >>> loss = ChamferDistanceL1()(pred, target)   # (B, N, 3), (B, M, 3) -> scalar
    """

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d_xy, d_yx, _, _ = chamfer_distance(*_loss_pair(x, y))
        return (d_xy.sqrt().mean() + d_yx.sqrt().mean()) / 2


if _backend.HAVE_C:

    @torch.library.register_fake("recon::chamfer_forward")
    def _chamfer_fake(x: torch.Tensor, y: torch.Tensor, x_lengths=None, y_lengths=None):
        B, N, M = x.shape[0], x.shape[1], y.shape[1]
        return (
            x.new_empty((B, N)),
            y.new_empty((B, M)),
            x.new_empty((B, N), dtype=torch.long),
            y.new_empty((B, M), dtype=torch.long),
        )

    @torch.library.register_fake("recon::chamfer_backward")
    def _chamfer_backward_fake(grad_dxy, grad_dyx, x, y, idx_xy, idx_yx):
        return torch.empty_like(x), torch.empty_like(y)

    def _chamfer_setup_context(ctx, inputs, output) -> None:
        x, y = inputs[0], inputs[1]
        _, _, idx_xy, idx_yx = output
        ctx.save_for_backward(x, y, idx_xy, idx_yx)
        ctx.ragged = len(inputs) > 2 and any(t is not None for t in inputs[2:])

    def _chamfer_backward(ctx, grad_dxy, grad_dyx, grad_ixy, grad_iyx):
        x, y, idx_xy, idx_yx = ctx.saved_tensors
        if ctx.ragged:
            # Padded rows (idx -1) carry no gradient; padding may hold anything, so it is
            # zeroed before the kernel reads it.
            grad_dxy, idx_xy, x = _unpad(grad_dxy, idx_xy, x)
            grad_dyx, idx_yx, y = _unpad(grad_dyx, idx_yx, y)
        if torch.is_grad_enabled() and any(
            t.requires_grad for t in (grad_dxy, grad_dyx, x, y)
        ):  # create_graph=True: a backward that autograd can differentiate again
            return (*_chamfer_grads(grad_dxy, grad_dyx, x, y, idx_xy, idx_yx), None, None)
        grad_x, grad_y = torch.ops.recon.chamfer_backward(
            grad_dxy.contiguous(), grad_dyx.contiguous(), x, y, idx_xy, idx_yx
        )
        return grad_x, grad_y, None, None

    def _unpad(grad: torch.Tensor, idx: torch.Tensor, pts: torch.Tensor):
        keep = idx >= 0
        zero = torch.zeros((), dtype=grad.dtype, device=grad.device)
        pts = torch.where(keep[..., None], pts, torch.zeros((), dtype=pts.dtype, device=pts.device))
        return torch.where(keep, grad, zero), idx.clamp_min(0), pts.contiguous()

    torch.library.register_autograd(
        "recon::chamfer_forward", _chamfer_backward, setup_context=_chamfer_setup_context
    )
