"""Our modules against a step-by-step transcription of the maths in docs/official.md (random weights).

This is the stand-in for "same logits as the official code": block order (LN output replaces the
stream), positions re-added before every block, token order [cls, img, text, local...], final
LayerNorm over all tokens, head input [cls, img, text, max(local)], key → role mapping.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from recon.models import pointmae_base, recon_tiny
from recon.models.layers import ReConBlock
from recon.ops.reference import furthest_point_sample, knn
from zoo_helpers import TINY, TINY_PTS, clouds


def _ln(x, sd, p):
    return F.layer_norm(x, x.shape[-1:], sd[p + ".weight"], sd[p + ".bias"], eps=1e-5)


def _lin(x, sd, p, bias=True):
    y = x @ sd[p + ".weight"].T
    return y + sd[p + ".bias"] if bias else y


def _mlp(x, sd, p):
    return _lin(F.gelu(_lin(x, sd, p + ".fc1")), sd, p + ".fc2")


def _mha(xq, xkv, wq, wk, wv, heads):
    """Per-head loop: softmax(q_h k_hᵀ · hd^-0.5) v_h, heads concatenated in order."""
    C = wq.shape[0]
    hd = C // heads
    outs = []
    for h in range(heads):
        rows = slice(h * hd, (h + 1) * hd)
        q, k, v = xq @ wq[rows].T, xkv @ wk[rows].T, xkv @ wv[rows].T
        a = torch.softmax((q @ k.transpose(-1, -2)) * hd**-0.5, dim=-1)
        outs.append(a @ v)
    return torch.cat(outs, dim=-1)


def _self_attn(x, sd, p, heads):
    w = sd[p + ".qkv.weight"]
    C = w.shape[1]
    return _lin(_mha(x, x, w[:C], w[C : 2 * C], w[2 * C :], heads), sd, p + ".proj")


def _cross_attn(q, v, sd, p, heads):
    wkv = sd[p + ".kv.weight"]
    C = wkv.shape[1]
    return _lin(_mha(q, v, sd[p + ".q.weight"], wkv[:C], wkv[C:], heads), sd, p + ".proj")


def block_released(x, sd, p, heads):
    """docs/official.md §4, line by line, on the concatenated sequence x = [q(3), v(G)]."""
    q, v = x[:, :3], x[:, 3:]
    q = _ln(q, sd, p + "norm1_contrast")
    v = _ln(v, sd, p + "norm1")
    q = q + _cross_attn(q, v, sd, p + "attn_contrast", heads)
    v = v + _self_attn(v, sd, p + "attn", heads)
    q = _ln(q, sd, p + "norm2_contrast")
    v = _ln(v, sd, p + "norm2")
    q = q + _mlp(q, sd, p + "mlp_contrast")
    v = v + _mlp(v, sd, p + "mlp")
    return torch.cat([q, v], dim=1)


def block_prenorm(x, sd, p, heads):
    q, v = x[:, :3], x[:, 3:]
    qn, vn = _ln(q, sd, p + "norm1_contrast"), _ln(v, sd, p + "norm1")
    q = q + _cross_attn(qn, vn, sd, p + "attn_contrast", heads)
    v = v + _self_attn(vn, sd, p + "attn", heads)
    q = q + _mlp(_ln(q, sd, p + "norm2_contrast"), sd, p + "mlp_contrast")
    v = v + _mlp(_ln(v, sd, p + "norm2"), sd, p + "mlp")
    return torch.cat([q, v], dim=1)


def _randomise(module, seed=0):
    """Non-trivial values everywhere (LN/BN affine and running stats included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.2)
    return module


@pytest.mark.parametrize("norm_style,naive", [("released", block_released), ("prenorm", block_prenorm)])
def test_block_equals_step_by_step_maths(norm_style, naive):
    torch.manual_seed(0)
    C, H = 48, 3
    blk = _randomise(ReConBlock(C, H, norm_style=norm_style)).double().eval()
    x = torch.randn(2, 3 + 10, C, dtype=torch.float64)
    q, v, attn = blk(x[:, :3], x[:, 3:])
    ours = torch.cat([q, v], dim=1)
    ref = naive(x, {k: t for k, t in blk.state_dict().items()}, "", H)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    assert attn is None


def test_released_and_prenorm_differ():
    """The two orders are different functions on the same weights (a pre-norm rewrite is not exact)."""
    C, H = 48, 3
    a = _randomise(ReConBlock(C, H, norm_style="released")).eval()
    b = ReConBlock(C, H, norm_style="prenorm").eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 13, C)
    assert (torch.cat(a(x[:, :3], x[:, 3:])[:2], 1) - torch.cat(b(x[:, :3], x[:, 3:])[:2], 1)).abs().max() > 0.1


def test_block_attention_maps_match_sdpa_path():
    C, H = 48, 3
    blk = _randomise(ReConBlock(C, H)).eval()
    x = torch.randn(2, 13, C)
    q1, v1, _ = blk(x[:, :3], x[:, 3:])
    q2, v2, attn = blk(x[:, :3], x[:, 3:], return_attention=True)
    torch.testing.assert_close(q1, q2, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(v1, v2)
    assert attn.shape == (2, H, 3, 10)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, H, 3))


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16-autocast"])
def test_cpu_explicit_attention_equals_sdpa(monkeypatch, amp):
    """Short CPU sequences take the explicit-softmax path; longer ones (or a zero limit) take SDPA:
    the block's outputs and every parameter gradient agree between the two."""
    import recon.models.layers as layers

    C, H = 48, 3
    blk = _randomise(ReConBlock(C, H)).train()
    x = torch.randn(2, 13, C)

    def run(limit):
        monkeypatch.setattr(layers, "_CPU_EXPLICIT_MAX", limit)
        blk.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            q, v, _ = blk(x[:, :3], x[:, 3:])
        (q.float().square().sum() + v.float().square().sum()).backward()
        return q.float(), v.float(), {n: p.grad.clone() for n, p in blk.named_parameters()}

    q1, v1, g1 = run(0)  # SDPA
    q2, v2, g2 = run(layers._CPU_EXPLICIT_MAX if layers._CPU_EXPLICIT_MAX else 256 * 256)
    tol = dict(rtol=2e-2, atol=2e-2) if amp else dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(q1, q2, **tol)
    torch.testing.assert_close(v1, v2, **tol)
    for n in g1:
        if amp:  # bfloat16 rounds each product differently on the two paths: compare whole gradients
            assert (g1[n] - g2[n]).norm() <= 2e-2 * g1[n].norm(), n
        else:
            torch.testing.assert_close(g1[n], g2[n], **tol, msg=lambda m, n=n: f"{n}: {m}")
    assert layers._explicit_on_cpu(torch.empty(1, 1, 128, 8), torch.empty(1, 1, 128, 8))
    assert not layers._explicit_on_cpu(torch.empty(1, 1, 1024, 8), torch.empty(1, 1, 1024, 8))


def _bn(x, sd, name):
    """BatchNorm in eval: running statistics, eps 1e-5."""
    rm, rv = sd[name + ".running_mean"], sd[name + ".running_var"]
    return (x - rm) / torch.sqrt(rv + 1e-5) * sd[name + ".weight"] + sd[name + ".bias"]


def _minipointnet(nb, sd, p):
    """Conv1d(k=1) = per-point linear; BN in eval with running statistics."""

    def conv(x, name):
        return x @ sd[name + ".weight"][..., 0].T + sd[name + ".bias"]

    def bn(x, name):
        return _bn(x, sd, name)

    f = conv(F.relu(bn(conv(nb, p + "first_conv.0"), p + "first_conv.1")), p + "first_conv.3")  # (B,G,S,256)
    g = f.max(dim=2, keepdim=True).values.expand_as(f)
    f = torch.cat([g, f], dim=-1)
    f = conv(F.relu(bn(conv(f, p + "second_conv.0"), p + "second_conv.1")), p + "second_conv.3")
    return f.max(dim=2).values


def _head_full(x, sd):
    x = F.relu(_bn(_lin(x, sd, "cls_head_finetune.0"), sd, "cls_head_finetune.1"))
    x = F.relu(_bn(_lin(x, sd, "cls_head_finetune.4"), sd, "cls_head_finetune.5"))
    return _lin(x, sd, "cls_head_finetune.8")


def test_classifier_logits_equal_step_by_step_forward():
    model = _randomise(recon_tiny(num_classes=5, **TINY, **TINY_PTS), seed=1).eval()
    sd = model.state_dict()
    pts = clouds(2, 128, seed=3)
    nb, center = model.group_divider(pts)
    tokens = _minipointnet(nb, sd, "encoder.")
    pos_local = _lin(F.gelu(_lin(center, sd, "pos_embed.0")), sd, "pos_embed.2")
    B = pts.shape[0]
    x = torch.cat([sd["cls_token"], sd["img_token"], sd["text_token"]], 1).expand(B, -1, -1)
    x = torch.cat([x, tokens], dim=1)
    pos = torch.cat([torch.cat([sd["cls_pos"], sd["img_pos"], sd["text_pos"]], 1).expand(B, -1, -1), pos_local], 1)
    for i in range(TINY["depth"]):
        x = block_released(x + pos, sd, f"blocks.blocks.{i}.", TINY["num_heads"])
    x = _ln(x, sd, "norm")
    feat = torch.cat([x[:, 0], x[:, 1], x[:, 2], x[:, 3:].max(dim=1).values], dim=-1)
    with torch.no_grad():
        ours = model(pts)
        torch.testing.assert_close(model.pool(model.forward_features(pts)), feat, rtol=1e-4, atol=1e-4)
    ref = _head_full(feat, sd)
    assert (ours - ref).abs().max() < 1e-4


def test_pointmae_logits_equal_step_by_step_forward():
    model = _randomise(pointmae_base(num_classes=5, **TINY, **TINY_PTS), seed=2).eval()
    sd = model.state_dict()
    pts = clouds(2, 128, seed=4)
    nb, center = model.group_divider(pts)
    tokens = _minipointnet(nb, sd, "encoder.")
    pos = _lin(F.gelu(_lin(center, sd, "pos_embed.0")), sd, "pos_embed.2")
    B = pts.shape[0]
    x = torch.cat([sd["cls_token"].expand(B, -1, -1), tokens], 1)
    pos = torch.cat([sd["cls_pos"].expand(B, -1, -1), pos], 1)
    for i in range(TINY["depth"]):
        p = f"blocks.blocks.{i}."
        x = x + pos
        x = x + _self_attn(_ln(x, sd, p + "norm1"), sd, p + "attn", TINY["num_heads"])
        x = x + _mlp(_ln(x, sd, p + "norm2"), sd, p + "mlp")
    x = _ln(x, sd, "norm")
    ref = _head_full(torch.cat([x[:, 0], x[:, 1:].max(dim=1).values], -1), sd)
    with torch.no_grad():
        assert (model(pts) - ref).abs().max() < 1e-4


def test_grouping_matches_official_definition():
    """FPS from index 0 (farthest by squared L2), kNN sets by brute force, centred groups."""
    model = recon_tiny(num_classes=3, **TINY, **TINY_PTS)
    pts = clouds(2, 128, seed=5)
    nb, center = model.group_divider(pts)
    G, S = TINY_PTS["num_group"], TINY_PTS["group_size"]
    for b in range(2):
        p = pts[b].double()
        chosen, mind = [0], torch.full((128,), math.inf, dtype=torch.float64)
        for _ in range(G - 1):
            mind = torch.minimum(mind, ((p - p[chosen[-1]]) ** 2).sum(-1))
            chosen.append(int(mind.argmax()))
        torch.testing.assert_close(center[b], pts[b, chosen])
        d = torch.cdist(p[chosen], p)
        for g in range(G):
            expect = set(d[g].argsort()[:S].tolist())
            got = {tuple(r) for r in (nb[b, g] + center[b, g]).tolist()}
            assert got == {tuple(pts[b, i].tolist()) for i in expect}
    # the recon.ops face is what the tokenizer uses
    idx = furthest_point_sample(pts, G)
    assert idx[:, 0].eq(0).all()
    assert knn(center, pts, S)[1].shape == (2, G, S)
