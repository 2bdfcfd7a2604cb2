"""The ablation baselines: registry entries, the pretraining interface, where each loss's gradient goes."""

import pytest
import torch


from recon.models import create_model, list_models, model_info  # noqa: E402

SMALL = dict(depth=2, npoints=256, num_group=16)
PRE = dict(SMALL, decoder_depth=1)


def test_registry_entries():
    for family in ("vanilla_multitask", "twotower"):
        for size in ("tiny", "base"):
            assert model_info(f"{family}_{size}").kind == "classifier"
            assert model_info(f"{family}_{size}_pretrain").kind == "pretrain"
    assert len(list_models("vanilla_multitask*")) == 4 and len(list_models("twotower*")) == 4


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward(retain_graph=True)
    return {n: (p.grad is not None and p.grad.abs().sum().item() > 0) for n, p in model.named_parameters()}


@pytest.mark.parametrize("name", ["vanilla_multitask_tiny_pretrain", "twotower_tiny_pretrain"])
def test_pretrain_interface_matches_recon(name):
    torch.manual_seed(0)
    model = create_model(name, **PRE)
    pts = torch.randn(2, 256, 3)
    img, text = torch.randn(2, 768), torch.randn(2, 512)
    out = model(pts, img_feat=img, text_feat=text, generator=torch.Generator().manual_seed(0))
    assert set(out) == {"loss", "loss_recon", "loss_img", "loss_text"}
    torch.testing.assert_close(out["loss"], out["loss_recon"] + out["loss_img"] + out["loss_text"])
    only_recon = model(pts)
    assert set(only_recon) == {"loss", "loss_recon"}
    with pytest.raises(ValueError, match="img_feat"):
        model(pts, img_feat=torch.randn(2, 512))
    assert model.config["name"] == name and model.config["npoints"] == 256


def test_vanilla_distillation_reaches_the_shared_stream():
    torch.manual_seed(0)
    model = create_model("vanilla_multitask_tiny_pretrain", **PRE)
    out = model(torch.randn(2, 256, 3), img_feat=torch.randn(2, 768))
    g = _grads(model, out["loss_img"])
    # one stream: the image loss trains the patch embedding and every block (no stop-gradient)
    assert g["MAE_encoder.encoder.first_conv.0.weight"] and g["MAE_encoder.blocks.0.attn.qkv.weight"]
    assert not g["MAE_decoder.blocks.0.attn.qkv.weight"]


def test_two_tower_losses_stay_in_their_tower():
    torch.manual_seed(0)
    model = create_model("twotower_tiny_pretrain", **PRE)
    out = model(torch.randn(2, 256, 3), img_feat=torch.randn(2, 768), text_feat=torch.randn(2, 512))
    g_img = _grads(model, out["loss_img"] + out["loss_text"])
    assert not any(v for n, v in g_img.items() if ".generative." in n or n.startswith("MAE_decoder"))
    assert g_img["MAE_encoder.contrastive.blocks.blocks.0.attn.qkv.weight"]  # its own local stream learns
    assert g_img["MAE_encoder.encoder.first_conv.0.weight"]  # the shared patch embedding
    g_rec = _grads(model, out["loss_recon"])
    assert not any(v for n, v in g_rec.items() if ".contrastive." in n or "_proj" in n)
    assert g_rec["MAE_encoder.generative.blocks.blocks.0.attn.qkv.weight"]


@pytest.mark.parametrize("family", ["vanilla_multitask", "twotower"])
def test_classifier_loads_the_pretrained_encoder_and_shows_attention(family):
    torch.manual_seed(0)
    pre = create_model(f"{family}_tiny_pretrain", **PRE)
    clf = create_model(f"{family}_tiny", num_classes=5, **SMALL).eval()
    enc = {k[len("MAE_encoder."):]: v for k, v in pre.state_dict().items() if k.startswith("MAE_encoder.")}
    res = clf.load_state_dict(enc, strict=False)
    assert res.unexpected_keys == [] and all(k.startswith("cls_head_finetune.") for k in res.missing_keys)
    pts = torch.randn(3, 256, 3)
    assert clf(pts).shape == (3, 5)
    f = clf.forward_features(pts, return_attention=True)
    assert f["local"].shape == (3, 16, 192) and f["img"].shape == (3, 192)
    assert len(f["attention"]) == 2 and f["attention"][0].shape == (3, 3, 3, 16)
    torch.testing.assert_close(f["attention"][1].sum(-1), torch.ones(3, 3, 3))
    feat = create_model(f"{family}_tiny", num_classes=0, **SMALL).eval()(pts)
    assert feat.shape == (3, 4 * 192)


def test_norm_styles_differ_and_are_checked():
    torch.manual_seed(0)
    a = create_model("vanilla_multitask_tiny", num_classes=0, norm_style="prenorm", **SMALL).eval()
    b = create_model("vanilla_multitask_tiny", num_classes=0, norm_style="released", **SMALL).eval()
    b.load_state_dict(a.state_dict())
    pts = torch.randn(2, 256, 3)
    assert not torch.allclose(a(pts), b(pts))
    with pytest.raises(ValueError, match="norm_style"):
        create_model("vanilla_multitask_tiny", norm_style="postnorm", **SMALL)
