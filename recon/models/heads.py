"""Classification heads and pooled features of the official finetune / SVM / zero-shot models.

The heads are ``nn.Sequential`` so their keys are the released ``cls_head_finetune.{0,1,4,5,8}``
(``full``) or ``cls_head_finetune.0`` (``linear``) (docs/official.md §7).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["HEAD_TYPES", "build_head", "svm_feature", "ZEROSHOT_RATIOS"]

HEAD_TYPES = ("full", "linear")

# Weight of the text-query feature in the zero-shot point feature
# ``ratio * text_proj(text) + img_proj(img)``, per evaluation set (docs/official.md §8).
ZEROSHOT_RATIOS = {
    "modelnet10": 0.2,
    "modelnet40": 0.25,
    "scanobjectnn_hardest": 0.05,
    "scanobjectnn_objbg": 0.1,
    "scanobjectnn_objonly": 0.15,
}


def build_head(head: str, in_dim: int, num_classes: int, hidden: int = 256, dropout: float = 0.5) -> nn.Sequential:
    """Build the classifier head.

    Args:
        head: ``"full"`` = Linear(in,256) BN ReLU Dropout Linear(256,256) BN ReLU Dropout
            Linear(256,num_classes); ``"linear"`` = Linear(in, num_classes).
        in_dim: pooled feature size (4C for ReCon, 2C for Point-MAE).
        num_classes: number of output logits (>= 1).
    """
    if head not in HEAD_TYPES:
        raise ValueError(f"head must be one of {HEAD_TYPES}, got {head!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 to build a head, got {num_classes}")
    if head == "linear":
        return nn.Sequential(nn.Linear(in_dim, num_classes))
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def svm_feature(features: dict) -> torch.Tensor:
    """The official linear-SVM feature from ``forward_features`` output: ``(B, 2C)``.

    ``[max over the cls/img/text query outputs (element-wise), max(local) + mean(local)]``.
    """
    queries = torch.stack([features["cls"], features["img"], features["text"]], dim=1)
    local = features["local"]
    return torch.cat([queries.amax(dim=1), local.amax(dim=1) + local.mean(dim=1)], dim=-1)
