import json
import os
import warnings

import pytest
import torch

from recon.errors import CheckpointError, ConfigError, MissingFileError
from recon.teachers import build_image_teacher, build_text_teacher

from recon.teachers import build_image_teacher, build_text_teacher  # noqa: E402

KEYS = os.path.join(os.path.dirname(__file__), "..", "fixtures", "official_keys",
                    "recon_base_pretrain_full_statedict.json")


@pytest.fixture(scope="module")
def tiny():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return (build_text_teacher("tiny", "random"), build_image_teacher("tiny", "random"),
                build_image_teacher("clip-tiny", "random"))


def test_shapes_frozen_eval(tiny):
    text, vit, clip = tiny
    f = text.encode(["a chair", "A 3D model of a sphere with black context."])
    assert f.shape == (2, 512) and text.dim == 512 and f.dtype == torch.float32
    x = torch.randn(3, 3, 224, 224)
    v = vit.encode(x)
    assert v.shape == (3, 768) and vit.dim == 768 and v.abs().max() < 1  # Tanh pre-logits
    assert clip.encode(x).shape == (3, 512) and clip.dim == 512
    for t in tiny:
        t.train()
        assert not t.training and not any(p.requires_grad for p in t.parameters())
    assert torch.allclose(text.encode(["a chair"]), f[:1], atol=1e-5)
    with pytest.raises(TypeError):
        text.encode("a chair")
    with pytest.raises(ValueError, match="images"):
        vit.encode(torch.zeros(3, 224, 224))


def test_random_init_only_when_asked_and_reproducible(monkeypatch):
    monkeypatch.delenv("RECON_TEXT_TEACHER", raising=False)
    with pytest.raises(MissingFileError, match="no released weights.*weights=random"):
        build_text_teacher("tiny")  # never a silent random fallback
    with pytest.warns(UserWarning, match="demo architecture"):
        a = build_text_teacher("tiny", "random")
    with pytest.warns(UserWarning, match="demo architecture"):
        b = build_text_teacher("tiny", "random")
    assert a.weights_id == b.weights_id and a.weights_id.startswith("random-init")
    assert torch.equal(a.encode(["x"]), b.encode(["x"]))
    with pytest.raises(ConfigError, match="arch"):
        build_text_teacher("ViT-L-14")


def test_own_layout_round_trip_and_env_var(tmp_path, tiny, monkeypatch):
    text, vit, clip = tiny
    # perturb so loaded weights differ from the seed-0 random init
    sd = {k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
          for k, v in text.tower.state_dict().items()}
    path = str(tmp_path / "text.pt")
    torch.save(sd, path)
    monkeypatch.setenv("RECON_TEXT_TEACHER", path)
    loaded = build_text_teacher("tiny")
    assert loaded.weights_id not in ("", text.weights_id)
    assert all(torch.equal(loaded.tower.state_dict()[k], v) for k, v in sd.items())
    # weights="random": the seeded random init on purpose, whatever the environment names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rand = build_text_teacher("tiny", weights="random")
    assert rand.weights_id == text.weights_id
    assert all(torch.equal(rand.tower.state_dict()[k], v) for k, v in text.tower.state_dict().items())
    monkeypatch.setenv("RECON_TEXT_TEACHER", str(tmp_path / "missing.pt"))
    with pytest.raises(MissingFileError, match="missing.pt"):
        build_text_teacher("tiny")
    # a timm-style in21k file with a classifier head: the head is ignored
    from safetensors.torch import save_file

    vsd = {k: v.clone() for k, v in vit.tower.state_dict().items()}
    vsd["head.weight"], vsd["head.bias"] = torch.zeros(10, 768), torch.zeros(10)
    save_file(vsd, str(tmp_path / "vit.safetensors"))
    v2 = build_image_teacher("tiny", weights=str(tmp_path / "vit.safetensors"))
    x = torch.randn(2, 3, 224, 224)
    assert torch.equal(v2.encode(x), vit.encode(x))


def test_full_clip_state_dict_feeds_both_towers(tmp_path, tiny):
    text, _, clip = tiny
    sd = dict(text.tower.state_dict())
    sd.update({"visual." + k: v for k, v in clip.tower.state_dict().items()})
    sd["logit_scale"] = torch.tensor(4.6)
    path = str(tmp_path / "clip.pt")
    torch.save({"state_dict": sd}, path)
    t2 = build_text_teacher("tiny", weights=path)
    c2 = build_image_teacher("clip-tiny", weights=path)
    assert torch.equal(t2.encode(["a bed"]), text.encode(["a bed"]))
    x = torch.randn(1, 3, 224, 224)
    assert torch.equal(c2.encode(x), clip.encode(x))


def test_mismatch_errors(tmp_path, tiny):
    text, vit, _ = tiny
    sd = dict(text.tower.state_dict())
    sd.pop("ln_final.weight")
    torch.save(sd, tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="missing.*ln_final.weight"):
        build_text_teacher("tiny", weights=str(tmp_path / "a.pt"))
    sd = dict(vit.tower.state_dict())
    sd["pos_embed"] = torch.zeros(1, 5, 128)
    torch.save(sd, tmp_path / "b.pt")
    with pytest.raises(ValueError, match=r"pos_embed has shape \(1, 5, 128\)"):
        build_image_teacher("tiny", weights=str(tmp_path / "b.pt"))
    torch.save({"foo": torch.zeros(1)}, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="holds none"):
        build_image_teacher("tiny", weights=str(tmp_path / "c.pt"))


def test_official_full_pretrain_checkpoint_maps_every_tensor(tmp_path):
    """A ReCon full checkpoint written from the official key list: every img_encoder.* and
    text_encoder.* tensor must land in the teacher under its own name."""
    with open(KEYS) as f:
        shapes = json.load(f)["shapes"]
    # each tensor filled with its own key number, so a misplaced tensor is detected
    sd = {"module." + k: torch.full(s, float(i)) for i, (k, s) in enumerate(shapes.items())
          if k.startswith(("img_encoder.", "text_encoder."))}
    sd["module.MAE_encoder.cls_token"] = torch.zeros(1, 1, 384)
    path = str(tmp_path / "ckpt-last.pth")
    torch.save({"base_model": sd, "epoch": 300, "metrics": {"acc": 0.0}}, path)
    del sd
    number = {k: float(i) for i, k in enumerate(shapes)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = build_text_teacher("ViT-B-32", weights=path)
        img = build_image_teacher("vit_base_patch16_224_in21k", weights=path)
    for prefix, teacher in (("text_encoder.", text), ("img_encoder.", img)):
        own = teacher.tower.state_dict()
        official = [k for k in shapes if k.startswith(prefix)]
        assert len(own) == len(official)  # 149 text / 152 image keys
        for k, v in own.items():
            assert list(v.shape) == shapes[prefix + k]
            assert torch.all(v == number[prefix + k]), k
    assert sum(p.numel() for p in text.parameters()) == 63_428_096
    assert sum(p.numel() for p in img.parameters()) == 86_389_248


def test_torchscript_archive_like_openai_clip(tmp_path, tiny):
    """OpenAI ships CLIP as a TorchScript archive; its tensors are read as data (no code runs)."""
    text = tiny[0]
    traced = torch.jit.trace(text.tower, text.tokenizer(["a chair"]), check_trace=False)
    traced.save(str(tmp_path / "ViT-B-32.pt"))
    t2 = build_text_teacher("tiny", weights=str(tmp_path / "ViT-B-32.pt"))
    assert torch.equal(t2.encode(["a chair", "a bed"]), text.encode(["a chair", "a bed"]))
