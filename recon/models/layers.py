"""Transformer building blocks shared by the ReCon and Point-MAE models.

Module and attribute names follow the official ``qizekun/ReCon`` / ``Pang-Yatian/Point-MAE``
code so that ``state_dict()`` keys (and their order) equal the released checkpoints'
(docs/official.md §4, §12). Attention runs through ``F.scaled_dot_product_attention`` on CUDA and for
long CPU sequences; short CPU sequences, and any call that asks for the attention maps, take the explicit
``softmax(q·kᵀ·scale)·v`` products (docs/speed.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "cat_tokens",
    "drop_path_rates",
    "DropPath",
    "Mlp",
    "Attention",
    "CrossAttention",
    "Block",
    "ReConBlock",
    "NORM_STYLES",
]

NORM_STYLES = ("released", "prenorm")


def drop_path_rates(rate: float, depth: int) -> list[float]:
    """Per-block stochastic-depth rates ``linspace(0, rate, depth)`` (float32, as released)."""
    return torch.linspace(0, rate, depth, device="cpu").tolist() if depth > 0 else []


def _row_major(t: torch.Tensor) -> bool:
    expected, step = [], 1
    for n in reversed(t.shape):
        expected.append(step)
        step *= max(n, 1)
    return t.stride() == tuple(reversed(expected))


class _DenseGrad(torch.autograd.Function):
    """Identity whose backward hands on a row-major gradient (same values, fresh strides)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad if _row_major(grad) else grad.clone(memory_format=torch.contiguous_format)


def cat_tokens(params, dim: int = 1) -> torch.Tensor:
    """``torch.cat(params, dim)`` for the ``[1, 1, C]`` token / position parameters.

    cat's backward gives each parameter a slice of the ``[1, 3, C]`` gradient: ``is_contiguous()``
    holds (size-1 dims), but its strides ``(3C, C, 1)`` differ from the parameter's ``(C, C, 1)``, so
    DDP warns "Grad strides do not match bucket view strides" and copies it every step. Passing each
    parameter through an identity whose backward re-lays the gradient row-major keeps the values,
    the forward arithmetic and the state_dict as they are.
    """
    return torch.cat([_DenseGrad.apply(p) for p in params], dim=dim)


class DropPath(nn.Module):
    """Stochastic depth: drops the whole residual branch per sample (timm semantics).

    Args:
        drop_prob: probability of dropping a sample's branch during training.
    """

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """``fc1 -> GELU (erf) -> fc2``; ``(B, N, C) -> (B, N, C)``."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """``(B, N, C) -> (B, H, N, C/H)`` view."""
    B, N, C = x.shape
    return x.view(B, N, num_heads, C // num_heads).transpose(1, 2)


# Largest L * Lk for which CPU attention materialises the (B, H, L, Lk) map: at ReCon's token counts
# (128-256) CPU flash attention is the slower kernel, its backward above all (forward+backward 4x slower
# in bfloat16 on AMX, where the explicit products are AMX matmuls, 1.2x in float32; benchmarks/RESULTS.md);
# beyond this the map's memory matters more.
_CPU_EXPLICIT_MAX = 256 * 256


def _explicit_on_cpu(q: torch.Tensor, k: torch.Tensor) -> bool:
    return q.device.type == "cpu" and q.shape[-2] * k.shape[-2] <= _CPU_EXPLICIT_MAX


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, return_attention: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Multi-head attention on ``(B, H, L, hd)`` tensors; returns ``(B, L, H*hd)`` and maybe the map."""
    if return_attention or _explicit_on_cpu(q, k):
        attn = torch.matmul(q, k.transpose(-2, -1)).mul_(scale).softmax(dim=-1)
        out = torch.matmul(attn, v)
        attn = attn if return_attention else None
    else:
        attn = None
        out = F.scaled_dot_product_attention(q, k, v, scale=scale)
    B, H, L, hd = out.shape
    return out.transpose(1, 2).reshape(B, L, H * hd), attn


class Attention(nn.Module):
    """Multi-head self-attention, timm-ViT layout: ``qkv`` (no bias) and ``proj`` (with bias).

    Rows ``[0:C]`` of ``qkv.weight`` produce q, ``[C:2C]`` k and ``[2C:3C]`` v; head ``h`` uses
    sub-rows ``h*hd:(h+1)*hd`` of each; the scale ``hd**-0.5`` multiplies ``q·kᵀ``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (B, N, C)`` -> ``(B, N, C)`` and the map ``(B, H, N, N)`` when asked (else None)."""
        B, N, C = x.shape
        H = self.num_heads
        # unbind, not qkv[i]: the backward stacks the three gradients once, where indexing builds a
        # zero tensor of qkv's size per index and re-lays the sum again before the linear's backward.
        q, k, v = (t.transpose(1, 2) for t in self.qkv(x).view(B, N, 3, H, C // H).unbind(2))
        out, attn = _attend(q, k, v, self.scale, return_attention)
        return self.proj(out), attn


class CrossAttention(nn.Module):
    """Queries attend to a separate token set: ``q`` and ``kv`` linears (no bias) + ``proj``.

    Rows ``[0:C]`` of ``kv.weight`` produce the keys, ``[C:2C]`` the values.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q = nn.Linear(dim, dim, bias=False)
        self.kv = nn.Linear(dim, dim * 2, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``x (B, L, C)`` queries over ``context (B, N, C)`` -> ``(B, L, C)`` [+ map ``(B, H, L, N)``]."""
        B, N, C = context.shape
        H = self.num_heads
        q = _heads(self.q(x), H)
        k, v = (t.transpose(1, 2) for t in self.kv(context).view(B, N, 2, H, C // H).unbind(2))
        out, attn = _attend(q, k, v, self.scale, return_attention)
        return self.proj(out), attn


class Block(nn.Module):
    """Standard pre-norm transformer block (Point-MAE encoder, MAE decoder).

    ``x = x + DP(attn(LN1 x)); x = x + DP(mlp(LN2 x))``. Keys: ``norm1, norm2, mlp, attn``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.attn = Attention(dim, num_heads)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x))[0])
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ReConBlock(nn.Module):
    """The two-stream ReCon block (official ``Block(with_contrast=True)``).

    Local tokens ``v (B, G, C)``: self-attention + MLP. The global queries ``q (B, 3, C)``
    (cls, img, text): cross-attention to the normalised local tokens + their own MLP and norms.
    Queries never attend to each other; local tokens never see the queries.

    ``norm_style="released"`` (default, the released code; official weights need it) lets the
    LayerNorm output replace the stream::

        q = LN1c(q); v = LN1(v)
        q = q + DP(XAttn(q, kv=v)); v = v + DP(SelfAttn(v))
        q = LN2c(q); v = LN2(v)
        q = q + DP(MLPc(q));       v = v + DP(MLP(v))

    ``norm_style="prenorm"`` is the paper's pseudocode: ``x = x + f(LN(x))`` for every sublayer,
    the cross-attention reading ``LN1(v)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        drop_path: float = 0.0,
        norm_style: str = "released",
    ):
        super().__init__()
        if norm_style not in NORM_STYLES:
            raise ValueError(f"norm_style must be one of {NORM_STYLES}, got {norm_style!r}")
        self.norm_style = norm_style
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, hidden)
        self.attn = Attention(dim, num_heads)
        self.norm1_contrast = nn.LayerNorm(dim)
        self.norm2_contrast = nn.LayerNorm(dim)
        self.mlp_contrast = Mlp(dim, hidden)
        self.attn_contrast = CrossAttention(dim, num_heads)
        self.drop_path = DropPath(drop_path)  # one module for both streams, as released

    def forward(
        self,
        q: torch.Tensor,
        v: torch.Tensor,
        stop_grad: bool = False,
        return_attention: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Run one block.

        Args:
            q: ``(B, 3, C)`` global queries (positions already added).
            v: ``(B, G, C)`` local tokens (positions already added).
            stop_grad: detach the keys/values of the cross-attention (pretraining).
            return_attention: also return the cross-attention map ``(B, H, 3, G)``.

        Returns:
            ``(q, v, attn)``; ``attn`` is None unless requested.
        """
        dp = self.drop_path
        qn, vn = self.norm1_contrast(q), self.norm1(v)
        x_attn, attn = self.attn_contrast(qn, vn.detach() if stop_grad else vn, return_attention)
        if self.norm_style == "released":
            q = qn + dp(x_attn)
            v = vn + dp(self.attn(vn)[0])
            q = self.norm2_contrast(q)
            v = self.norm2(v)
            q = q + dp(self.mlp_contrast(q))
            v = v + dp(self.mlp(v))
        else:
            q = q + dp(x_attn)
            v = v + dp(self.attn(vn)[0])
            q = q + dp(self.mlp_contrast(self.norm2_contrast(q)))
            v = v + dp(self.mlp(self.norm2(v)))
        return q, v, attn
