"""The single-modal contrastive term (smc): hand-computed loss, official key names, the pretrain hook."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from recon.checkpoint import load_checkpoint
from recon.models import create_model
from recon.models.smc import cls_projection, contrastive_loss, same_category, smc_loss

SMALL = dict(depth=2, embed_dim=48, num_heads=3, decoder_depth=1, npoints=128, num_group=16, group_size=8,
             img_dim=20, text_dim=12)


def _pretrain(**kw):
    torch.manual_seed(0)
    return create_model("recon_tiny_pretrain", **{**SMALL, **kw})


def _looped_oracle(similarity, texts, t=0.1):
    """The loss as the official loop states it: row by row, masked selects, one CE per row."""
    rows = []
    for i in range(len(texts)):
        sel = torch.tensor([texts[i] == texts[j] for j in range(len(texts))])
        pos = similarity[i][sel].mean().reshape(1)
        neg = similarity[i][~sel]
        logits = torch.cat([pos, neg]).reshape(1, -1) / t
        rows.append(F.cross_entropy(logits, torch.zeros(1, dtype=torch.long)))
    return torch.stack(rows).mean()


def test_hand_computed_three_samples():
    # z0 = (2, 0), z1 = (0, 1), z2 = (3, 4) normalise to (1, 0), (0, 1), (0.6, 0.8):
    # similarities s01 = 0, s02 = 0.6, s12 = 0.8, diagonal 1; samples 0 and 2 share "chair".
    z = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 4.0]], dtype=torch.float64)
    texts = ["chair", "table", "chair"]
    # row 0: pos = (1 + 0.6) / 2 = 0.8, negatives [0]        -> logits [8, 0]
    # row 1: pos = 1 (itself only),   negatives [0, 0.8]     -> logits [10, 0, 8]
    # row 2: pos = (0.6 + 1) / 2 = 0.8, negatives [0.8]      -> logits [8, 8]
    row0 = math.log(1 + math.exp(-8))
    row1 = math.log(1 + math.exp(-10) + math.exp(-2))
    row2 = math.log(2)
    expected = (row0 + row1 + row2) / 3  # = 0.27348...
    got = smc_loss(z, texts)
    assert got.dtype == torch.float64
    assert got.item() == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert expected == pytest.approx(0.273483, abs=1e-6)


def test_matches_row_loop_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    texts = ["a", "b", "a", "c", "b", "a", "d", "c"]
    z = torch.randn(8, 16, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = z.detach().clone().requires_grad_(True)
    ours = smc_loss(z, texts)
    zn = F.normalize(z2, dim=1)
    ref = _looped_oracle(zn @ zn.t(), texts)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(z.grad, z2.grad)


def test_temperature_and_tensor_categories():
    sim = torch.tensor([[1.0, 0.2], [0.2, 1.0]], dtype=torch.float64)
    sel = same_category(torch.tensor([3, 5]))
    assert sel.tolist() == [[True, False], [False, True]]
    # each row: logits [1, 0.2] / t
    for t in (0.1, 0.5):
        expected = math.log(1 + math.exp((0.2 - 1.0) / t))
        assert contrastive_loss(sim, sel, t).item() == pytest.approx(expected, rel=1e-12)


def test_no_negatives_gives_zero_loss_and_zero_gradient():
    # every text equal: each row's logits are [mean positive] alone; CE of one logit is 0
    z = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    loss = smc_loss(z, ["airplane"] * 5)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(z.grad) == 0
    # a batch where only one row lacks negatives: that row contributes 0 to the mean
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    texts = ["x", "y", "y"]
    zn = F.normalize(z, dim=1)
    torch.testing.assert_close(smc_loss(z, texts), _looped_oracle(zn @ zn.t(), texts))


def test_input_checks():
    with pytest.raises(ValueError, match="categories"):
        smc_loss(torch.randn(3, 4), ["a", "b"])
    with pytest.raises(ValueError, match="projected"):
        smc_loss(torch.randn(3), ["a", "b", "c"])
    with pytest.raises(TypeError, match="single string"):
        same_category("abc")
    with pytest.raises(ValueError, match="select"):
        contrastive_loss(torch.eye(2), torch.eye(2))  # float, not bool
    with pytest.raises(ValueError, match="positive"):
        contrastive_loss(torch.eye(2), torch.zeros(2, 2, dtype=torch.bool))


# the official `cls_proj` keys (an nn.Sequential: Linear, BN, ReLU, Linear, BN), in state-dict order
OFFICIAL_CLS_PROJ = [
    ("cls_proj.0.weight", (128, 48)), ("cls_proj.0.bias", (128,)),
    ("cls_proj.1.weight", (128,)), ("cls_proj.1.bias", (128,)), ("cls_proj.1.running_mean", (128,)),
    ("cls_proj.1.running_var", (128,)), ("cls_proj.1.num_batches_tracked", ()),
    ("cls_proj.3.weight", (128, 128)), ("cls_proj.3.bias", (128,)),
    ("cls_proj.4.weight", (128,)), ("cls_proj.4.bias", (128,)), ("cls_proj.4.running_mean", (128,)),
    ("cls_proj.4.running_var", (128,)), ("cls_proj.4.num_batches_tracked", ()),
]


def test_keys_are_official_and_last():
    plain = list(_pretrain().state_dict())
    with_smc = _pretrain(smc=True).state_dict()
    # official ReCon registers cls_proj after img_proj / text_proj (and the teachers): it comes last
    assert list(with_smc)[: len(plain)] == plain
    assert [(k, tuple(v.shape)) for k, v in list(with_smc.items())[len(plain):]] == OFFICIAL_CLS_PROJ
    assert "cls_proj.0.weight" not in plain  # off by default


def test_official_init():
    torch.manual_seed(0)
    head = cls_projection(384)
    for lin in (head[0], head[3]):
        assert lin.weight.mean().item() == pytest.approx(0.02, abs=2e-3)
        assert lin.weight.std().item() == pytest.approx(0.01, abs=1e-3)
        assert torch.count_nonzero(lin.bias) == 0
    for bn in (head[1], head[4]):
        assert torch.equal(bn.weight, torch.ones(128)) and torch.count_nonzero(bn.bias) == 0


def test_pretrain_model_adds_loss_smc():
    m = _pretrain(smc=True)
    pts = torch.rand(4, 128, 3)
    texts = ["chair", "lamp", "chair", "lamp"]
    out = m(pts, img_feat=torch.randn(4, 20), text_feat=torch.randn(4, 12), text=texts,
            generator=torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "loss_recon", "loss_img", "loss_text", "loss_smc"}
    torch.testing.assert_close(out["loss"], out["loss_recon"] + out["loss_img"] + out["loss_text"] + out["loss_smc"])
    out["loss"].backward()
    assert m.cls_proj[0].weight.grad is not None and m.cls_proj[0].weight.grad.abs().sum() > 0
    assert m.MAE_encoder.cls_token.grad.abs().sum() > 0  # the cls query now learns
    # the term is the smc loss of the projected cls query (post final norm), recomputed here
    m.eval()
    g = torch.Generator().manual_seed(1)
    out = m(pts, text=texts, generator=torch.Generator().manual_seed(1))
    neighborhood, center = m.group_divider(pts)
    from recon.models.pretrain import random_mask
    from recon.ops import gather_points

    vis, _ = random_mask(center, m.mask_ratio, m.mask_type, g)
    tokens = gather_points(m.MAE_encoder.encoder(neighborhood), vis)
    q, _, _ = m.MAE_encoder.forward_tokens(tokens, gather_points(center, vis))
    torch.testing.assert_close(out["loss_smc"], smc_loss(m.cls_proj(q[:, 0]), texts))
    with pytest.raises(ValueError, match="text="):
        m(pts)


def test_single_modal_model_and_checkpoint_round_trip(tmp_path):
    m = _pretrain(smc=True, img_dim=0, text_dim=0)
    out = m(torch.rand(3, 128, 3), text=["a", "a", "b"])
    assert set(out) == {"loss", "loss_recon", "loss_smc"}
    # a checkpoint in the official layout ('module.' prefix, base_model) loads cls_proj by name
    state = {f"module.{k}": v + 1 if v.is_floating_point() else v for k, v in m.state_dict().items()}
    path = tmp_path / "ckpt-last.pth"
    torch.save({"base_model": state, "epoch": 3}, path)
    fresh = _pretrain(smc=True, img_dim=0, text_dim=0)
    load_checkpoint(fresh, str(path), strict=True)
    torch.testing.assert_close(fresh.cls_proj[3].weight, m.cls_proj[3].weight + 1)
    torch.testing.assert_close(fresh.cls_proj[4].running_var, m.cls_proj[4].running_var + 1)


def test_pretrain_step_hands_the_category_texts_to_an_smc_model():
    from recon.engine.train_pretrain import pretrain_step

    step = pretrain_step(None)
    batch = {"points": torch.rand(4, 128, 3), "text": ["a", "b", "a", "b"]}
    assert "loss_smc" in step(_pretrain(smc=True, img_dim=0, text_dim=0), batch)
    assert "loss_smc" not in step(_pretrain(img_dim=0, text_dim=0), batch)  # off: texts unused
    with pytest.raises(ValueError, match="text"):
        step(_pretrain(smc=True, img_dim=0, text_dim=0), {"points": batch["points"]})
