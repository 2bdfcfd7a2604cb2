"""CLIP's text and image towers in OpenAI's key layout, as plain PyTorch modules.

The key names are those of OpenAI's ``ViT-B-32.pt`` and of open_clip (``token_embedding``,
``positional_embedding``, ``transformer.resblocks.N.{ln_1,attn.in_proj_*,attn.out_proj,ln_2,
mlp.c_fc,mlp.c_proj}``, ``ln_final``, ``text_projection``; ``visual.{conv1,class_embedding,
positional_embedding,ln_pre,transformer,ln_post,proj}``), and the computation is the official one
(QuickGELU, causal text attention, feature = ``ln_final(x)[EOT] @ text_projection`` /
``ln_post(x[:, 0]) @ proj``: docs/official.md §6). Written here so that the towers need no
optional package: only the real CLIP tokenizer (the BPE vocabulary) comes from open_clip.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import torch
from torch import nn

__all__ = ["CLIPTextTower", "CLIPVisionTower", "ByteTokenizer", "SOT", "EOT", "CONTEXT"]

SOT, EOT, CONTEXT, VOCAB = 49406, 49407, 77, 49408  # CLIP's special tokens, context and vocabulary


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class _ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(OrderedDict(
            c_fc=nn.Linear(width, width * 4), gelu=QuickGELU(), c_proj=nn.Linear(width * 4, width)))

    def forward(self, x, mask=None):
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.ModuleList(_ResidualAttentionBlock(width, heads) for _ in range(layers))

    def forward(self, x, mask=None):
        for block in self.resblocks:
            x = block(x, mask)
        return x

    def init_(self):
        """OpenAI's text-transformer init (also used here for the randomly initialised towers)."""
        proj_std = self.width ** -0.5 * (2 * self.layers) ** -0.5
        for block in self.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=self.width ** -0.5)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=(2 * self.width) ** -0.5)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)


class CLIPTextTower(nn.Module):
    """``forward(tokens [n, 77] int64) -> [n, output_dim]``: ``ln_final(x)[argmax token] @ text_projection``
    (the EOT token has the largest id, so its position is the argmax)."""

    def __init__(self, width: int = 512, heads: int = 8, layers: int = 12, output_dim: int = 512,
                 context: int = CONTEXT, vocab: int = VOCAB):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, width)
        self.positional_embedding = nn.Parameter(torch.empty(context, width))
        self.transformer = _Transformer(width, layers, heads)
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, output_dim))
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        nn.init.normal_(self.text_projection, std=width ** -0.5)
        self.transformer.init_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        n = tokens.shape[1]
        x = self.token_embedding(tokens) + self.positional_embedding[:n]
        causal = torch.full((n, n), float("-inf"), device=x.device, dtype=x.dtype).triu(1)
        x = self.ln_final(self.transformer(x, causal))
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(-1)] @ self.text_projection


class CLIPVisionTower(nn.Module):
    """``forward(images [n, 3, S, S]) -> [n, output_dim]``: ``ln_post(x[:, 0]) @ proj``."""

    def __init__(self, image_size: int = 224, patch: int = 32, width: int = 768, layers: int = 12,
                 heads: int = 12, output_dim: int = 512):
        super().__init__()
        scale = width ** -0.5
        self.conv1 = nn.Conv2d(3, width, patch, patch, bias=False)
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image_size // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, output_dim))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.conv1(images).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        x = self.ln_pre(torch.cat([cls, x], 1) + self.positional_embedding)
        return self.ln_post(self.transformer(x)[:, 0]) @ self.proj


class ByteTokenizer:
    """The demo towers' tokenizer: ``[SOT, byte + 1 ..., EOT]``, zero-padded to 77 (needs no vocabulary
    file). Only for randomly initialised towers: real CLIP weights need the CLIP BPE tokenizer."""

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(texts), CONTEXT, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [SOT] + [b + 1 for b in text.encode("utf-8")][: CONTEXT - 2] + [EOT]
            out[i, : len(ids)] = torch.tensor(ids)
        return out

    def __repr__(self) -> str:
        return "ByteTokenizer()"
