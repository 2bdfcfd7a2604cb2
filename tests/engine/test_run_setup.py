"""Run setup: SyncBN is refused where torch cannot run it; TensorBoard scalars or a clean fallback."""

import json
import logging
import sys

import pytest
import torch

from helpers import standin_config
from recon.engine import dist, run
from recon.engine.logging import RunLogger


def _fake_world(monkeypatch, world_size, device="cpu"):
    info = dist.DistInfo(rank=0, world_size=world_size, device=torch.device(device))
    monkeypatch.setattr(dist, "init_distributed", lambda device="auto", backend=None: info)


def test_sync_bn_on_distributed_cpu_is_an_error_naming_the_key(tmp_path, monkeypatch):
    _fake_world(monkeypatch, 2)
    with pytest.raises(ValueError, match=r"train\.sync_bn=true needs CUDA.*train\.sync_bn=false"):
        run.TrainRun(standin_config("pretrain", tmp_path, ["train.sync_bn=true"]), "pretrain")


def test_sync_bn_is_a_no_op_in_one_process_and_off_by_default(tmp_path, monkeypatch):
    r = run.TrainRun(standin_config("pretrain", tmp_path / "a", ["train.sync_bn=true"]), "pretrain")
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    assert r.wrap(model) is model and isinstance(model[1], torch.nn.BatchNorm1d)
    r.close()
    _fake_world(monkeypatch, 2)
    r = run.TrainRun(standin_config("pretrain", tmp_path / "b"), "pretrain")
    assert r.sync_bn is False
    r.close()
    with pytest.raises(ValueError, match="train.sync_bn must be true or false"):
        run.TrainRun(standin_config("pretrain", tmp_path / "c", ["train.sync_bn=yes please"]), "pretrain")


def test_torch_syncbatchnorm_still_refuses_cpu(tmp_path):
    """Why the error above exists; if torch learns SyncBN on CPU this fails and the check can go."""
    import torch.distributed as tdist

    tdist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        with pytest.raises(ValueError, match="SyncBatchNorm expected input tensor to be on GPU"):
            torch.nn.SyncBatchNorm(4).train()(torch.randn(8, 4))
    finally:
        tdist.destroy_process_group()


def _records(path):
    return [json.loads(line) for line in open(path)]


def test_tensorboard_scalars_are_written(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (requirements/ci-main.txt lists it)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = RunLogger(str(tmp_path), tensorboard=True, quiet=True)
    assert log.tensorboard_enabled
    for step, loss in enumerate([3.0, 2.0, 1.5]):
        log.log("epoch", step, loss=torch.tensor(loss), lr=0.1 * (step + 1), note="text is not a scalar")
    log.close()
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["epoch/loss", "epoch/lr"]
    assert [(e.step, e.value) for e in acc.Scalars("epoch/loss")] == [(0, 3.0), (1, 2.0), (2, 1.5)]
    assert [e.value for e in acc.Scalars("epoch/lr")] == pytest.approx([0.1, 0.2, 0.3])
    assert [r["loss"] for r in _records(tmp_path / "metrics.jsonl")] == [3.0, 2.0, 1.5]


def test_without_tensorboard_a_message_says_so_and_jsonl_is_written(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="recon")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import fail
    log = RunLogger(str(tmp_path), tensorboard=True)
    assert not log.tensorboard_enabled
    assert "TensorBoard is off" in caplog.text
    log.log("epoch", 0, loss=1.25)
    log.close()
    assert _records(tmp_path / "metrics.jsonl")[0]["loss"] == 1.25
    assert not (tmp_path / "tb").exists()
