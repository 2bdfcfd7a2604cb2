"""Point-MAE single-stream baseline (Pang et al., ECCV 2022, arXiv:2203.06604).

The finetune ``PointTransformer`` of ``Pang-Yatian/Point-MAE`` as described in docs/official.md
§7: tokens ``[cls, local...]``, standard pre-norm blocks, positions re-added before every
block, head on ``[cls, max over local]`` (2C). Same tokenizer as ReCon. It is the model the
benchmarks compare ReCon to.
"""

from __future__ import annotations

import torch
from torch import nn

from ._builder import build, classifier_config
from .heads import HEAD_TYPES, build_head
from .layers import Block, drop_path_rates
from .registry import register_model
from .tokenizer import Group, PatchEmbed, PosEmbed

__all__ = ["TransformerEncoder", "PointMAEBackbone", "PointMAEClassifier", "pointmae_base"]


class TransformerEncoder(nn.Module):
    """Stack of pre-norm blocks with positions re-added before each (keys ``blocks.N.*``)."""

    def __init__(self, dim, depth, num_heads, mlp_ratio=4.0, drop_path_rate=0.0):
        super().__init__()
        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, dpr[i]) for i in range(depth))

    def forward(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x + pos)
        return x


class PointMAEBackbone(nn.Module):
    """Point-MAE encoder. With ``cls_token=False`` it is the pretraining ``MaskTransformer``.

    Args:
        embed_dim, depth, num_heads, drop_path_rate: transformer size.
        cls_token: add the learned ``cls_token`` / ``cls_pos`` in front of the local tokens.
    """

    def __init__(self, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0, drop_path_rate=0.0, cls_token=True):
        super().__init__()
        C = embed_dim
        self.embed_dim = C
        if cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
            self.cls_pos = nn.Parameter(torch.zeros(1, 1, C))
            nn.init.trunc_normal_(self.cls_pos, std=0.02)  # cls_token stays zero, as released
        else:
            self.cls_token = self.cls_pos = None
        self.encoder = PatchEmbed(C)
        self.pos_embed = PosEmbed(C)
        self.blocks = TransformerEncoder(C, depth, num_heads, mlp_ratio, drop_path_rate)
        self.norm = nn.LayerNorm(C)

    def forward_tokens(self, tokens: torch.Tensor, center: torch.Tensor) -> torch.Tensor:
        """``tokens (B, G, C)``, ``center (B, G, 3)`` -> normalised ``(B, [1+]G, C)``."""
        pos = self.pos_embed(center)
        if self.cls_token is not None:
            B = tokens.shape[0]
            tokens = torch.cat([self.cls_token.expand(B, -1, -1), tokens], dim=1)
            pos = torch.cat([self.cls_pos.expand(B, -1, -1), pos], dim=1)
        return self.norm(self.blocks(tokens, pos))


class PointMAEClassifier(PointMAEBackbone):
    """Point-MAE classifier: ``model(points (B, N, 3)) -> (B, num_classes)``; ``num_classes=0`` -> ``(B, 2C)``."""

    # keys a backbone checkpoint need not fill: the head, and the cls token/position, which the
    # pretraining encoder does not have (the official finetune starts them fresh too)
    task_keys = ("cls_head_finetune.", "cls_token", "cls_pos")

    def __init__(self, num_classes=40, num_group=64, group_size=32, embed_dim=384, depth=12, num_heads=6,
                 drop_path_rate=0.1, head="full"):
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = feature extractor), got {num_classes}")
        if head not in HEAD_TYPES:
            raise ValueError(f"head must be one of {HEAD_TYPES}, got {head!r}")
        super().__init__(embed_dim, depth, num_heads, 4.0, drop_path_rate, cls_token=True)
        self.num_classes = num_classes
        self.group_divider = Group(num_group, group_size)
        self.num_features = 2 * embed_dim
        self.cls_head_finetune = build_head(head, self.num_features, num_classes) if num_classes > 0 else None

    def forward_features(self, points: torch.Tensor) -> dict:
        """``points (B, N, 3)`` -> dict ``cls (B, C)``, ``local (B, G, C)``, ``center (B, G, 3)``."""
        neighborhood, center = self.group_divider(points, self.encoder.dtype)
        x = self.forward_tokens(self.encoder(neighborhood), center)
        return {"cls": x[:, 0], "local": x[:, 1:], "center": center}

    @staticmethod
    def pool(features: dict) -> torch.Tensor:
        """``[cls, max over local]`` -> ``(B, 2C)``."""
        return torch.cat([features["cls"], features["local"].max(dim=1).values], dim=-1)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        f = self.pool(self.forward_features(points))
        return f if self.cls_head_finetune is None else self.cls_head_finetune(f)


@register_model(paper={"params_m": 22.1, "gmacs_2048": 4.8},
                description="Point-MAE classifier, the single-stream baseline (C=384, 6 heads, 12 blocks)")
def pointmae_base(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.1, head="full",
                  pretrained=None, depth=12, embed_dim=384, num_heads=6, strict=True):
    """Point-MAE classifier, the single-stream baseline; ``num_group=None`` means ``npoints // 16``."""
    config = classifier_config("pointmae_base", num_classes, npoints, num_group, group_size, drop_path_rate, head,
                               depth, embed_dim, num_heads)
    return build(PointMAEClassifier, config, pretrained, strict)
