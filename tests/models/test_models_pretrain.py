"""Pretraining models: losses, masking, randomness control, gradient routing, backbone transfer."""

from __future__ import annotations

import pytest
import torch

from recon.models import pointmae_base_pretrain, random_mask, recon_tiny, recon_tiny_pretrain
from recon.ops import ChamferDistanceL2
from zoo_helpers import TINY, TINY_PTS, clouds

PRE = dict(TINY, decoder_depth=1, npoints=128, num_group=16, group_size=8, img_dim=20, text_dim=12)


def _model(**kw):
    torch.manual_seed(0)
    return recon_tiny_pretrain(**{**PRE, **kw})


def test_losses_are_float_scalars_and_sum():
    m = _model()
    pts = clouds(3, 128)
    out = m(pts, img_feat=torch.randn(3, 20), text_feat=torch.randn(3, 12), generator=torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "loss_recon", "loss_img", "loss_text"}
    for v in out.values():
        assert v.ndim == 0 and v.dtype == torch.float32 and torch.isfinite(v)
    torch.testing.assert_close(out["loss"], out["loss_recon"] + out["loss_img"] + out["loss_text"])
    only = m(pts, text_feat=torch.randn(3, 12))
    assert set(only) == {"loss", "loss_recon", "loss_text"}
    assert set(m(pts)) == {"loss", "loss_recon"}


def test_generator_controls_the_mask():
    m = _model(drop_path_rate=0.0).eval()  # eval: no drop-path; only the mask is random
    pts = clouds(2, 128)
    a = m(pts, generator=torch.Generator().manual_seed(5))["loss"]
    b = m(pts, generator=torch.Generator().manual_seed(5))["loss"]
    c = m(pts, generator=torch.Generator().manual_seed(6))["loss"]
    assert torch.equal(a, b) and not torch.equal(a, c)
    torch.manual_seed(1)
    d = m(pts)["loss"]
    torch.manual_seed(1)
    assert torch.equal(d, m(pts)["loss"])  # global RNG when no generator is given


@pytest.mark.parametrize("mask_type", ["rand", "block"])
def test_random_mask_counts_and_order(mask_type):
    center = torch.rand(4, 64, 3)
    vis, msk = random_mask(center, 0.6, mask_type, torch.Generator().manual_seed(0))
    assert msk.shape == (4, 38) and vis.shape == (4, 26)  # int(0.6 * 64) = 38, as released
    for b in range(4):
        assert sorted(vis[b].tolist() + msk[b].tolist()) == list(range(64))
        assert torch.equal(vis[b], vis[b].sort().values) and torch.equal(msk[b], msk[b].sort().values)
    if mask_type == "block":  # the masked centres are the nearest ones to some seed centre
        for b in range(4):
            seed_candidates = [s for s in msk[b].tolist()
                               if set(((center[b] - center[b, s]) ** 2).sum(-1).argsort()[:38].tolist())
                               == set(msk[b].tolist())]
            assert seed_candidates
    with pytest.raises(ValueError, match="mask_type"):
        random_mask(center, 0.6, "grid")
    with pytest.raises(ValueError, match="masks 0 of 64"):
        random_mask(center, 0.01)


def test_reconstruction_target_is_the_masked_groups():
    m = _model().eval()
    pts = clouds(2, 128)
    r = m.reconstruct(pts, generator=torch.Generator().manual_seed(0))
    nb, center = m.group_divider(pts)
    for b in range(2):
        torch.testing.assert_close(r["target"][b], nb[b, r["mask_idx"][b]])
    assert r["pred"].shape == r["target"].shape == (2, 9, 8, 3)  # int(0.6 * 16) = 9 masked groups
    loss = m(pts, generator=torch.Generator().manual_seed(0))["loss_recon"]
    torch.testing.assert_close(loss, ChamferDistanceL2()(r["pred"].flatten(0, 1), r["target"].flatten(0, 1)))


def _grads(model):
    return {k: p.grad for k, p in model.named_parameters()}


def _is_local_stream(k):
    if not k.startswith("MAE_encoder."):
        return False
    k = k[len("MAE_encoder."):]
    if k.startswith(("encoder.", "pos_embed.")):
        return True
    if k.startswith("blocks.blocks."):
        return ".norm1." in k or ".norm2." in k or ".attn." in k or ".mlp." in k
    return False


def test_cross_modal_losses_never_reach_the_local_stream():
    m = _model()
    out = m(clouds(2, 128), img_feat=torch.randn(2, 20), text_feat=torch.randn(2, 12))
    (out["loss_img"] + out["loss_text"]).backward()
    g = _grads(m)
    local = [k for k in g if _is_local_stream(k)]
    assert len(local) > 10
    for k in local:  # encoder, pos_embed, norm1/norm2/attn/mlp of every block
        assert g[k] is None or not g[k].any(), k
    for k in ("MAE_encoder.img_token", "MAE_encoder.text_pos", "img_proj.weight", "text_proj.bias",
              "MAE_encoder.norm.weight", "MAE_encoder.blocks.blocks.0.attn_contrast.kv.weight",
              "MAE_encoder.blocks.blocks.1.mlp_contrast.fc1.weight"):
        assert g[k] is not None and g[k].abs().sum() > 0, k
    cls = g["MAE_encoder.cls_token"]
    assert cls is None or not cls.any()  # the cls query gets no loss in pretraining
    for k in g:  # the reconstruction branch is not involved either
        if k.startswith(("MAE_decoder.", "increase_dim.", "decoder_pos_embed.", "mask_token")):
            assert g[k] is None or not g[k].any(), k


def test_reconstruction_loss_trains_encoder_and_decoder():
    m = _model()
    m(clouds(2, 128))["loss_recon"].backward()
    g = _grads(m)
    for k in ("MAE_encoder.encoder.first_conv.0.weight", "MAE_encoder.pos_embed.0.weight",
              "MAE_encoder.blocks.blocks.0.attn.qkv.weight", "MAE_decoder.blocks.0.mlp.fc2.weight",
              "increase_dim.0.weight", "mask_token", "decoder_pos_embed.2.weight"):
        assert g[k] is not None and g[k].abs().sum() > 0, k
    assert g["img_proj.weight"] is None


def test_finetune_cross_attention_is_not_detached():
    """In the classifier the queries' loss reaches the local stream (finetune=True: no detach)."""
    m = recon_tiny(num_classes=3, **TINY, **TINY_PTS)
    f = m.forward_features(clouds(2, 128))
    f["img"].sum().backward()
    w = m.blocks.blocks[0].attn.qkv.weight.grad
    assert w is not None and w.abs().sum() > 0


def test_encoder_transfers_to_the_classifier():
    m = _model()
    assert m.encoder is m.MAE_encoder
    clf = recon_tiny(num_classes=3, **TINY, **TINY_PTS)
    backbone = {k: v for k, v in clf.state_dict().items() if not k.startswith("cls_head_finetune.")}
    assert list(m.encoder.state_dict()) == list(backbone)
    clf.load_state_dict(m.encoder.state_dict(), strict=False)
    torch.testing.assert_close(clf.blocks.blocks[1].attn_contrast.kv.weight, m.encoder.blocks.blocks[1].attn_contrast.kv.weight)


def test_teacher_feature_errors():
    m = _model()
    with pytest.raises(ValueError, match=r"img_feat must have shape \(2, 20\)"):
        m(clouds(2, 128), img_feat=torch.randn(2, 768))
    no_img = _model(img_dim=0)
    assert no_img.img_proj is None
    with pytest.raises(ValueError, match="img_dim=0"):
        no_img(clouds(2, 128), img_feat=torch.randn(2, 20))
    with pytest.raises(ValueError, match="mask_ratio"):
        _model(mask_ratio=1.0)
    with pytest.raises(ValueError, match="loss"):
        _model(loss="emd")


def test_pointmae_pretrain_and_cdl1():
    torch.manual_seed(0)
    m = pointmae_base_pretrain(depth=1, embed_dim=48, num_heads=3, decoder_depth=1, npoints=128, num_group=16,
                               group_size=8, mask_type="block", loss="cdl1")
    out = m(clouds(2, 128))
    assert set(out) == {"loss", "loss_recon"} and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert m.MAE_encoder.encoder.first_conv[0].weight.grad.abs().sum() > 0
    assert m.config["loss"] == "cdl1" and m.config["decoder_depth"] == 1
