"""Parameter and FLOP counting under the conventions of docs/models.md.

``FlopCounterMode`` counts 2 FLOPs per multiply-add over every matmul/conv, which is how the
official modules give 10.802 / 6.575 / 4.999 GFLOPs (ReCon base / small / tiny, 2048 points,
128 groups). It has no formula for the CPU flash-attention kernel that
``F.scaled_dot_product_attention`` runs on CPU, so one is added here (same formula as its CUDA
siblings). The paper's "#F" column is multiply-adds without the attention matmuls
(``q·kᵀ``, ``attn·v``), as fvcore/thop count: :attr:`FlopCount.paper_macs`.

recon's patch embedding takes one product per group where the official ``Encoder`` takes it per
point (the global half of its third convolution, :meth:`recon.models.tokenizer.PatchEmbed.saved_flops`).
``flops`` keeps the architecture's count, so tables stay comparable with the paper's and the
official code's; ``executed_flops`` is what recon's forward actually runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

__all__ = ["FlopCount", "count_flops", "count_params"]

_aten = torch.ops.aten
_ATTENTION_OPS = {
    _aten._scaled_dot_product_flash_attention_for_cpu,
    _aten._scaled_dot_product_efficient_attention,
    _aten._scaled_dot_product_flash_attention,
    _aten._scaled_dot_product_cudnn_attention,
    _aten.bmm,  # explicit-softmax attention (linears never reach bmm with contiguous inputs)
}


def _cpu_flash_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


@dataclass(frozen=True)
class FlopCount:
    """Forward cost of one call.

    Attributes:
        flops: FLOPs, 2 per multiply-add, every matmul/conv (``FlopCounterMode``).
        attention_flops: the part spent in attention matmuls (``q·kᵀ``, ``attn·v``).
        executed_flops: FLOPs recon's forward runs (``flops`` less the products its modules share).
    """

    flops: int
    attention_flops: int
    executed_flops: int | None = None

    @property
    def macs(self) -> float:
        """Multiply-adds (fvcore / thop / ptflops unit)."""
        return self.flops / 2

    @property
    def paper_macs(self) -> float:
        """The paper's convention: multiply-adds without the attention matmuls."""
        return (self.flops - self.attention_flops) / 2


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (buffers excluded), as the official counts."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@torch.no_grad()
def count_flops(model: nn.Module, *inputs, **kwargs) -> FlopCount:
    """Count the FLOPs of ``model(*inputs, **kwargs)`` (run once, under ``no_grad``)."""
    mode = FlopCounterMode(display=False, custom_mapping={_aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flops})
    saved = []
    hooks = [m.register_forward_hook(lambda mod, args, out: saved.append(mod.saved_flops(args[0].shape)))
             for m in model.modules() if callable(getattr(m, "saved_flops", None))]
    try:
        with mode:
            model(*inputs, **kwargs)
    finally:
        for h in hooks:
            h.remove()
    per_op = mode.get_flop_counts().get("Global", {})
    attn = sum(int(v) for op, v in per_op.items() if op in _ATTENTION_OPS or getattr(op, "overloadpacket", None) in _ATTENTION_OPS)
    executed = int(mode.get_total_flops())
    return FlopCount(executed + sum(saved), attn, executed)
