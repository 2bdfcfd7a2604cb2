"""The text teacher: CLIP ViT-B/32's text tower (OpenAI layout, QuickGELU; :mod:`.clip`).

Feature = ``ln_final(x)[EOT] @ text_projection`` (512-d), as the official vendored CLIP computes
it (docs/official.md §6); tokenised with the CLIP BPE (context 77, from open_clip:
``pip install 'recon[teachers]'``). ``arch="tiny"`` is a 2-layer, 128-wide tower with the same output
size and a byte tokenizer, for the demo and tests: it needs no optional package.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch
from torch import nn

from recon.errors import ConfigError

from . import weights as W
from .base import FrozenTeacher
from .clip import ByteTokenizer, CLIPTextTower

__all__ = ["TextTeacher", "build_text_teacher", "TEXT_ARCHS", "locate_text_weights"]

ENV_VAR = "RECON_TEXT_TEACHER"
TEXT_ARCHS = {  # arch -> (width, heads, layers, output dim)
    "ViT-B-32": (512, 8, 12, 512),
    "tiny": (128, 2, 2, 512),
}


class TextTeacher(FrozenTeacher):
    """Frozen text tower: ``encode(list of str) -> [n, dim]`` float32.

    Attributes:
        dim: feature size (512).
        arch: architecture name.
        weights_id: what the weights are (file digest or ``random-init:...``), for cache keys.
    """

    def __init__(self, tower: nn.Module, tokenizer, arch: str, weights_id: str, dim: int):
        super().__init__(tower, arch, weights_id, dim)
        self.tokenizer = tokenizer

    def encode(self, texts: Sequence[str], batch_size: int = 256) -> torch.Tensor:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError("texts must be a list of str")
        out = []
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                tokens = self.tokenizer(list(texts[s: s + batch_size])).to(self.device)
                out.append(self.tower(tokens).float())
        return torch.cat(out) if out else torch.empty(0, self.dim, device=self.device)

    forward = encode


def locate_text_weights(arch: str, weights: Optional[str], key: str = "weights") -> W.Source:
    """Where the text teacher's weights come from (:func:`recon.teachers.weights.locate`)."""
    if arch not in TEXT_ARCHS:
        raise ConfigError(f"text teacher arch must be one of {sorted(TEXT_ARCHS)}, got {arch!r}")
    return W.locate("text", arch, weights, ENV_VAR, key)


def _tokenizer(arch: str):
    if arch == "tiny":
        return ByteTokenizer()
    from recon._optional import require

    return require("open_clip.tokenizer", purpose="the CLIP tokenizer").SimpleTokenizer(context_length=77)


def build_text_teacher(arch: str = "ViT-B-32", weights: Optional[str] = None, device="cpu",
                       key: str = "weights") -> TextTeacher:
    """Builds the frozen text teacher.

    Args:
        arch: ``"ViT-B-32"`` (official) or ``"tiny"`` (demo/tests).
        weights: ``openai``, ``random``, a file or ``None`` (see :mod:`recon.teachers.weights`).
        device: where the tower lives.
        key: the config key of ``weights``, named in error messages.

    Raises:
        MissingFileError: the weights were not found (names the file, its origin and ``key``).
    """
    source = locate_text_weights(arch, weights, key)
    W.require_found([source])
    width, heads, layers, dim = TEXT_ARCHS[arch]
    tokenizer = _tokenizer(arch)
    tower = W.construct(lambda: CLIPTextTower(width, heads, layers, dim), random_init=source.random)
    if source.random:
        weights_id = W.random_id(arch)
    else:
        state = W.read_state_dict(source.path)
        W.load_into(tower, state, source.path, prefixes=("text_encoder.", "", "text."),
                    ignore=("visual.", "logit_scale", "logit_bias", "input_resolution",
                            "context_length", "vocab_size", "attn_mask"))
        weights_id = W.file_digest(source.path)
    if arch == "tiny":
        warnings.warn("text teacher 'tiny': a small demo architecture with a byte tokenizer, not CLIP "
                      "ViT-B/32", stacklevel=2)
    return TextTeacher(tower, tokenizer, arch, weights_id, dim).to(device)
