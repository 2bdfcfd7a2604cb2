"""The text teacher: CLIP ViT-B/32's text tower (open_clip modules, OpenAI layout and QuickGELU).

Feature = ``ln_final(x)[EOT] @ text_projection`` (512-d), as the official vendored CLIP computes
it; tokenised with the CLIP BPE (context 77). ``arch="tiny"`` is a 2-layer, 128-wide tower with
the same tokenizer and output size, for the demo and tests.
"""

from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch
from torch import nn

from . import weights as W
from .base import FrozenTeacher

__all__ = ["TextTeacher", "build_text_teacher", "TEXT_ARCHS"]

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


def build_text_teacher(arch: str = "ViT-B-32", weights: Optional[str] = None,
                       device="cpu") -> TextTeacher:
    """Builds the frozen text teacher.

    Args:
        arch: ``"ViT-B-32"`` (official) or ``"tiny"`` (demo/tests, random unless weights fit it).
        weights: a file (see :mod:`recon.teachers.weights` for accepted layouts); default
            ``$RECON_TEXT_TEACHER``; none → random init with a loud warning.
        device: where the tower lives.
    """
    if arch not in TEXT_ARCHS:
        raise ValueError(f"text teacher arch must be one of {sorted(TEXT_ARCHS)}, got {arch!r}")
    from open_clip.tokenizer import SimpleTokenizer
    from open_clip.transformer import QuickGELU, TextTransformer

    width, heads, layers, dim = TEXT_ARCHS[arch]
    path = W.resolve(weights, ENV_VAR)
    tower = W.construct(lambda: TextTransformer(context_length=77, vocab_size=49408, width=width,
                                                heads=heads, layers=layers, output_dim=dim,
                                                act_layer=QuickGELU), random_init=path is None)
    if path is None:
        W.warn_random("text", arch, ENV_VAR)
        weights_id = f"random-init:{arch}:seed0:torch{torch.__version__.split('+')[0]}"
    else:
        state = W.read_state_dict(path)
        W.load_into(tower, state, path, prefixes=("text_encoder.", "", "text."),
                    ignore=("visual.", "logit_scale", "logit_bias", "input_resolution",
                            "context_length", "vocab_size", "attn_mask"))
        weights_id = W.file_digest(path)
    if arch == "tiny":
        warnings.warn("text teacher 'tiny': a small demo architecture, not CLIP ViT-B/32",
                      stacklevel=2)
    return TextTeacher(tower, SimpleTokenizer(context_length=77), arch, weights_id, dim).to(device)
