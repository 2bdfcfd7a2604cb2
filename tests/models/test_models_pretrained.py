"""``pretrained=``: partial loads are refused (naming what the file looks like) unless ``strict=False``."""

from __future__ import annotations

import logging

import pytest
import torch

from recon.checkpoint import guess_family
from recon.errors import CheckpointError
from recon.models import create_model, pointmae_base, pointmae_base_pretrain, recon_tiny, recon_tiny_pretrain
from zoo_helpers import TINY, TINY_PTS, official_shapes, official_state_dict

PRE = dict(decoder_depth=1, npoints=128, num_group=16, group_size=8, **TINY)


def _official(tmp_path, model, name="ckpt.pth"):
    path = tmp_path / name
    torch.save({"base_model": {"module." + k: v for k, v in model.state_dict().items()}, "epoch": 1}, path)
    return str(path)


def test_pointmae_backbone_into_recon_is_refused_and_named(tmp_path):
    path = _official(tmp_path, pointmae_base_pretrain(**PRE))
    with pytest.raises(CheckpointError) as e:
        recon_tiny(num_classes=0, pretrained=path, **TINY, **TINY_PTS)
    msg = str(e.value)
    assert "\n" not in msg and path in msg and "Point-MAE pretraining" in msg and "recon_tiny" in msg
    assert "weights outside the task head are missing" in msg and "img_token" in msg and "strict=False" in msg


def test_strict_false_accepts_and_logs_the_report(tmp_path, caplog):
    path = _official(tmp_path, pointmae_base_pretrain(**PRE))
    with caplog.at_level(logging.WARNING, logger="recon"):
        model = recon_tiny(num_classes=0, pretrained=path, strict=False, **TINY, **TINY_PTS)
    assert model.load_report.missing and model.load_report.loaded
    assert any("strict=False" in r.getMessage() and "missing" in r.getMessage() for r in caplog.records)
    # create_model passes strict through, and it is not part of the config
    model = create_model("recon_tiny", num_classes=0, pretrained=path, strict=False, **TINY, **TINY_PTS)
    assert "strict" not in model.config and "pretrained" not in model.config


def test_unrelated_keys_load_nothing_and_are_refused(tmp_path):
    torch.save({"state_dict": {"conv.weight": torch.zeros(3), "fc.bias": torch.zeros(2)}}, tmp_path / "x.pth")
    with pytest.raises(CheckpointError, match=r"no ReCon / Point-MAE model.*no key of it matches recon_tiny"):
        recon_tiny(num_classes=3, pretrained=str(tmp_path / "x.pth"), **TINY, **TINY_PTS)
    with pytest.raises(CheckpointError, match="no weights found"):
        recon_tiny(num_classes=3, pretrained={}, **TINY, **TINY_PTS)


def test_pretraining_file_into_classifier_still_loads(tmp_path, caplog):
    pre = recon_tiny_pretrain(**PRE)
    with caplog.at_level(logging.INFO, logger="recon"):
        clf = recon_tiny(num_classes=4, pretrained=_official(tmp_path, pre), **TINY, **TINY_PTS)
    assert clf.load_report.missing and all(k.startswith("cls_head_finetune.") for k in clf.load_report.missing)
    torch.testing.assert_close(clf.img_token, pre.MAE_encoder.img_token)
    assert any("loaded pretrained weights" in r.getMessage() for r in caplog.records)
    # Point-MAE: its pretraining encoder has no cls token, which the classifier starts fresh (official)
    pm = pointmae_base(num_classes=4, pretrained=_official(tmp_path, pointmae_base_pretrain(**PRE), "pm.pth"),
                       **TINY, **TINY_PTS)
    assert set(pm.load_report.missing) == {"cls_token", "cls_pos"} | {k for k in pm.state_dict() if "cls_head" in k}


def test_zeroshot_needs_its_projections(tmp_path):
    clf = recon_tiny(num_classes=3, **TINY, **TINY_PTS)
    with pytest.raises(CheckpointError, match=r"ReCon finetune \(classifier\).*img_proj"):
        create_model("recon_base_zeroshot", pretrained=_official(tmp_path, clf), **TINY, **TINY_PTS)


@pytest.mark.parametrize("value", [True])
def test_pretrained_true_says_there_are_no_hosted_weights(value):
    with pytest.raises(CheckpointError, match=r"pretrained=True: recon hosts no weights.*path"):
        recon_tiny(num_classes=3, pretrained=value, **TINY, **TINY_PTS)


@pytest.mark.parametrize("name,family", [
    ("recon_base_pretrain_released", "ReCon pretraining"),
    ("recon_base_pretrain_full_statedict", "ReCon pretraining"),
    ("pointmae_base_pretrain", "Point-MAE pretraining"),
    ("recon_tiny_finetune_cls15", "ReCon finetune (classifier)"),
    ("pointmae_base_finetune_cls15", "Point-MAE finetune (classifier)"),
    ("recon_base_zeroshot", "ReCon zero-shot"),
    ("recon_base_svm", "ReCon backbone (no head)"),
    ("recon_partseg50", "ReCon part segmentation"),
    ("pointmae_partseg50", "Point-MAE part segmentation"),
])
def test_guess_family_of_the_official_files(name, family):
    keys = list(official_shapes(name))
    assert guess_family(keys) == family
    assert guess_family(["module." + k for k in keys]) == family


def test_official_pretraining_file_via_factory(tmp_path):
    sd = official_state_dict("recon_tiny_pretrain_released")
    torch.save({"base_model": sd}, tmp_path / "pre.pth")
    model = create_model("recon_tiny", num_classes=15, pretrained=str(tmp_path / "pre.pth"))
    assert model.load_report.family == "ReCon pretraining" and len(model.load_report.missing) == 16
