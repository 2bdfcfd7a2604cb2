"""Image teachers: ViT-B/16 ImageNet-21k with Tanh pre-logits (768-d) and CLIP ViT-B/32's image
tower (512-d, for the zero-shot pretraining).

The in21k ViT is written here with timm 0.4.5's key names (``cls_token``, ``pos_embed``,
``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}``, ``norm``,
``pre_logits.fc``; LayerNorm eps 1e-6), because current timm dropped the representation layer.
Feature = ``tanh(pre_logits.fc(norm(x)[:, 0]))`` (docs/official.md §6). The CLIP tower is
:class:`recon.teachers.clip.CLIPVisionTower` (OpenAI layout, QuickGELU): ``ln_post(x[:, 0]) @ proj``.
``"tiny"`` / ``"clip-tiny"`` are 2-layer demo versions with the same output sizes.
"""

from __future__ import annotations

import warnings
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from recon.errors import CheckpointError, ConfigError

from . import weights as W
from .base import FrozenTeacher
from .clip import CLIPVisionTower

__all__ = ["ImageTeacher", "ViTPreLogits", "build_image_teacher", "IMAGE_ARCHS", "locate_image_weights"]

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


def locate_image_weights(arch: str, weights: Optional[str], key: str = "weights") -> W.Source:
    """Where the image teacher's weights come from (:func:`recon.teachers.weights.locate`)."""
    if arch not in IMAGE_ARCHS:
        raise ConfigError(f"image teacher arch must be one of {sorted(IMAGE_ARCHS)}, got {arch!r}")
    return W.locate("image", arch, weights, ENV_VAR, key)


def _check_pre_logits(state: dict, path: str) -> None:
    """The official feature is the Tanh ``pre_logits`` output: a ViT file without it is another model."""
    looks_like_vit = any(k.endswith("patch_embed.proj.weight") for k in state)
    if looks_like_vit and not any(k.endswith("pre_logits.fc.weight") for k in state):
        raise CheckpointError(
            f"{path!r} has no pre_logits.fc layer: the official image teacher's feature is its Tanh "
            f"representation (768-d). timm 0.4.5's {W.IN21K_FILE} has it; in21k files of newer timm "
            f"(no representation layer) are a different teacher")


def build_image_teacher(arch: str = "vit_base_patch16_224_in21k", weights: Optional[str] = None,
                        device="cpu", key: str = "weights") -> ImageTeacher:
    """Builds the frozen image teacher.

    Args:
        arch: ``"vit_base_patch16_224_in21k"`` (official, 768-d), ``"clip-ViT-B-32"`` (zero-shot
            pretraining, 512-d), or the demo archs ``"tiny"`` (768-d) / ``"clip-tiny"`` (512-d).
        weights: ``in21k`` / ``openai``, ``random``, a file or ``None`` (see
            :mod:`recon.teachers.weights`): a timm-style in21k state dict with ``pre_logits`` (a
            ``head.*`` classifier is ignored), a CLIP state dict / OpenAI archive (``visual.*``), or an
            official full ReCon checkpoint (``img_encoder.*``).
        device: where the tower lives.
        key: the config key of ``weights``, named in error messages.

    Raises:
        MissingFileError: the weights were not found (names the file, its origin and ``key``).
        CheckpointError: the file does not fit the tower (an in21k ViT without ``pre_logits``).
    """
    source = locate_image_weights(arch, weights, key)
    W.require_found([source])
    kind, patch, width, depth, heads, dim = IMAGE_ARCHS[arch]
    if kind == "vit":
        make = lambda: ViTPreLogits(224, patch, width, depth, heads, dim)  # noqa: E731
    else:
        make = lambda: CLIPVisionTower(224, patch, width, depth, heads, dim)  # noqa: E731
    tower = W.construct(make, random_init=source.random)
    if source.random:
        weights_id = W.random_id(arch)
    else:
        state = W.read_state_dict(source.path)
        if kind == "vit":
            _check_pre_logits(state, source.path)
        prefixes = ("img_encoder.", "") if kind == "vit" else ("img_encoder.", "visual.", "")
        W.load_into(tower, state, source.path, prefixes=prefixes,
                    ignore=("head.", "fc_norm.", "text_encoder.", "transformer.", "token_embedding.",
                            "positional_embedding", "ln_final.", "text_projection", "logit_scale",
                            "input_resolution", "context_length", "vocab_size"))
        weights_id = W.file_digest(source.path)
    if arch in ("tiny", "clip-tiny"):
        warnings.warn(f"image teacher {arch!r}: a small demo architecture, not the official ViT",
                      stacklevel=2)
    return ImageTeacher(tower, arch, weights_id, dim).to(device)
