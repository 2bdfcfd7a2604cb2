"""Pretraining models: ReCon (masked reconstruction + cross-modal distillation) and Point-MAE.

docs/official.md §6. The clouds are grouped, every group is embedded (BatchNorm sees the masked
groups too), a fraction ``mask_ratio`` of the groups per sample is masked, the visible tokens go
through the encoder, and a 4-block pre-norm decoder over ``[visible outputs, mask tokens]``
predicts the masked groups (Conv1d C→3·S), scored by Chamfer-L2 (``mean d1 + mean d2``, squared
distances) or Chamfer-L1. ReCon adds Smooth-L1 regression of ``img_proj(img query)`` and
``text_proj(text query)`` to precomputed, frozen teacher features; the queries read
``detach()``-ed local tokens, so these losses never reach the local stream. ``smc=True`` adds the
single-modal contrastive term of :mod:`.smc` on the cls query (off by default, as in every
official config).

Randomness: masks are drawn from ``torch.rand`` / ``torch.randint`` with the ``generator``
passed to ``forward`` (on the generator's device), else the global torch RNG. The official code
uses numpy's RNG, so masks differ draw by draw but follow the same law: exactly
``int(mask_ratio * G)`` masked groups per sample, uniformly at random (``"rand"``) or the
nearest centres to a random seed centre (``"block"``).
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F
from torch import nn

from recon.ops import ChamferDistanceL1, ChamferDistanceL2, gather_points

from ._builder import build, init_vit_weights, pretrain_config
from .layers import Block, drop_path_rates
from .pointmae import PointMAEBackbone
from .recon import ReConBackbone
from .registry import register_model
from .smc import cls_projection, smc_loss
from .tokenizer import Group, PosEmbed

__all__ = [
    "TransformerDecoder",
    "MaskedPretrainModel",
    "ReConPretrain",
    "PointMAEPretrain",
    "random_mask",
    "recon_tiny_pretrain",
    "recon_small_pretrain",
    "recon_base_pretrain",
    "pointmae_base_pretrain",
]

MASK_TYPES = ("rand", "block")
LOSSES = {"cdl2": ChamferDistanceL2, "cdl1": ChamferDistanceL1}


def random_mask(
    center: torch.Tensor, mask_ratio: float, mask_type: str = "rand", generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose the masked groups.

    Args:
        center: ``(B, G, 3)`` group centres.
        mask_ratio: fraction of groups to mask; ``int(mask_ratio * G)`` per sample.
        mask_type: ``"rand"`` (uniform) or ``"block"`` (nearest centres to a random seed centre).
        generator: optional ``torch.Generator``; its device is used to draw, then moved.

    Returns:
        ``vis_idx (B, G - M)`` and ``mask_idx (B, M)`` int64, each ascending (group order, as the
        official boolean-mask selection yields).
    """
    B, G, _ = center.shape
    n_mask = int(mask_ratio * G)
    if not 1 <= n_mask < G:
        raise ValueError(f"mask_ratio={mask_ratio} masks {n_mask} of {G} groups; need 1 <= masked < num_group")
    dev = generator.device if generator is not None else center.device
    if mask_type == "rand":
        perm = torch.rand(B, G, generator=generator, device=dev).argsort(dim=1).to(center.device)
    elif mask_type == "block":
        seed = torch.randint(G, (B, 1), generator=generator, device=dev).to(center.device)
        seed_xyz = gather_points(center, seed)  # (B, 1, 3)
        perm = ((center - seed_xyz) ** 2).sum(-1).argsort(dim=1)
    else:
        raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
    mask_idx = perm[:, :n_mask].sort(dim=1).values
    vis_idx = perm[:, n_mask:].sort(dim=1).values
    return vis_idx, mask_idx


class TransformerDecoder(nn.Module):
    """MAE decoder: pre-norm blocks, positions re-added before each; LN on the last tokens only."""

    def __init__(self, dim, depth=4, num_heads=6, mlp_ratio=4.0, drop_path_rate=0.1):
        super().__init__()
        dpr = drop_path_rates(drop_path_rate, depth)
        self.blocks = nn.ModuleList(Block(dim, num_heads, mlp_ratio, dpr[i]) for i in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, pos: torch.Tensor, return_token_num: int) -> torch.Tensor:
        """``x, pos (B, L, C)`` -> ``(B, return_token_num, C)`` (the last tokens, normalised)."""
        for blk in self.blocks:
            x = blk(x + pos)
        return self.norm(x[:, -return_token_num:])


class MaskedPretrainModel(nn.Module, metaclass=abc.ABCMeta):
    """Shared masked-point-modelling machinery; subclasses provide ``MAE_encoder`` and the losses.

    Registration order (= official keys): ``mask_token``, ``MAE_encoder``, ``decoder_pos_embed``,
    ``MAE_decoder``, ``increase_dim``, then the subclass's extras.
    """

    def __init__(self, backbone: nn.Module, num_group, group_size, mask_ratio, mask_type, decoder_depth,
                 decoder_num_heads, drop_path_rate, loss):
        super().__init__()
        if mask_type not in MASK_TYPES:
            raise ValueError(f"mask_type must be one of {MASK_TYPES}, got {mask_type!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        C = backbone.embed_dim
        self.mask_ratio = float(mask_ratio)
        self.mask_type = mask_type
        self.group_size = int(group_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, C))
        self.MAE_encoder = backbone
        self.decoder_pos_embed = PosEmbed(C)
        self.MAE_decoder = TransformerDecoder(C, decoder_depth, decoder_num_heads, 4.0, drop_path_rate)
        self.increase_dim = nn.Sequential(nn.Conv1d(C, 3 * group_size, 1))
        self.group_divider = Group(num_group, group_size)
        self.loss_recon_fn = LOSSES[loss]()
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    @property
    def encoder(self) -> nn.Module:
        """The backbone (official ``MAE_encoder``); its keys are those of the finetune backbone."""
        return self.MAE_encoder

    @abc.abstractmethod
    def encode_visible(self, tokens: torch.Tensor, center: torch.Tensor):
        """Run the encoder on the visible tokens; returns ``(local (B, V, C), extras)``."""

    def _masked_forward(self, points: torch.Tensor, generator: torch.Generator | None):
        neighborhood, center = self.group_divider(points, self.MAE_encoder.encoder.dtype)
        tokens = self.MAE_encoder.encoder(neighborhood)  # every group: BN statistics see all of them
        vis_idx, mask_idx = random_mask(center, self.mask_ratio, self.mask_type, generator)
        B, M = mask_idx.shape
        C = tokens.shape[-1]
        vis_center, mask_center = gather_points(center, vis_idx), gather_points(center, mask_idx)
        local, extras = self.encode_visible(gather_points(tokens, vis_idx), vis_center)
        pos = self.decoder_pos_embed(torch.cat([vis_center, mask_center], dim=1))
        x = torch.cat([local, self.mask_token.expand(B, M, C)], dim=1)
        x = self.MAE_decoder(x, pos, M)  # (B, M, C)
        pred = self.increase_dim(x.transpose(1, 2)).transpose(1, 2).reshape(B * M, self.group_size, 3)
        S = neighborhood.shape[2]
        target = gather_points(neighborhood.reshape(B, -1, S * 3), mask_idx).reshape(B * M, S, 3)
        return pred, target, extras, (center, vis_idx, mask_idx)

    @torch.no_grad()
    def reconstruct(self, points: torch.Tensor, generator: torch.Generator | None = None) -> dict:
        """Predicted masked groups for visualisation.

        Returns:
            dict of ``pred``/``target`` ``(B, M, S, 3)`` (centred), ``center (B, G, 3)``,
            ``vis_idx (B, V)``, ``mask_idx (B, M)``; ``pred + center[mask_idx]`` is in cloud space.
        """
        pred, target, _, (center, vis_idx, mask_idx) = self._masked_forward(points, generator)
        B, M = mask_idx.shape
        return {
            "pred": pred.reshape(B, M, -1, 3),
            "target": target.reshape(B, M, -1, 3),
            "center": center,
            "vis_idx": vis_idx,
            "mask_idx": mask_idx,
        }


class ReConPretrain(MaskedPretrainModel):
    """ReCon pretraining model.

    ``model(points (B, N, 3), img_feat=(B, img_dim), text_feat=(B, text_dim), text=None, generator=None)``
    returns float scalars ``loss`` (sum of the present terms), ``loss_recon`` and, when the
    teacher feature is given, ``loss_img`` / ``loss_text``. ``img_dim=0`` / ``text_dim=0``
    removes that projection. ``smc=True`` adds ``cls_proj`` (registered last, where the official
    state dict has it) and ``loss_smc``, which needs ``text``: the raw category string per sample.
    """

    def __init__(self, num_group=64, group_size=32, embed_dim=384, depth=12, num_heads=6, decoder_depth=4,
                 decoder_num_heads=None, mask_ratio=0.6, mask_type="rand", img_dim=768, text_dim=512,
                 drop_path_rate=0.1, loss="cdl2", norm_style="released", smc=False):
        backbone = ReConBackbone(embed_dim, depth, num_heads, 4.0, drop_path_rate, norm_style, stop_grad=True)
        backbone.init_pretrain_weights()
        super().__init__(backbone, num_group, group_size, mask_ratio, mask_type, decoder_depth,
                         decoder_num_heads or num_heads, drop_path_rate, loss)
        self.img_proj = nn.Linear(embed_dim, img_dim) if img_dim else None
        self.text_proj = nn.Linear(embed_dim, text_dim) if text_dim else None
        for proj in (self.img_proj, self.text_proj):
            if proj is not None:  # official: N(0.02, 0.01) weights, zero bias
                nn.init.normal_(proj.weight, mean=0.02, std=0.01)
                nn.init.zeros_(proj.bias)
        self.smc = bool(smc)
        self.cls_proj = cls_projection(embed_dim) if self.smc else None

    def encode_visible(self, tokens, center):
        q, v, _ = self.MAE_encoder.forward_tokens(tokens, center)
        return v, q

    @staticmethod
    def _check_feat(feat, proj, name, B):
        if proj is None:
            raise ValueError(f"{name} was given but the model has no projection for it ({name[:-5]}_dim=0)")
        if feat.ndim != 2 or feat.shape != (B, proj.out_features):
            raise ValueError(f"{name} must have shape ({B}, {proj.out_features}), got {tuple(feat.shape)}")

    def forward(self, points, img_feat=None, text_feat=None, text=None, generator=None) -> dict:
        B = points.shape[0]
        if self.smc and text is None:
            raise ValueError("this model has smc=True: forward needs text= (the raw category string per sample)")
        pred, target, q, _ = self._masked_forward(points, generator)
        out = {"loss_recon": self.loss_recon_fn(pred, target)}
        loss = out["loss_recon"]
        if img_feat is not None:
            self._check_feat(img_feat, self.img_proj, "img_feat", B)
            out["loss_img"] = F.smooth_l1_loss(self.img_proj(q[:, 1]), img_feat.to(q.dtype))
            loss = loss + out["loss_img"]
        if text_feat is not None:
            self._check_feat(text_feat, self.text_proj, "text_feat", B)
            out["loss_text"] = F.smooth_l1_loss(self.text_proj(q[:, 2]), text_feat.to(q.dtype))
            loss = loss + out["loss_text"]
        if self.smc:
            out["loss_smc"] = smc_loss(self.cls_proj(q[:, 0]), text)
            loss = loss + out["loss_smc"]
        out["loss"] = loss
        return out


class PointMAEPretrain(MaskedPretrainModel):
    """Point-MAE pretraining model: ``model(points, generator=None) -> {"loss", "loss_recon"}``.

    ``img_feat`` / ``text_feat`` / ``text`` are accepted so one training loop drives both families; Point-MAE
    has no cross-modal heads and ignores them (the returned dict then has no ``loss_img``/``loss_text``).
    """

    def __init__(self, num_group=64, group_size=32, embed_dim=384, depth=12, num_heads=6, decoder_depth=4,
                 decoder_num_heads=None, mask_ratio=0.6, mask_type="rand", drop_path_rate=0.1, loss="cdl2"):
        backbone = PointMAEBackbone(embed_dim, depth, num_heads, 4.0, drop_path_rate, cls_token=False)
        backbone.apply(init_vit_weights)
        super().__init__(backbone, num_group, group_size, mask_ratio, mask_type, decoder_depth,
                         decoder_num_heads or num_heads, drop_path_rate, loss)

    def encode_visible(self, tokens, center):
        return self.MAE_encoder.forward_tokens(tokens, center), None

    def forward(self, points, img_feat=None, text_feat=None, text=None, generator=None) -> dict:
        pred, target, _, _ = self._masked_forward(points, generator)
        loss = self.loss_recon_fn(pred, target)
        return {"loss": loss, "loss_recon": loss}


def _recon_pretrain(name, pretrained, strict, **kw):
    return build(ReConPretrain, pretrain_config(name, **kw), pretrained, strict)


_PRETRAIN_DOC = "ReCon-{} pretraining model (masked reconstruction + image/text distillation)."


@register_model(kind="pretrain", description=_PRETRAIN_DOC.format("Tiny"))
def recon_tiny_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand", img_dim=768,
                        text_dim=512, drop_path_rate=0.1, loss="cdl2", pretrained=None, norm_style="released",
                        depth=12, embed_dim=192, num_heads=3, decoder_depth=4, decoder_num_heads=None,
                        smc=False, strict=True):
    kw = dict(locals())
    return _recon_pretrain("recon_tiny_pretrain", kw.pop("pretrained"), kw.pop("strict"), **kw)


@register_model(kind="pretrain", description=_PRETRAIN_DOC.format("Small"))
def recon_small_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand", img_dim=768,
                         text_dim=512, drop_path_rate=0.1, loss="cdl2", pretrained=None, norm_style="released",
                         depth=12, embed_dim=256, num_heads=4, decoder_depth=4, decoder_num_heads=None,
                         smc=False, strict=True):
    kw = dict(locals())
    return _recon_pretrain("recon_small_pretrain", kw.pop("pretrained"), kw.pop("strict"), **kw)


@register_model(kind="pretrain", description=_PRETRAIN_DOC.format("Base"))
def recon_base_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand", img_dim=768,
                        text_dim=512, drop_path_rate=0.1, loss="cdl2", pretrained=None, norm_style="released",
                        depth=12, embed_dim=384, num_heads=6, decoder_depth=4, decoder_num_heads=None,
                        smc=False, strict=True):
    kw = dict(locals())
    return _recon_pretrain("recon_base_pretrain", kw.pop("pretrained"), kw.pop("strict"), **kw)


@register_model(kind="pretrain", description="Point-MAE pretraining model (masked reconstruction only).")
def pointmae_base_pretrain(npoints=1024, num_group=64, group_size=32, mask_ratio=0.6, mask_type="rand",
                           drop_path_rate=0.1, loss="cdl2", pretrained=None, depth=12, embed_dim=384, num_heads=6,
                           decoder_depth=4, decoder_num_heads=None, strict=True):
    kw = dict(locals())
    del kw["pretrained"], kw["strict"]
    return build(PointMAEPretrain, pretrain_config("pointmae_base_pretrain", **kw), pretrained, strict)
