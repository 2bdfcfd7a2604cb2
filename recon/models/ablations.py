"""The two pretraining baselines of the paper's ablation (Table 9): "vanilla multi-task" and "two-tower".

Both keep ReCon's tokenizer, masked reconstruction (MAE decoder + Chamfer-L2) and Smooth-L1
regression of the img/text query outputs to the frozen teacher features; they differ in where the
three global queries live:

* **Vanilla multi-task** (:class:`VanillaBackbone`): ONE stream.  ``[cls, img, text, local...]``
  go through ordinary self-attention blocks, so queries and local tokens attend to each other and
  the distillation gradients flow into the same tokens the reconstruction uses (no stop-gradient,
  no cross-attention).  Blocks are pre-norm by default (``norm_style="released"`` gives the
  released ReCon order, the LayerNorm output replacing the stream).
* **Two-tower** (:class:`TwoTowerBackbone`): two encoders over one shared patch embedding.  The
  generative tower is a Point-MAE encoder (pre-norm self-attention over the local tokens) feeding
  the MAE decoder; the contrastive tower is a ReCon two-stream encoder with its OWN local stream,
  whose queries cross-attend to that stream (not to the generative one) and carry the
  distillation losses.  Compared with ReCon, the queries are no longer guided by the generative
  tokens; compared with vanilla multi-task, the two objectives no longer share transformer weights.

The official two-tower configuration is not described in docs/official.md beyond its finetune
learning rate (5e-5); the layout above is recon's design: sharing only the patch embedding keeps
the tokenization identical across the three models of the ablation.

Classifiers: the pooled feature is ReCon's ``[cls, img, text, max over local]`` (4C) with the same
heads; the two-tower classifier takes the queries from the contrastive tower and the local tokens
from the generative tower.  The pretrain models' ``MAE_encoder.*`` keys equal the classifiers'
backbone keys, so pretrain checkpoints load into the classifiers as ReCon's do.
"""

from __future__ import annotations

import torch
from torch import nn

from ._builder import build, classifier_config, init_vit_weights, pretrain_config
from .heads import HEAD_TYPES, build_head
from .layers import NORM_STYLES, Attention, DropPath, Mlp, cat_tokens
from .pointmae import PointMAEBackbone
from .pretrain import MaskedPretrainModel, ReConPretrain
from .recon import ReConBackbone, ReConClassifier
from .registry import register_model
from .tokenizer import Group, PatchEmbed, PosEmbed

__all__ = [
    "SingleStreamBlock", "VanillaBackbone", "VanillaClassifier", "VanillaMultiTaskPretrain",
    "TwoTowerBackbone", "TwoTowerClassifier", "TwoTowerPretrain",
    "vanilla_multitask_tiny", "vanilla_multitask_base", "vanilla_multitask_tiny_pretrain",
    "vanilla_multitask_base_pretrain", "twotower_tiny", "twotower_base", "twotower_tiny_pretrain",
    "twotower_base_pretrain",
]

SIZES = {"tiny": (192, 3), "base": (384, 6)}  # (embed_dim, num_heads), as ReCon-Tiny / ReCon (base)


class SingleStreamBlock(nn.Module):
    """Self-attention block over the whole sequence; pre-norm or the released ReCon order.

    ``prenorm``: ``x = x + DP(attn(LN1 x)); x = x + DP(mlp(LN2 x))``.
    ``released``: ``x = LN1 x; x = x + DP(attn x); x = LN2 x; x = x + DP(mlp x)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0,
                 norm_style: str = "prenorm"):
        super().__init__()
        if norm_style not in NORM_STYLES:
            raise ValueError(f"norm_style must be one of {NORM_STYLES}, got {norm_style!r}")
        self.norm_style = norm_style
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.attn = Attention(dim, num_heads)
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """``x (B, L, C)`` -> ``(B, L, C)`` and the map ``(B, H, L, L)`` (None unless asked)."""
        if self.norm_style == "released":
            x = self.norm1(x)
            out, attn = self.attn(x, return_attention)
            x = self.norm2(x + self.drop_path(out))
            return x + self.drop_path(self.mlp(x)), attn
        out, attn = self.attn(self.norm1(x), return_attention)
        x = x + self.drop_path(out)
        return x + self.drop_path(self.mlp(self.norm2(x))), attn


class _FeaturesMixin:
    """``forward_features(points)`` for backbones that provide ``forward_tokens``, ``encoder`` and
    ``group_divider``: the very same method as :class:`ReConBackbone`'s (one implementation)."""

    forward_features = ReConBackbone.forward_features


class VanillaBackbone(_FeaturesMixin, nn.Module):
    """Single-stream encoder: ``[cls, img, text, local]`` through self-attention blocks.

    Args:
        embed_dim, depth, num_heads, mlp_ratio, drop_path_rate: transformer size.
        norm_style: ``"prenorm"`` (default) or ``"released"`` (the released ReCon order).
    """

    def __init__(self, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0, drop_path_rate=0.0,
                 norm_style="prenorm"):
        super().__init__()
        C = self.embed_dim = embed_dim
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, C))
        self.img_token = nn.Parameter(torch.zeros(1, 1, C))
        self.text_token = nn.Parameter(torch.zeros(1, 1, C))
        self.img_pos = nn.Parameter(torch.zeros(1, 1, C))
        self.text_pos = nn.Parameter(torch.zeros(1, 1, C))
        self.encoder = PatchEmbed(C)
        self.pos_embed = PosEmbed(C)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist() if depth else []
        self.blocks = nn.ModuleList(SingleStreamBlock(C, num_heads, mlp_ratio, dpr[i], norm_style) for i in range(depth))
        self.norm = nn.LayerNorm(C)
        self.apply(init_vit_weights)
        for p in (self.cls_token, self.cls_pos, self.img_token, self.text_token, self.img_pos, self.text_pos):
            nn.init.trunc_normal_(p, std=0.02)

    def forward_tokens(self, tokens, center, return_attention=False):
        """Embedded patches ``(B, G, C)`` at ``center (B, G, 3)`` -> ``q (B, 3, C)``, ``v (B, G, C)``, maps.

        The maps are the queries' rows of each block's self-attention restricted to the local
        columns and renormalised to sum to 1 over the G tokens, ``(B, H, 3, G)``, so they read
        like ReCon's cross-attention maps.
        """
        B = tokens.shape[0]
        x = cat_tokens([self.cls_token, self.img_token, self.text_token]).expand(B, -1, -1)
        x = torch.cat([x, tokens], 1)
        pos = torch.cat([cat_tokens([self.cls_pos, self.img_pos, self.text_pos]).expand(B, -1, -1),
                         self.pos_embed(center)], 1)
        maps = []
        for blk in self.blocks:
            x, attn = blk(x + pos, return_attention)
            if return_attention:
                rows = attn[:, :, :3, 3:]
                maps.append(rows / rows.sum(-1, keepdim=True))
        x = self.norm(x)
        return x[:, :3], x[:, 3:], maps


class TwoTowerBackbone(_FeaturesMixin, nn.Module):
    """Generative tower (Point-MAE encoder) + contrastive tower (ReCon two-stream encoder with its
    own local stream) over one shared patch embedding ``encoder``.

    Keys: ``encoder.*`` (shared), ``generative.{pos_embed, blocks, norm}.*``,
    ``contrastive.{cls_token, ..., pos_embed, blocks, norm}.*``.
    """

    def __init__(self, embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0, drop_path_rate=0.0,
                 norm_style="released"):
        super().__init__()
        self.embed_dim = embed_dim
        self.encoder = PatchEmbed(embed_dim)
        self.generative = PointMAEBackbone(embed_dim, depth, num_heads, mlp_ratio, drop_path_rate, cls_token=False)
        self.contrastive = ReConBackbone(embed_dim, depth, num_heads, mlp_ratio, drop_path_rate, norm_style,
                                         stop_grad=False)
        # both towers read the shared embedding; their own patch embeddings would be dead weights
        self.generative.encoder = nn.Identity()
        self.contrastive.encoder = nn.Identity()

    def init_pretrain_weights(self) -> None:
        """The official encoder init for both towers and the shared embedding."""
        self.apply(init_vit_weights)
        c = self.contrastive
        for p in (c.cls_token, c.cls_pos, c.img_token, c.text_token, c.img_pos, c.text_pos):
            nn.init.trunc_normal_(p, std=0.02)

    def forward_tokens(self, tokens, center, return_attention=False):
        """``q (B, 3, C)`` from the contrastive tower, ``v (B, G, C)`` from the generative tower,
        and the contrastive tower's cross-attention maps."""
        v = self.generative.forward_tokens(tokens, center)
        q, _, maps = self.contrastive.forward_tokens(tokens, center, return_attention)
        return q, v, maps


class _Classifier(nn.Module):
    """Head on ``[cls, img, text, max over local]`` (4C), as :class:`ReConClassifier`."""

    pool = staticmethod(ReConClassifier.pool)
    task_keys = ReConClassifier.task_keys

    def _add_head(self, num_classes, num_group, group_size, embed_dim, head):
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0 (0 = feature extractor), got {num_classes}")
        if head not in HEAD_TYPES:
            raise ValueError(f"head must be one of {HEAD_TYPES}, got {head!r}")
        self.num_classes = num_classes
        self.group_divider = Group(num_group, group_size)
        self.num_features = 4 * embed_dim
        self.cls_head_finetune = build_head(head, self.num_features, num_classes) if num_classes > 0 else None

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        f = self.pool(self.forward_features(points))
        return f if self.cls_head_finetune is None else self.cls_head_finetune(f)


class VanillaClassifier(_Classifier, VanillaBackbone):
    """Vanilla multi-task classifier: ``model(points (B, N, 3)) -> (B, num_classes)``."""

    def __init__(self, num_classes=40, num_group=64, group_size=32, embed_dim=384, depth=12, num_heads=6,
                 drop_path_rate=0.2, head="full", norm_style="prenorm"):
        VanillaBackbone.__init__(self, embed_dim, depth, num_heads, 4.0, drop_path_rate, norm_style)
        self._add_head(num_classes, num_group, group_size, embed_dim, head)


class TwoTowerClassifier(_Classifier, TwoTowerBackbone):
    """Two-tower classifier: queries from the contrastive tower, local tokens from the generative one."""

    def __init__(self, num_classes=40, num_group=64, group_size=32, embed_dim=384, depth=12, num_heads=6,
                 drop_path_rate=0.2, head="full", norm_style="released"):
        TwoTowerBackbone.__init__(self, embed_dim, depth, num_heads, 4.0, drop_path_rate, norm_style)
        self._add_head(num_classes, num_group, group_size, embed_dim, head)


class _DistillPretrain(ReConPretrain):
    """ReCon's objective (reconstruction + Smooth-L1 img/text distillation) over another backbone:
    ``model(points, img_feat=None, text_feat=None, generator=None) -> dict(loss, loss_recon,
    loss_img, loss_text)`` (forward and losses are ReConPretrain's)."""

    def __init__(self, backbone, num_group, group_size, embed_dim, mask_ratio, mask_type, decoder_depth,
                 decoder_num_heads, img_dim, text_dim, drop_path_rate, loss):
        MaskedPretrainModel.__init__(self, backbone, num_group, group_size, mask_ratio, mask_type, decoder_depth,
                                     decoder_num_heads, drop_path_rate, loss)
        self.img_proj = nn.Linear(embed_dim, img_dim) if img_dim else None
        self.text_proj = nn.Linear(embed_dim, text_dim) if text_dim else None
        for proj in (self.img_proj, self.text_proj):
            if proj is not None:  # as ReCon: N(0.02, 0.01) weights, zero bias
                nn.init.normal_(proj.weight, mean=0.02, std=0.01)
                nn.init.zeros_(proj.bias)
        self.smc, self.cls_proj = False, None  # the ablations have no single-modal term


class VanillaMultiTaskPretrain(_DistillPretrain):
    """Vanilla multi-task pretraining: one stream carries reconstruction and distillation."""

    def __init__(self, num_group=64, group_size=32, embed_dim=384, depth=12, num_heads=6, decoder_depth=4,
                 decoder_num_heads=None, mask_ratio=0.6, mask_type="rand", img_dim=768, text_dim=512,
                 drop_path_rate=0.1, loss="cdl2", norm_style="prenorm"):
        backbone = VanillaBackbone(embed_dim, depth, num_heads, 4.0, drop_path_rate, norm_style)
        super().__init__(backbone, num_group, group_size, embed_dim, mask_ratio, mask_type, decoder_depth,
                         decoder_num_heads or num_heads, img_dim, text_dim, drop_path_rate, loss)


class TwoTowerPretrain(_DistillPretrain):
    """Two-tower pretraining: the generative tower reconstructs, the contrastive tower distils."""

    def __init__(self, num_group=64, group_size=32, embed_dim=384, depth=12, num_heads=6, decoder_depth=4,
                 decoder_num_heads=None, mask_ratio=0.6, mask_type="rand", img_dim=768, text_dim=512,
                 drop_path_rate=0.1, loss="cdl2", norm_style="released"):
        backbone = TwoTowerBackbone(embed_dim, depth, num_heads, 4.0, drop_path_rate, norm_style)
        backbone.init_pretrain_weights()
        super().__init__(backbone, num_group, group_size, embed_dim, mask_ratio, mask_type, decoder_depth,
                         decoder_num_heads or num_heads, img_dim, text_dim, drop_path_rate, loss)


def _classifier(cls, name, kw):
    config = classifier_config(name, kw["num_classes"], kw["npoints"], kw["num_group"], kw["group_size"],
                               kw["drop_path_rate"], kw["head"], kw["depth"], kw["embed_dim"], kw["num_heads"],
                               norm_style=kw["norm_style"])
    return build(cls, config, kw["pretrained"], kw["strict"])


def _pretrain(cls, name, kw):
    pretrained, strict = kw.pop("pretrained"), kw.pop("strict")
    return build(cls, pretrain_config(name, **kw), pretrained, strict)


_VANILLA = "Vanilla multi-task ablation (one self-attention stream for both objectives)"
_TWOTOWER = "Two-tower ablation (generative Point-MAE tower + contrastive two-stream tower)"


@register_model(description=f"{_VANILLA}: classifier, C=192")
def vanilla_multitask_tiny(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.2,
                           head="full", pretrained=None, norm_style="prenorm", depth=12, embed_dim=192, num_heads=3,
                           strict=True):
    return _classifier(VanillaClassifier, "vanilla_multitask_tiny", dict(locals()))


@register_model(description=f"{_VANILLA}: classifier, C=384")
def vanilla_multitask_base(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.2,
                           head="full", pretrained=None, norm_style="prenorm", depth=12, embed_dim=384, num_heads=6,
                           strict=True):
    return _classifier(VanillaClassifier, "vanilla_multitask_base", dict(locals()))


@register_model(description=f"{_TWOTOWER}: classifier, C=192")
def twotower_tiny(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.2, head="full",
                  pretrained=None, norm_style="released", depth=12, embed_dim=192, num_heads=3,
                  strict=True):
    return _classifier(TwoTowerClassifier, "twotower_tiny", dict(locals()))


@register_model(description=f"{_TWOTOWER}: classifier, C=384")
def twotower_base(num_classes=40, npoints=1024, num_group=None, group_size=32, drop_path_rate=0.2, head="full",
                  pretrained=None, norm_style="released", depth=12, embed_dim=384, num_heads=6,
                  strict=True):
    return _classifier(TwoTowerClassifier, "twotower_base", dict(locals()))


@register_model(kind="pretrain", description=f"{_VANILLA}: pretraining, C=192")
def vanilla_multitask_tiny_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand",
                                    img_dim=768, text_dim=512, drop_path_rate=0.1, loss="cdl2", pretrained=None,
                                    norm_style="prenorm", depth=12, embed_dim=192, num_heads=3, decoder_depth=4,
                                    decoder_num_heads=None, strict=True):
    return _pretrain(VanillaMultiTaskPretrain, "vanilla_multitask_tiny_pretrain", dict(locals()))


@register_model(kind="pretrain", description=f"{_VANILLA}: pretraining, C=384")
def vanilla_multitask_base_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand",
                                    img_dim=768, text_dim=512, drop_path_rate=0.1, loss="cdl2", pretrained=None,
                                    norm_style="prenorm", depth=12, embed_dim=384, num_heads=6, decoder_depth=4,
                                    decoder_num_heads=None, strict=True):
    return _pretrain(VanillaMultiTaskPretrain, "vanilla_multitask_base_pretrain", dict(locals()))


@register_model(kind="pretrain", description=f"{_TWOTOWER}: pretraining, C=192")
def twotower_tiny_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand", img_dim=768,
                           text_dim=512, drop_path_rate=0.1, loss="cdl2", pretrained=None, norm_style="released",
                           depth=12, embed_dim=192, num_heads=3, decoder_depth=4, decoder_num_heads=None,
                           strict=True):
    return _pretrain(TwoTowerPretrain, "twotower_tiny_pretrain", dict(locals()))


@register_model(kind="pretrain", description=f"{_TWOTOWER}: pretraining, C=384")
def twotower_base_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand", img_dim=768,
                           text_dim=512, drop_path_rate=0.1, loss="cdl2", pretrained=None, norm_style="released",
                           depth=12, embed_dim=384, num_heads=6, decoder_depth=4, decoder_num_heads=None,
                           strict=True):
    return _pretrain(TwoTowerPretrain, "twotower_base_pretrain", dict(locals()))
