"""ReCon's single-modal contrastive term (``smc``; official switch ``self_contrastive``).

Off in every official pretraining config; the paper's rows without multi-modal data use it
(docs/official.md §6). The cls query output, after the encoder's final LayerNorm, goes through
a projection head (``cls_proj``), is L2-normalised, and every pair of the batch is scored by
cosine similarity. Two samples are positives when their raw category strings are equal (before
any prompt template), a sample counting as its own positive. Per row, the logits are
``[mean of the positive similarities, every negative similarity] / temperature`` with target 0;
the loss is the cross-entropy averaged over the rows.

A row without negatives (every text in the batch equal) has the single logit ``pos`` and so a
loss of exactly 0 (``log_softmax`` of one value), with zero gradient: what the official loop
computes for it.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SMC_DIM", "SMC_TEMPERATURE", "cls_projection", "init_smc_weights", "same_category", "smc_loss",
           "contrastive_loss"]

SMC_DIM = 128
SMC_TEMPERATURE = 0.1


def init_smc_weights(module: nn.Module) -> None:
    """The official pretraining model's ``_init_weights``: Linear weights N(mean 0.02, std 0.01) and
    zero bias; BatchNorm weight 1, bias 0."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.02, std=0.01)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm1d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def cls_projection(dim: int, out_dim: int = SMC_DIM) -> nn.Sequential:
    """``Linear(dim, 128), BN(128), ReLU, Linear(128, 128), BN(128)``: state-dict keys
    ``0.*``, ``1.*``, ``3.*``, ``4.*`` (official ``cls_proj``), official init."""
    head = nn.Sequential(nn.Linear(dim, out_dim), nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True),
                         nn.Linear(out_dim, out_dim), nn.BatchNorm1d(out_dim))
    head.apply(init_smc_weights)
    return head


def same_category(categories: Union[Sequence, torch.Tensor], device=None) -> torch.Tensor:
    """``(B, B)`` bool: ``[i, j]`` is True when sample i and j have equal categories (diagonal True).

    Args:
        categories: the raw category strings of the batch (official: equal text), or a 1-D tensor
            of category ids.
    """
    if torch.is_tensor(categories):
        if categories.ndim != 1:
            raise ValueError(f"categories must be 1-D (B,), got shape {tuple(categories.shape)}")
        keys = categories.to(device) if device is not None else categories
        return keys[:, None] == keys[None, :]
    if isinstance(categories, (str, bytes)):
        raise TypeError("categories must be a sequence with one entry per sample, got a single string")
    ids: dict = {}
    index = torch.tensor([ids.setdefault(c, len(ids)) for c in categories], dtype=torch.long, device=device)
    return index[:, None] == index[None, :]


def contrastive_loss(similarity: torch.Tensor, select: torch.Tensor,
                     temperature: float = SMC_TEMPERATURE) -> torch.Tensor:
    """Mean over rows of ``CE([mean(sim[i, select_i]), sim[i, ~select_i]...] / t, 0)``.

    Args:
        similarity: ``(B, B)`` float.
        select: ``(B, B)`` bool, every row with at least one True (the diagonal, usually).
        temperature: the logits' divisor (official 0.1).
    """
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be square (B, B), got shape {tuple(similarity.shape)}")
    if select.shape != similarity.shape or select.dtype != torch.bool:
        raise ValueError(f"select must be a bool tensor of shape {tuple(similarity.shape)}, "
                         f"got {select.dtype} {tuple(select.shape)}")
    n_pos = select.sum(dim=1)
    if bool((n_pos == 0).any()):
        raise ValueError("select: every row needs at least one positive (the sample itself)")
    pos = (similarity * select).sum(dim=1, keepdim=True) / n_pos[:, None].to(similarity.dtype)
    # masked entries drop out of the softmax exactly (exp(-inf) = 0), as if they were not there
    neg = similarity.masked_fill(select, float("-inf"))
    logits = torch.cat([pos, neg], dim=1) / temperature
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def smc_loss(projected: torch.Tensor, categories: Union[Sequence, torch.Tensor],
             temperature: float = SMC_TEMPERATURE) -> torch.Tensor:
    """The smc loss from the projected cls features ``(B, D)`` and the batch's categories."""
    if projected.ndim != 2:
        raise ValueError(f"projected must be (B, D), got shape {tuple(projected.shape)}")
    if len(categories) != projected.shape[0]:
        raise ValueError(f"categories: expected {projected.shape[0]} entries (one per sample), got {len(categories)}")
    z = F.normalize(projected, dim=1)
    return contrastive_loss(z @ z.t(), same_category(categories, z.device), temperature)
