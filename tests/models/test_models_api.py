"""Shapes, options, determinism, registry/config, input errors, autocast and torch.compile."""

from __future__ import annotations

import pytest
import torch

from recon.models import (
    create_model,
    list_models,
    model_defaults,
    pointmae_base,
    recon_base,
    recon_base_zeroshot,
    recon_small,
    recon_tiny,
    svm_feature,
)
from zoo_helpers import TINY, TINY_PTS, clouds

C = TINY["embed_dim"]
G = TINY_PTS["num_group"]


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return recon_tiny(num_classes=7, **TINY, **TINY_PTS).eval()


def test_registry_lists_the_zoo():
    names = list_models()
    for n in ["recon_tiny", "recon_small", "recon_base", "pointmae_base", "recon_tiny_pretrain",
              "recon_small_pretrain", "recon_base_pretrain", "pointmae_base_pretrain", "recon_base_zeroshot"]:
        assert n in names
    assert list_models("recon_*_pretrain") == ["recon_base_pretrain", "recon_small_pretrain", "recon_tiny_pretrain"]
    assert "pointmae_base" not in list_models(kind="pretrain")
    d = model_defaults("recon_base")
    assert (d["embed_dim"], d["num_heads"], d["depth"], d["group_size"], d["drop_path_rate"]) == (384, 6, 12, 32, 0.2)
    assert model_defaults("recon_small")["embed_dim"] == 256 and model_defaults("recon_tiny")["num_heads"] == 3
    with pytest.raises(ValueError, match="unknown model 'recon_huge'"):
        create_model("recon_huge")
    with pytest.raises(TypeError, match="num_clases"):
        create_model("recon_tiny", num_clases=3)


def test_logits_and_features_shapes(tiny):
    pts = clouds(3, 128)
    with torch.no_grad():
        assert tiny(pts).shape == (3, 7)
        f = tiny.forward_features(pts, return_attention=True)
    for k in ("cls", "img", "text"):
        assert f[k].shape == (3, C)
    assert f["local"].shape == (3, G, C) and f["center"].shape == (3, G, 3)
    assert len(f["attention"]) == TINY["depth"]
    for a in f["attention"]:
        assert a.shape == (3, TINY["num_heads"], 3, G)
        torch.testing.assert_close(a.sum(-1), torch.ones(3, TINY["num_heads"], 3))
    assert svm_feature(f).shape == (3, 2 * C)
    assert "attention" not in tiny.forward_features(pts)


def test_feature_extractor_and_linear_head():
    pts = clouds(2, 128)
    fe = recon_tiny(num_classes=0, **TINY, **TINY_PTS).eval()
    assert fe.cls_head_finetune is None
    with torch.no_grad():
        assert fe(pts).shape == (2, 4 * C)
    lin = recon_tiny(num_classes=4, head="linear", **TINY, **TINY_PTS).eval()
    assert [k for k in lin.state_dict() if k.startswith("cls_head")] == [
        "cls_head_finetune.0.weight", "cls_head_finetune.0.bias"]
    pm = pointmae_base(num_classes=0, **TINY, **TINY_PTS).eval()
    with torch.no_grad():
        assert pm(pts).shape == (2, 2 * C)
    zs = recon_base_zeroshot(img_dim=32, text_dim=32, **TINY, **TINY_PTS).eval()
    with torch.no_grad():
        f = zs.forward_features(pts)
        torch.testing.assert_close(zs(pts, ratio=0.5), 0.5 * zs.text_proj(f["text"]) + zs.img_proj(f["img"]))


def test_eval_is_deterministic_and_train_is_stochastic(tiny):
    pts = clouds(4, 128, seed=1)
    with torch.no_grad():
        a, b = tiny(pts), tiny(pts)
    assert torch.equal(a, b)
    m = recon_tiny(num_classes=7, drop_path_rate=0.5, **TINY, **TINY_PTS).train()
    with torch.no_grad():
        assert not torch.equal(m(pts), m(pts))  # drop-path and dropout are active in train()


def test_config_rebuilds_the_model(tiny):
    cfg = tiny.config
    assert cfg["name"] == "recon_tiny" and cfg["num_classes"] == 7 and cfg["depth"] == 2 and cfg["embed_dim"] == 48
    assert "pretrained" not in cfg
    twin = create_model(**cfg)
    twin.load_state_dict(tiny.state_dict())
    pts = clouds(2, 128)
    with torch.no_grad():
        assert torch.equal(twin.eval()(pts), tiny(pts))
    assert recon_base(npoints=2048).config["num_group"] == 128  # npoints // 16
    assert recon_small(npoints=8192, num_group=512).config["num_group"] == 512


def test_bad_arguments_raise_clear_errors(tiny):
    with pytest.raises(ValueError, match="head must be one of"):
        recon_tiny(head="mlp", **TINY, **TINY_PTS)
    with pytest.raises(ValueError, match="norm_style"):
        recon_tiny(norm_style="postnorm", **TINY, **TINY_PTS)
    with pytest.raises(ValueError, match="divisible"):
        recon_tiny(embed_dim=50, num_heads=3, depth=1, **TINY_PTS)
    with pytest.raises(ValueError, match="num_group"):
        recon_tiny(npoints=8, num_group=16, **TINY)
    with pytest.raises(ValueError, match=r"shape \(B, N, 3\)"):
        tiny(torch.rand(2, 128, 6))
    with pytest.raises(ValueError, match="at least 16"):
        tiny(torch.rand(2, 10, 3))
    with pytest.raises(TypeError, match="floating point"):
        tiny(torch.ones(2, 128, 3, dtype=torch.long))


def test_prenorm_option_changes_outputs():
    torch.manual_seed(0)
    a = recon_tiny(num_classes=3, **TINY, **TINY_PTS).eval()
    b = recon_tiny(num_classes=3, norm_style="prenorm", **TINY, **TINY_PTS).eval()
    b.load_state_dict(a.state_dict())
    assert b.config["norm_style"] == "prenorm"
    pts = clouds(2, 128)
    with torch.no_grad():
        assert not torch.allclose(a(pts), b(pts))


def test_bf16_autocast_on_cpu(tiny):
    pts = clouds(2, 128)
    with torch.no_grad():
        ref = tiny(pts)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = tiny(pts)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.5 * ref.abs().max() + 0.5  # bf16: same ballpark


def test_torch_compile_small_model():
    torch.manual_seed(0)
    m = recon_tiny(num_classes=3, depth=1, embed_dim=48, num_heads=3, npoints=64, num_group=8, group_size=8).eval()
    pts = clouds(2, 64)
    # aot_eager: dynamo + AOTAutograd tracing of every op, without a C++ toolchain; one graph, no breaks
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(pts), m(pts))
