"""Where teacher weights come from: the official caches, tags, explicit random towers, the one reader."""

import os
import pickle
import warnings
import zipfile

import pytest
import torch

from recon.errors import CheckpointError, ConfigError, MissingFileError
from recon.teachers import build_image_teacher, build_text_teacher, check_teachers
from recon.teachers import weights as W
from recon.teachers.clip import CLIPTextTower, CLIPVisionTower


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """A machine that never ran the official code: empty caches, no network for open_clip's hub."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in ("RECON_TEXT_TEACHER", "RECON_IMAGE_TEACHER", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    return home


OFFICIAL = {"image": {"arch": "vit_base_patch16_224_in21k", "weights": "in21k"},
            "text": {"arch": "ViT-B-32", "weights": "openai"}}


def test_missing_official_files_are_named_in_one_message(offline_home):
    with pytest.raises(MissingFileError) as err:
        check_teachers(OFFICIAL)
    msg = str(err.value)
    for part in (W.IN21K_FILE, "v0.1-vitjx", "hub/checkpoints", "teachers.image.weights",
                 "ViT-B-32.pt", ".cache/clip", "teachers.text.weights"):
        assert part in msg, part
    # null means the arch's official source, never a random tower
    with pytest.raises(MissingFileError, match="teachers.text.weights"):
        check_teachers({"image": None, "text": {"arch": "ViT-B-32", "weights": None}})


def test_official_caches_resolve(offline_home):
    clip = offline_home / ".cache" / "clip" / "ViT-B-32.pt"
    hub = offline_home.parent / "torch" / "hub" / "checkpoints" / W.IN21K_FILE
    for f in (clip, hub):
        f.parent.mkdir(parents=True)
        f.write_bytes(b"placeholder")  # locate() only resolves; reading is tested below
    check_teachers(OFFICIAL)
    assert W.locate("text", "ViT-B-32", "openai", "X", "k").path == str(clip)
    assert W.locate("image", "clip-ViT-B-32", None, "X", "k").path == str(clip)
    assert W.locate("image", "vit_base_patch16_224_in21k", None, "X", "k").path == str(hub)
    with pytest.raises(ConfigError, match="in21k.*not of text teacher"):
        W.locate("text", "ViT-B-32", "in21k", "X", "k")
    with pytest.raises(ConfigError, match="openai"):
        W.locate("text", "tiny", "openai", "X", "k")


def test_environment_variable_and_missing_path(offline_home, monkeypatch, tmp_path):
    monkeypatch.setenv("RECON_TEXT_TEACHER", str(tmp_path / "nope.pt"))
    src = W.locate("text", "ViT-B-32", None, "RECON_TEXT_TEACHER", "teachers.text.weights")
    assert src.path is None and "nope.pt" in src.problem and "teachers.text.weights" in src.problem


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def test_in21k_file_without_pre_logits_is_refused(tmp_path):
    vit = _quiet(build_image_teacher, "tiny", "random")
    sd = {k: v for k, v in vit.tower.state_dict().items() if not k.startswith("pre_logits.")}
    sd["head.weight"] = torch.zeros(3, 128)
    torch.save(sd, tmp_path / "vit_no_prelogits.pth")
    with pytest.raises(CheckpointError, match="pre_logits"):
        build_image_teacher("tiny", str(tmp_path / "vit_no_prelogits.pth"))


def test_torchscript_archive_is_read_as_data(tmp_path):
    text = _quiet(build_text_teacher, "tiny", "random")
    traced = torch.jit.trace(text.tower, text.tokenizer(["a chair"]), check_trace=False)
    path = str(tmp_path / "ViT-B-32.pt")
    _quiet(traced.save, path)
    assert W.is_torchscript(path)
    state = W.read_torchscript_state(path)
    own = text.tower.state_dict()
    assert set(own) <= set(state) and all(torch.equal(state[k], v) for k, v in own.items())
    # a half-precision archive (OpenAI's is fp16) loads, converted to the tower's dtype
    half = torch.jit.trace(CLIPTextTower(128, 2, 2, 512).half().eval(), text.tokenizer(["a"]), check_trace=False)
    _quiet(half.save, str(tmp_path / "half.pt"))
    assert {v.dtype for v in W.read_torchscript_state(str(tmp_path / "half.pt")).values()
            if v.is_floating_point()} == {torch.float16}
    assert _quiet(build_text_teacher, "tiny", str(tmp_path / "half.pt")).encode(["a"]).dtype == torch.float32


def test_torchscript_archive_with_foreign_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("evil/constants.pkl", pickle.dumps(()))
        z.writestr("evil/data.pkl", pickle.dumps(os.getcwd))  # a function
    with pytest.raises(CheckpointError, match="not allowed"):
        W.read_torchscript_state(str(path))


def test_one_reader_strips_only_a_leading_module_prefix(tmp_path):
    t = torch.ones(2)
    torch.save({"base_model": {"module.a.module.b": t, "c.module.d": t}}, tmp_path / "x.pth")
    assert sorted(W.read_state_dict(str(tmp_path / "x.pth"))) == ["a.module.b", "c.module.d"]
    (tmp_path / "bad.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pth"):
        W.read_state_dict(str(tmp_path / "bad.pth"))


def test_clip_towers_match_open_clip():
    """recon's CLIP towers compute what open_clip's (OpenAI layout, QuickGELU) compute on the same weights."""
    oc = pytest.importorskip("open_clip.transformer")
    torch.manual_seed(0)
    ref = oc.TextTransformer(context_length=77, vocab_size=49408, width=64, heads=2, layers=2, output_dim=32,
                             act_layer=oc.QuickGELU).eval()
    own = CLIPTextTower(64, 2, 2, 32).eval()
    own.load_state_dict({k: v for k, v in ref.state_dict().items() if k != "attn_mask"})
    tokens = torch.zeros(3, 77, dtype=torch.long)
    tokens[:, :5] = torch.tensor([49406, 320, 1929, 269, 49407])
    tokens[1, 3:6] = torch.tensor([500, 269, 49407])
    torch.testing.assert_close(own(tokens), ref(tokens), rtol=1e-5, atol=1e-5)
    vref = oc.VisionTransformer(image_size=64, patch_size=16, width=64, layers=2, heads=2, mlp_ratio=4.0,
                                output_dim=32, act_layer=oc.QuickGELU).eval()
    vown = CLIPVisionTower(64, 16, 64, 2, 2, 32).eval()
    vown.load_state_dict(vref.state_dict())
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(vown(x), vref(x), rtol=1e-5, atol=1e-5)
