"""Image teachers: ViT-B/16 ImageNet-21k with Tanh pre-logits (768-d) and CLIP ViT-B/32's image
tower (512-d, for the zero-shot pretraining).

The in21k ViT is written here with timm 0.4.5's key names (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``,
``pre_logits.fc``; LayerNorm eps 1e-6), because current timm dropped the representation layer.
Feature = ``tanh(pre_logits.fc(norm(x)[:, 0]))``. The CLIP tower is open_clip's
``VisionTransformer`` (OpenAI layout, QuickGELU): ``ln_post(x[:, 0]) @ proj``.
``"tiny"`` / ``"clip-tiny"`` are 2-layer demo versions with the same output sizes.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from . import weights as W
from .base import FrozenTeacher

__all__ = ["ImageTeacher", "ViTPreLogits", "build_image_teacher", "IMAGE_ARCHS"]

ENV_VAR = "RECON_IMAGE_TEACHER"
IMAGE_ARCHS = {  # arch -> (kind, patch, width, depth, heads, output dim)
    "vit_base_patch16_224_in21k": ("vit", 16, 768, 12, 12, 768),
    "clip-ViT-B-32": ("clip", 32, 768, 12, 12, 512),
    "tiny": ("vit", 32, 128, 2, 2, 768),
    "clip-tiny": ("clip", 32, 128, 2, 2, 512),
}


class _Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).view(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(B, N, C))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), _Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), _Mlp(dim, dim * 4)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class _PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class _PreLogits(nn.Module):
    def __init__(self, dim: int, out: int):
        super().__init__()
        self.fc, self.act = nn.Linear(dim, out), nn.Tanh()

    def forward(self, x):
        return self.act(self.fc(x))


class ViTPreLogits(nn.Module):
    """timm-0.4.5-style ViT ending in the Tanh representation layer (no classifier head).

    ``forward(images [B, 3, S, S]) -> [B, representation]``.
    """

    def __init__(self, image_size: int = 224, patch: int = 16, dim: int = 768, depth: int = 12,
                 heads: int = 12, representation: int = 768):
        super().__init__()
        n = (image_size // patch) ** 2
        self.patch_embed = _PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, dim))
        self.blocks = nn.ModuleList(_Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pre_logits = _PreLogits(dim, representation)
        # timm draws trunc_normal(0.02) cut at ±2, i.e. ±100 std: a plain normal, much faster
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.pre_logits(self.norm(x)[:, 0])


class ImageTeacher(FrozenTeacher):
    """Frozen image tower: ``encode(images [n, 3, 224, 224]) -> [n, dim]`` float32.

    Images are what :class:`recon.data.images.ImageTransform` produces (ImageNet-normalised,
    BGR-ordered by default, as the official pipeline feeds both teachers).
    """

    def encode(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be a tensor [n, 3, H, W], got "
                             f"{getattr(images, 'shape', type(images).__name__)}")
        out = []
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                out.append(self.tower(images[s: s + batch_size].to(self.device).float()).float())
        return torch.cat(out) if out else torch.empty(0, self.dim, device=self.device)

    forward = encode


def build_image_teacher(arch: str = "vit_base_patch16_224_in21k", weights: Optional[str] = None,
                        device="cpu") -> ImageTeacher:
    """Builds the frozen image teacher.

    Args:
        arch: ``"vit_base_patch16_224_in21k"`` (official, 768-d), ``"clip-ViT-B-32"`` (zero-shot
            pretraining, 512-d), or the demo archs ``"tiny"`` (768-d) / ``"clip-tiny"`` (512-d).
        weights: a file (see :mod:`recon.teachers.weights`): timm-style in21k state dict (a
            ``head.*`` classifier is ignored), CLIP state dict / OpenAI archive (``visual.*``), or
            an official full ReCon checkpoint (``img_encoder.*``). Default ``$RECON_IMAGE_TEACHER``;
            none → random init with a loud warning.
    """
    if arch not in IMAGE_ARCHS:
        raise ValueError(f"image teacher arch must be one of {sorted(IMAGE_ARCHS)}, got {arch!r}")
    kind, patch, width, depth, heads, dim = IMAGE_ARCHS[arch]
    path = W.resolve(weights, ENV_VAR)
    if kind == "vit":
        make = lambda: ViTPreLogits(224, patch, width, depth, heads, dim)  # noqa: E731
    else:
        from open_clip.transformer import QuickGELU, VisionTransformer

        make = lambda: VisionTransformer(image_size=224, patch_size=patch, width=width,  # noqa: E731
                                         layers=depth, heads=heads, mlp_ratio=4.0, output_dim=dim,
                                         act_layer=QuickGELU)
    tower = W.construct(make, random_init=path is None)
    if path is None:
        W.warn_random("image", arch, ENV_VAR)
        weights_id = f"random-init:{arch}:seed0:torch{torch.__version__.split('+')[0]}"
    else:
        state = W.read_state_dict(path)
        prefixes = ("img_encoder.", "") if kind == "vit" else ("img_encoder.", "visual.", "")
        W.load_into(tower, state, path, prefixes=prefixes,
                    ignore=("head.", "fc_norm.", "text_encoder.", "transformer.", "token_embedding.",
                            "positional_embedding", "ln_final.", "text_projection", "logit_scale",
                            "input_resolution", "context_length", "vocab_size"))
        weights_id = W.file_digest(path)
    if arch in ("tiny", "clip-tiny"):
        warnings.warn(f"image teacher {arch!r}: a small demo architecture, not the official ViT",
                      stacklevel=2)
    return ImageTeacher(tower, arch, weights_id, dim).to(device)
