"""Every file a run writes for later reading is replaced atomically: a write interrupted after its
content is on disk but before it is in place (simulated by a rename that never happens) leaves the
previous file intact and loadable, and no temporary behind."""

import json
import os
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from recon.checkpoint import read_checkpoint
from recon.engine import checkpointing
from recon.checkpoint import save_model as _save_model
from recon.engine.train_finetune import _write_summary
from recon.engine.train_pretrain import save_backbone


class Named(nn.Module):
    """A model with the ``config`` that ``recon.checkpoint.save_model`` requires."""

    def __init__(self, value: float):
        super().__init__()
        self.w = nn.Parameter(torch.full((64, 8), value))
        self.config = {"name": "standins:Named", "value": value}


def _ckpt_best(folder, value):
    _save_model(Named(value), os.path.join(folder, "ckpt-best"))


def _read_ckpt_best(folder):
    state, fmt = read_checkpoint(os.path.join(folder, "ckpt-best"))
    with open(os.path.join(folder, "ckpt-best.json")) as f:
        meta = json.load(f)
    assert fmt == "recon" and meta["config"]["value"] == float(state["w"][0, 0])
    return float(state["w"][0, 0])


def _backbone(folder, value):
    save_backbone(Named(value), os.path.join(folder, "ckpt-pretrain.pth"), epoch=int(value))


def _read_backbone(folder):
    state = torch.load(os.path.join(folder, "ckpt-pretrain.pth"), weights_only=True)
    return float(state["base_model"]["w"][0, 0])


def _summary(folder, value):
    _write_summary(SimpleNamespace(info=SimpleNamespace(is_main=True), out_dir=folder), {"accuracy": value})


def _read_summary(folder):
    with open(os.path.join(folder, "summary.json")) as f:
        return json.load(f)["accuracy"]


def _train_state(folder, value):
    model = Named(value)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    checkpointing.save_training_state(os.path.join(folder, "ckpt-last.pt"), model=model, optimizer=opt,
                                      schedule=None, scaler=None, epoch=int(value), config={})


def _read_train_state(folder):
    return float(checkpointing.load(os.path.join(folder, "ckpt-last.pt"))["model"]["w"][0, 0])


WRITERS = {
    "ckpt-best": (_ckpt_best, _read_ckpt_best),
    "ckpt-pretrain.pth": (_backbone, _read_backbone),
    "summary.json": (_summary, _read_summary),
    "ckpt-last.pt": (_train_state, _read_train_state),
}


class Interrupted(BaseException):
    """Stands in for a kill between the end of the write and the rename."""


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_an_interrupted_write_keeps_the_previous_file(tmp_path, monkeypatch, name):
    write, read = WRITERS[name]
    write(str(tmp_path), 1.0)
    before = sorted(os.listdir(tmp_path))
    assert read(str(tmp_path)) == 1.0

    def no_rename(src, dst):
        raise Interrupted(f"killed before renaming {src} over {dst}")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(Interrupted):  # a plain open(path, "w") write would not get here
        write(str(tmp_path), 2.0)
    monkeypatch.undo()
    assert read(str(tmp_path)) == 1.0
    assert sorted(os.listdir(tmp_path)) == before  # the temporary was removed
    write(str(tmp_path), 3.0)
    assert read(str(tmp_path)) == 3.0


def test_run_config_yaml_is_written_atomically(tmp_path, monkeypatch):
    from helpers import standin_config
    from recon.engine.run import TrainRun

    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (calls.append(os.path.basename(dst)), real(src, dst)))
    TrainRun(standin_config("pretrain", tmp_path), "pretrain").close()
    assert "config.yaml" in calls and (tmp_path / "config.yaml").exists()
