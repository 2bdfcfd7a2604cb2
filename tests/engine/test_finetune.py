"""Finetuning loop and `recon test` on stand-ins (recon.checkpoint writes and reads the weights)."""

import pytest


import json
import os

import yaml

from helpers import standin_config
from recon.cli import main
from recon.engine.train_finetune import finetune


def test_finetune_selects_on_val_and_votes(tmp_path):
    cfg = standin_config("finetune", tmp_path, ["optimizer.cls_lr_mult=10", "train.epochs=3"])
    s = finetune(cfg)
    assert s["model"].startswith("best on val") and 0 <= s["best"]["epoch"] < 3
    assert 0 <= s["accuracy"] <= 100 and 0 <= s["accuracy_vote"] <= 100
    assert s["vote"]["votes"] == 2 and s["vote"]["total"] == 48
    assert os.path.exists(s["checkpoints"]["best"] + ".safetensors")
    records = [json.loads(ln) for ln in open(tmp_path / "metrics.jsonl")]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert all("val_acc" in r for r in epochs) and epochs[-1]["loss"] < epochs[0]["loss"]
    assert json.load(open(tmp_path / "summary.json"))["accuracy_vote"] == s["accuracy_vote"]
    # `recon test` on the best checkpoint reproduces the loop's voting number (same seed)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    assert main(["test", str(path), "--ckpt", s["checkpoints"]["best"]]) == 0


def test_finetune_official_selection_on_test_and_errors(tmp_path):
    s = finetune(standin_config("finetune", tmp_path / "a", ["eval.best_on=test", "train.epochs=2"]))
    assert s["model"].startswith("best on test")
    with pytest.raises(ValueError, match="eval.best_on"):
        finetune(standin_config("finetune", tmp_path / "b", ["eval.best_on=train"]))
    with pytest.raises(ValueError, match="multiple of"):
        finetune(standin_config("finetune", tmp_path / "c", ["train.accum_steps=3"]))
