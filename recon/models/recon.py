"""ReCon family: the two-stream encoder, the classifier and the zero-shot model.

ReCon: "Contrast with Reconstruct: Contrastive 3D Representation Learning Guided by Generative
Pretraining", Qi et al., ICML 2023 (arXiv:2302.02318). Architecture facts, key names and init
follow the released code ``qizekun/ReCon`` as described in docs/official.md §1–7; nothing here is
copied from it.

Token layout: three global queries ``[cls, img, text]`` followed by the G local tokens; the
positions (``cls_pos, img_pos, text_pos`` and ``pos_embed(centre)``) are re-added before every
block; one final LayerNorm. Internally the two streams are kept as separate tensors (queries
``(B, 3, C)``, locals ``(B, G, C)``), which is the same maths without a concat/split per block.
"""

from __future__ import annotations

import torch
from torch import nn

from ._builder import as_int, build, classifier_config, init_vit_weights, resolve_num_group
from .heads import HEAD_TYPES, ZEROSHOT_RATIOS, build_head
from .layers import ReConBlock, cat_tokens, drop_path_rates
from .registry import register_model
from .tokenizer import Group, PatchEmbed, PosEmbed

__all__ = [
    "ReConBackbone",
    "ReConClassifier",
    "ReConZeroShot",
    "recon_tiny",
    "recon_small",
    "recon_base",
    "recon_base_zeroshot",
    "SIZES",
]

# (embed_dim, num_heads) of the official cfgs/pretrain/{tiny,small,base}.yaml; depth 12 throughout.
SIZES = {"tiny": (192, 3), "small": (256, 4), "base": (384, 6)}
QUERY_NAMES = ("cls", "img", "text")


class ReConTransformer(nn.Module):
    """The stack of ReCon blocks (official ``TransformerEncoder``; keys ``blocks.N.*``)."""

    def __init__(self, dim, depth, num_heads, mlp_ratio=4.0, drop_path_rate=0.0, norm_style="released"):
        super().__init__()
        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(
            ReConBlock(dim, num_heads, mlp_ratio, dpr[i], norm_style) for i in range(depth)
        )

    def forward(self, q, v, qpos, vpos, stop_grad=False, return_attention=False):
        """Queries ``(B, 3, C)`` and locals ``(B, G, C)`` through every block, positions re-added."""
        maps = []
        for blk in self.blocks:
            q, v, attn = blk(q + qpos, v + vpos, stop_grad, return_attention)
            if return_attention:
                maps.append(attn)
        return q, v, maps


class ReConBackbone(nn.Module):
    """The ReCon encoder without grouping or head (official ``MaskTransformer`` / backbone keys).

    Args:
        embed_dim: token width C (= ``trans_dim`` = ``encoder_dims``).
        depth: number of ReCon blocks.
        num_heads: attention heads.
        drop_path_rate: stochastic depth, ``linspace(0, rate, depth)`` over the blocks.
        norm_style: ``"released"`` (official weights) or ``"prenorm"`` (paper pseudocode).
        stop_grad: detach the local tokens where the queries read them (pretraining).
    """

    def __init__(
        self,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.0,
        norm_style: str = "released",
        stop_grad: bool = False,
    ):
        super().__init__()
        C = embed_dim
        self.embed_dim = C
        self.stop_grad = stop_grad
        # Registration order = official state_dict order.
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, C))
        self.img_token = nn.Parameter(torch.zeros(1, 1, C))
        self.text_token = nn.Parameter(torch.zeros(1, 1, C))
        self.img_pos = nn.Parameter(torch.zeros(1, 1, C))
        self.text_pos = nn.Parameter(torch.zeros(1, 1, C))
        self.encoder = PatchEmbed(C)
        self.pos_embed = PosEmbed(C)
        self.blocks = ReConTransformer(C, depth, num_heads, mlp_ratio, drop_path_rate, norm_style)
        self.norm = nn.LayerNorm(C)
        for p in (self.cls_pos, self.img_token, self.text_token, self.img_pos, self.text_pos):
            nn.init.trunc_normal_(p, std=0.02)

    def init_pretrain_weights(self) -> None:
        """The pretraining init: every Linear/Conv1d trunc_normal(0.02), all 6 token params too."""
        self.apply(init_vit_weights)
        for p in (self.cls_token, self.cls_pos, self.img_token, self.text_token, self.img_pos, self.text_pos):
            nn.init.trunc_normal_(p, std=0.02)

    def forward_tokens(
        self, tokens: torch.Tensor, center: torch.Tensor, return_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, list]:
        """Run the transformer on embedded patches.

        Args:
            tokens: ``(B, G, C)`` patch embeddings.
            center: ``(B, G, 3)`` their absolute centres.
            return_attention: collect each block's cross-attention map ``(B, H, 3, G)``.

        Returns:
            ``q (B, 3, C)`` (cls, img, text), ``v (B, G, C)``, list of maps (empty unless asked);
            both after the final LayerNorm.
        """
        B = tokens.shape[0]
        q = cat_tokens([self.cls_token, self.img_token, self.text_token]).expand(B, -1, -1)
        qpos = cat_tokens([self.cls_pos, self.img_pos, self.text_pos])
        vpos = self.pos_embed(center)
        q, v, maps = self.blocks(q, tokens, qpos, vpos, self.stop_grad, return_attention)
        return self.norm(q), self.norm(v), maps

    def forward_features(self, points: torch.Tensor, return_attention: bool = False) -> dict:
        """Encode clouds.

        Args:
            points: ``(B, N, 3)``.
            return_attention: add ``"attention"``: per block the cross-attention of the 3
                queries over the local tokens, ``(B, heads, 3, G)`` each.

        Returns:
            dict with ``cls``, ``img``, ``text`` ``(B, C)``, ``local`` ``(B, G, C)``,
            ``center`` ``(B, G, 3)`` [and ``attention``].
        """
        group = getattr(self, "group_divider", None)
        if group is None:
            raise TypeError("this backbone has no group divider: call forward_tokens(tokens, center)")
        neighborhood, center = group(points, self.encoder.dtype)
        q, v, maps = self.forward_tokens(self.encoder(neighborhood), center, return_attention)
        out = {"cls": q[:, 0], "img": q[:, 1], "text": q[:, 2], "local": v, "center": center}
        if return_attention:
            out["attention"] = maps
        return out


class ReConClassifier(ReConBackbone):
    """ReCon point-cloud classifier (official finetune ``PointTransformer``, ``finetune=True``).

    ``model(points (B, N, 3)) -> logits (B, num_classes)``; with ``num_classes=0`` there is no
    head and the pooled feature ``(B, 4C)`` = ``[cls, img, text, max over local]`` is returned
    (the official SVM backbone's state_dict).
    """

    # keys a backbone checkpoint need not fill (``pretrained=`` refuses any other missing key)
    task_keys = ("cls_head_finetune.",)

    def __init__(
        self,
        num_classes: int = 40,
        num_group: int = 64,
        group_size: int = 32,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        drop_path_rate: float = 0.2,
        head: str = "full",
        norm_style: str = "released",
    ):
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = feature extractor), got {num_classes}")
        if head not in HEAD_TYPES:
            raise ValueError(f"head must be one of {HEAD_TYPES}, got {head!r}")
        super().__init__(embed_dim, depth, num_heads, 4.0, drop_path_rate, norm_style, stop_grad=False)
        self.num_classes = num_classes
        self.group_divider = Group(num_group, group_size)
        self.num_features = 4 * embed_dim
        if num_classes > 0:
            self.cls_head_finetune = build_head(head, self.num_features, num_classes)
        else:
            self.cls_head_finetune = None

    @staticmethod
    def pool(features: dict) -> torch.Tensor:
        """``[cls, img, text, max over local tokens]`` -> ``(B, 4C)`` (the official head input)."""
        return torch.cat(
            [features["cls"], features["img"], features["text"], features["local"].max(dim=1).values], dim=-1
        )

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        f = self.pool(self.forward_features(points))
        return f if self.cls_head_finetune is None else self.cls_head_finetune(f)


class ReConZeroShot(ReConBackbone):
    """Zero-shot model (official ``PointTransformerZeroShot``): backbone + ``text_proj`` + ``img_proj``.

    ``model(points) -> (B, D)`` point feature ``ratio * text_proj(text) + img_proj(img)`` to be
    compared (cosine) with CLIP text features of the class prompts.
    """

    def __init__(
        self,
        num_group: int = 64,
        group_size: int = 32,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        img_dim: int = 512,
        text_dim: int = 512,
        ratio: float = ZEROSHOT_RATIOS["modelnet40"],
        norm_style: str = "released",
    ):
        if img_dim != text_dim:
            raise ValueError(f"img_dim ({img_dim}) and text_dim ({text_dim}) must match to add the features")
        super().__init__(embed_dim, depth, num_heads, 4.0, 0.0, norm_style, stop_grad=False)
        self.text_proj = nn.Linear(embed_dim, text_dim)
        self.img_proj = nn.Linear(embed_dim, img_dim)
        self.group_divider = Group(num_group, group_size)
        self.ratio = float(ratio)

    def forward(self, points: torch.Tensor, ratio: float | None = None) -> torch.Tensor:
        f = self.forward_features(points)
        r = self.ratio if ratio is None else ratio
        return r * self.text_proj(f["text"]) + self.img_proj(f["img"])


def _recon_classifier(name, num_classes, npoints, num_group, group_size, drop_path_rate, head,
                      pretrained, norm_style, depth, embed_dim, num_heads, strict):
    config = classifier_config(name, num_classes, npoints, num_group, group_size, drop_path_rate, head, depth,
                               embed_dim, num_heads, norm_style=norm_style)
    return build(ReConClassifier, config, pretrained, strict)


_PAPER_CLS = {
    "tiny": {"params_m": 11.4, "gmacs_2048": 2.4},
    "small": {"params_m": 19.0, "gmacs_2048": 3.2},
    "base": {"params_m": 43.6, "gmacs_2048": 5.3},
}


@register_model(paper=_PAPER_CLS["tiny"], description="ReCon-Tiny classifier (C=192, 3 heads, 12 blocks)")
def recon_tiny(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.2, head="full",
               pretrained=None, norm_style="released", depth=12, embed_dim=192, num_heads=3,
               strict=True):
    """ReCon-Tiny classifier (C=192, 3 heads); ``num_group=None`` means ``npoints // 16``."""
    return _recon_classifier("recon_tiny", num_classes, npoints, num_group, group_size, drop_path_rate,
                             head, pretrained, norm_style, depth, embed_dim, num_heads, strict)


@register_model(paper=_PAPER_CLS["small"], description="ReCon-Small classifier (C=256, 4 heads, 12 blocks)")
def recon_small(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.2, head="full",
                pretrained=None, norm_style="released", depth=12, embed_dim=256, num_heads=4,
               strict=True):
    """ReCon-Small classifier (C=256, 4 heads); ``num_group=None`` means ``npoints // 16``."""
    return _recon_classifier("recon_small", num_classes, npoints, num_group, group_size, drop_path_rate,
                             head, pretrained, norm_style, depth, embed_dim, num_heads, strict)


@register_model(paper=_PAPER_CLS["base"], description="ReCon (base) classifier (C=384, 6 heads, 12 blocks)")
def recon_base(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.2, head="full",
               pretrained=None, norm_style="released", depth=12, embed_dim=384, num_heads=6,
               strict=True):
    """ReCon (base) classifier (C=384, 6 heads); ``num_group=None`` means ``npoints // 16``."""
    return _recon_classifier("recon_base", num_classes, npoints, num_group, group_size, drop_path_rate,
                             head, pretrained, norm_style, depth, embed_dim, num_heads, strict)


@register_model(kind="zeroshot", description="ReCon (base) zero-shot model: backbone + CLIP-space projections")
def recon_base_zeroshot(npoints=1024, num_group=None, group_size=32, img_dim=512, text_dim=512,
                        ratio=ZEROSHOT_RATIOS["modelnet40"], pretrained=None, norm_style="released",
                        depth=12, embed_dim=384, num_heads=6, strict=True):
    """ReCon (base) zero-shot model; load the CLIP-teacher pretrain checkpoint (512-d ``img_proj``)."""
    config = dict(
        name="recon_base_zeroshot",
        npoints=as_int("npoints", npoints),
        num_group=resolve_num_group(npoints, num_group),
        group_size=as_int("group_size", group_size),
        img_dim=as_int("img_dim", img_dim),
        text_dim=as_int("text_dim", text_dim),
        ratio=float(ratio),
        norm_style=norm_style,
        depth=as_int("depth", depth, 0),
        embed_dim=as_int("embed_dim", embed_dim),
        num_heads=as_int("num_heads", num_heads),
    )
    return build(ReConZeroShot, config, pretrained, strict)

