"""Checkpoints: official-layout files (built from the key files), recon format, errors."""

from __future__ import annotations

import argparse

import pytest
import torch

from recon.checkpoint import (
    CheckpointMismatchError,
    LoadReport,
    load_checkpoint,
    load_training_state,
    read_checkpoint,
    save_model,
)
from recon.models import create_model, load_model, recon_tiny, recon_tiny_pretrain
from zoo_helpers import TINY, TINY_PTS, clouds, official_state_dict


def _official_file(tmp_path, sd, module: bool, name="ckpt.pth", **extra):
    if module:
        sd = {"module." + k: v for k, v in sd.items()}
    path = tmp_path / name
    torch.save({"base_model": sd, "epoch": 300, "metrics": {"acc": torch.tensor(0.9)}, **extra}, path)
    return path


@pytest.mark.parametrize("module", [False, True], ids=["ddp", "dataparallel"])
def test_official_pretrain_into_classifier(tmp_path, module):
    sd = official_state_dict("recon_tiny_pretrain_released")
    # a full-state-dict file also carries the frozen teachers: they must be dropped
    sd["img_encoder.cls_token"] = torch.zeros(1, 1, 768)
    sd["text_encoder.positional_embedding"] = torch.zeros(77, 512)
    path = _official_file(tmp_path, sd, module)
    with torch.device("meta"):
        model = create_model("recon_tiny", num_classes=15)
    model = model.to_empty(device="cpu")
    report = load_checkpoint(model, path)
    assert report.source_format == "official-pretrain"
    assert sorted(report.dropped) == ["img_encoder.cls_token", "text_encoder.positional_embedding"]
    assert len(report.missing) == 16 and all(k.startswith("cls_head_finetune.") for k in report.missing)
    expected_unexpected = {k for k in sd if not k.startswith(("MAE_encoder.", "img_encoder.", "text_encoder."))}
    assert set(report.unexpected) == expected_unexpected  # mask_token, decoder, increase_dim, img/text_proj
    ours = model.state_dict()
    for k, v in sd.items():  # every backbone tensor lands at the key without the prefix
        if k.startswith("MAE_encoder."):
            assert torch.equal(ours[k[len("MAE_encoder."):]], v), k
    text = str(report)
    assert "missing" in text and "cls_head_finetune.* (16)" in text and "dropped teacher" in text


@pytest.mark.parametrize("module", [False, True], ids=["ddp", "dataparallel"])
def test_official_finetune_strict_and_via_factory(tmp_path, module):
    sd = official_state_dict("recon_tiny_finetune_cls15", seed=1)
    path = _official_file(tmp_path, sd, module, optimizer={"state": {}, "param_groups": []})
    model = create_model("recon_tiny", num_classes=15, npoints=2048, pretrained=str(path))
    assert model.load_report.ok and model.load_report.source_format == "official-finetune"
    ours = model.state_dict()
    for k, v in sd.items():
        assert torch.equal(ours[k], v), k
    load_checkpoint(model, path, strict=True)


def test_head_shape_mismatch_is_a_clear_error(tmp_path):
    path = _official_file(tmp_path, official_state_dict("recon_tiny_finetune_cls15"), module=True)
    with torch.device("meta"):
        model = create_model("recon_tiny", num_classes=40)
    model = model.to_empty(device="cpu")
    with pytest.raises(ValueError) as e:
        load_checkpoint(model, path)
    msg = str(e.value)
    assert "cls_head_finetune.8.weight" in msg and "(15, 256)" in msg and "(40, 256)" in msg
    assert "reset_head=True" in msg
    report = load_checkpoint(model, path, reset_head=True)
    assert len(report.reset) == 16 and not report.missing and not report.unexpected


def test_official_pretrain_into_pretrain_model(tmp_path):
    sd = official_state_dict("recon_tiny_pretrain_released", seed=2)
    path = _official_file(tmp_path, sd, module=True)
    with torch.device("meta"):
        model = create_model("recon_tiny_pretrain")
    model = model.to_empty(device="cpu")
    report = load_checkpoint(model, path, strict=True)
    assert report.ok and len(report.loaded) == len(sd)
    ours = model.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in sd.items())


def test_official_pointmae_files(tmp_path):
    sd = official_state_dict("pointmae_base_pretrain", seed=3)
    with torch.device("meta"):
        model = create_model("pointmae_base", num_classes=15)
    model = model.to_empty(device="cpu")
    report = load_checkpoint(model, _official_file(tmp_path, sd, module=False))
    # Point-MAE's pretraining encoder has no cls token: cls_token/cls_pos and the head stay missing
    assert set(report.missing) == {"cls_token", "cls_pos"} | {k for k in model.state_dict() if "cls_head" in k}
    assert torch.equal(model.state_dict()["blocks.blocks.11.mlp.fc2.weight"], sd["MAE_encoder.blocks.blocks.11.mlp.fc2.weight"])
    ft = official_state_dict("pointmae_base_finetune_cls15", seed=4)
    assert load_checkpoint(model, _official_file(tmp_path, ft, module=True, name="ft.pth"), strict=True).ok


def test_recon_format_round_trip(tmp_path):
    torch.manual_seed(0)
    model = recon_tiny(num_classes=5, **TINY, **TINY_PTS).eval()
    with torch.no_grad():  # non-default BN statistics must travel too
        model.encoder.first_conv[1].running_mean.uniform_()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(clouds(2, 128)).sum().backward()
    opt.step()
    prefix = save_model(model, tmp_path / "run" / "best.safetensors", optimizer=opt, epoch=3)
    assert prefix.endswith("best")
    for suffix in (".safetensors", ".json", ".pth"):
        assert (tmp_path / "run" / f"best{suffix}").is_file()
    again = load_model(tmp_path / "run" / "best").eval()
    assert again.config == model.config
    pts = clouds(3, 128)
    with torch.no_grad():
        assert torch.equal(again(pts), model(pts))
    state = load_training_state(tmp_path / "run" / "best")
    assert state["epoch"] == 3 and "optimizer" in state
    opt.load_state_dict(state["optimizer"])
    # the weights file alone is self-describing (config in the safetensors header)
    (tmp_path / "run" / "best.json").unlink()
    assert load_model(tmp_path / "run" / "best.safetensors").config == model.config
    report = load_checkpoint(recon_tiny(num_classes=5, **TINY, **TINY_PTS), prefix, strict=True)
    assert report.source_format == "recon" and report.ok


def test_pretrain_recon_file_into_classifier(tmp_path):
    pre = recon_tiny_pretrain(depth=2, embed_dim=48, num_heads=3, decoder_depth=1, npoints=128, num_group=16,
                              group_size=8)
    prefix = save_model(pre, tmp_path / "pre")
    clf = create_model("recon_tiny", num_classes=4, pretrained=prefix, **TINY, **TINY_PTS)
    assert clf.load_report.source_format == "recon"
    assert all(k.startswith("cls_head_finetune.") for k in clf.load_report.missing)
    torch.testing.assert_close(clf.norm.weight, pre.encoder.norm.weight)


def test_reading_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(recon_tiny(num_classes=2, **TINY, **TINY_PTS), tmp_path / "nope.pth")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing")
    torch.save({"weights": [1, 2, 3]}, tmp_path / "odd.pth")
    with pytest.raises(ValueError, match="no weights found"):
        read_checkpoint(tmp_path / "odd.pth")
    # an arbitrary pickled object: weights_only=True refuses it
    torch.save({"base_model": {}, "obj": argparse.Namespace(a=1)}, tmp_path / "pickle.pth")
    with pytest.raises(ValueError, match="weights_only=True"):
        read_checkpoint(tmp_path / "pickle.pth")
    model = recon_tiny(num_classes=2, **TINY, **TINY_PTS)
    sd = model.state_dict()
    sd.pop("norm.weight")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError, match="norm.weight"):
        load_checkpoint(model, sd, strict=True)
    report = load_checkpoint(model, sd)
    assert isinstance(report, LoadReport) and report.missing == ["norm.weight"] and report.unexpected == ["extra.weight"]
    with pytest.raises(ValueError, match="model.config"):
        save_model(torch.nn.Linear(2, 2), tmp_path / "x")


def _damaged(kind: str, good: bytes) -> bytes:
    return {
        "empty": b"",
        "truncated": good[: len(good) // 2],
        "text": b"epoch: 300\nacc: 0.91\n",
        "random": bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0)).tolist()),
        "corrupt": good[:1500] + bytes(700) + good[2200:],
    }[kind]


@pytest.mark.parametrize("kind", ["empty", "truncated", "text", "random", "corrupt"])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_damaged_files_give_one_line_naming_the_file(tmp_path, kind, fmt):
    from recon.errors import CheckpointError

    model = recon_tiny(num_classes=2, **TINY, **TINY_PTS)
    if fmt == "pth":
        torch.save({"base_model": model.state_dict()}, tmp_path / "good.pth")
    else:
        save_model(model, tmp_path / "good")
    path = tmp_path / f"bad.{fmt}"
    path.write_bytes(_damaged(kind, (tmp_path / f"good.{fmt}").read_bytes()))
    for call in (lambda: read_checkpoint(path), lambda: load_checkpoint(model, path),
                 lambda: create_model("recon_tiny", num_classes=2, pretrained=str(path), **TINY, **TINY_PTS)):
        with pytest.raises(CheckpointError) as e:
            call()
        msg = str(e.value)
        assert str(path) in msg and "\n" not in msg, msg
        assert ("empty" if kind == "empty" else "not a readable") in msg
    if fmt == "safetensors":
        with pytest.raises(CheckpointError, match=r"bad\.safetensors"):
            load_model(path)


def test_non_tensor_values_and_bad_sources(tmp_path):
    from recon.errors import CheckpointError

    model = recon_tiny(num_classes=2, **TINY, **TINY_PTS)
    sd = dict(model.state_dict())
    sd["norm.weight"] = [1.0] * 48
    torch.save({"base_model": sd}, tmp_path / "lists.pth")
    with pytest.raises(CheckpointError, match=r"lists\.pth\['base_model'\]: 1 of .* not \(str, tensor\).*norm\.weight"):
        load_checkpoint(model, tmp_path / "lists.pth")
    with pytest.raises(CheckpointError, match="given dict.*'norm.weight': list"):
        load_checkpoint(model, {"model": sd})
    with pytest.raises(TypeError, match="path or a dict"):
        read_checkpoint(5)
    with pytest.raises(TypeError, match="pretrained must be a path or a state_dict"):
        recon_tiny(num_classes=2, pretrained=3.0, **TINY, **TINY_PTS)
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(CheckpointError, match=r"tensor\.pth: expected a dict"):
        read_checkpoint(tmp_path / "tensor.pth")
    (tmp_path / "folder.pth").mkdir()
    with pytest.raises(FileNotFoundError, match=r"folder\.pth \(a folder\)"):
        read_checkpoint(tmp_path / "folder.pth")


def test_official_and_recon_files_still_load_weights_only(tmp_path, monkeypatch):
    """Every torch.load goes through weights_only=True (a file of objects is refused, never run)."""
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k.get("weights_only")) or real(*a, **k))
    model = recon_tiny(num_classes=2, **TINY, **TINY_PTS)
    torch.save({"base_model": model.state_dict()}, tmp_path / "ok.pth")
    assert load_checkpoint(model, tmp_path / "ok.pth", strict=True).ok
    save_model(model, tmp_path / "run", optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    load_training_state(tmp_path / "run")
    assert calls == [True, True]
