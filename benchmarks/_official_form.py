"""The official code's training-step arithmetic, re-expressed on recon's modules (a timing baseline).

The released ReCon code cannot run on a CPU (its FPS and kNN come from CUDA-only extensions), so
``benchmarks/train_step.py --modes official`` times recon's own classifier with its forwards replaced,
on the instance, by the layout and operations that docs/official.md §2 and §4 describe for the released
modules:

* the patch embedding as channels-first kernel-1 ``Conv1d`` layers, the 256-d group maximum
  concatenated in front of every point's features (the full 512→512 product per point), ``torch.max``;
* attention as explicit ``q·kᵀ·scale → softmax → ·v`` on ``qkv`` split by indexing;
* the token sequence ``[cls, img, text, locals]`` as one tensor, positions re-added to all of it
  before every block and the queries/locals sliced out and concatenated again inside each block;
* ``torch.optim.AdamW`` with torch's CPU default (the per-parameter loop), the official groups.

Weights, initialisation, grouping and maths are recon's: the logits equal the unpatched model's to
float tolerance (:func:`check_same_logits`). Written from the facts in docs/official.md; no official
code is copied.
"""

from __future__ import annotations

import types

import torch

from recon.models.layers import Attention, CrossAttention, ReConBlock
from recon.models.recon import ReConTransformer
from recon.models.tokenizer import PatchEmbed

__all__ = ["official_form", "check_same_logits"]


def _encoder(self, point_groups):
    B, G, S, _ = point_groups.shape
    x = point_groups.reshape(B * G, S, 3).transpose(2, 1)
    f = self.first_conv(x)
    g = torch.max(f, dim=2, keepdim=True)[0]
    f = torch.cat([g.expand(-1, -1, S), f], dim=1)
    f = self.second_conv(f)
    return torch.max(f, dim=2, keepdim=False)[0].reshape(B, G, self.encoder_channel)


def _explicit(q, k, v, scale):
    attn = (q @ k.transpose(-2, -1)) * scale
    attn = attn.softmax(dim=-1)
    B, H, L, hd = q.shape
    return (attn @ v).transpose(1, 2).reshape(B, L, H * hd)


def _self_attention(self, x, return_attention=False):
    B, N, C = x.shape
    qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0], qkv[1], qkv[2]
    return self.proj(_explicit(q, k, v, self.scale)), None


def _cross_attention(self, x, context, return_attention=False):
    B, L, C = x.shape
    N, H = context.shape[1], self.num_heads
    q = self.q(x).reshape(B, L, H, C // H).permute(0, 2, 1, 3)
    kv = self.kv(context).reshape(B, N, 2, H, C // H).permute(2, 0, 3, 1, 4)
    return self.proj(_explicit(q, kv[0], kv[1], self.scale)), None


def _block(self, x, stop_grad=False):
    """One released block on the whole sequence: slice, the two streams, concatenate."""
    dp = self.drop_path
    q, v = x[:, :3], x[:, 3:]
    q, v = self.norm1_contrast(q), self.norm1(v)
    q = q + dp(self.attn_contrast(q, v.detach() if stop_grad else v)[0])
    v = v + dp(self.attn(v)[0])
    q, v = self.norm2_contrast(q), self.norm2(v)
    q = q + dp(self.mlp_contrast(q))
    v = v + dp(self.mlp(v))
    return torch.cat([q, v], dim=1)


def _transformer(self, q, v, qpos, vpos, stop_grad=False, return_attention=False):
    B = v.shape[0]
    x = torch.cat([q, v], dim=1)
    pos = torch.cat([qpos.expand(B, -1, -1), vpos], dim=1)
    for blk in self.blocks:
        x = _block(blk, x + pos, stop_grad)
    return x[:, :3], x[:, 3:], []


def official_form(model: torch.nn.Module) -> torch.nn.Module:
    """Patch ``model`` (a recon ReCon classifier) in place to run the released layout; returns it."""
    patched = 0
    for m in model.modules():
        if isinstance(m, PatchEmbed):
            m.forward = types.MethodType(_encoder, m)
        elif isinstance(m, Attention):
            m.forward = types.MethodType(_self_attention, m)
        elif isinstance(m, CrossAttention):
            m.forward = types.MethodType(_cross_attention, m)
        elif isinstance(m, ReConTransformer):
            if not all(isinstance(b, ReConBlock) and b.norm_style == "released" for b in m.blocks):
                raise ValueError("official_form needs released-style ReCon blocks")
            m.forward = types.MethodType(_transformer, m)
        else:
            continue
        patched += 1
    if patched == 0:
        raise ValueError(f"official_form: nothing to patch in {type(model).__name__} (a ReCon classifier?)")
    return model


@torch.no_grad()
def check_same_logits(name: str, npoints: int, batch: int = 2) -> float:
    """Max |logit difference| between recon's forward and the official form (eval mode, same weights)."""
    from recon.models import create_model

    torch.manual_seed(0)
    ours = create_model(name, num_classes=15, npoints=npoints).eval()
    theirs = create_model(name, num_classes=15, npoints=npoints).eval()
    theirs.load_state_dict(ours.state_dict())
    official_form(theirs)
    x = torch.rand(batch, npoints, 3) * 2 - 1
    return float((ours(x) - theirs(x)).abs().max())
