"""Loop mechanics on stand-ins: steps change weights and lower the loss, accumulation, exact resume,
and 2-process DDP == 1 process on the same global batch."""

import os
import subprocess

import pytest
import torch
import yaml

from helpers import standin_config
from recon.engine import checkpointing
from recon.engine.train_pretrain import pretrain


def _weights(out):
    return checkpointing.load(os.path.join(out, "ckpt-last.pt"))["model"]


def _same(a, b, **tol):
    assert a.keys() == b.keys()
    for k in a:
        if tol:
            torch.testing.assert_close(a[k], b[k], **tol, msg=k)
        else:
            assert torch.equal(a[k], b[k]), k


def test_pretrain_epochs_lower_the_loss_and_write_outputs(tmp_path):
    cfg = standin_config("pretrain", tmp_path, ["train.epochs=4", "scheduler.t_initial=4"])
    summary = pretrain(cfg)
    records = [yaml.safe_load(line) for line in open(tmp_path / "metrics.jsonl")]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert [r["step"] for r in epochs] == [0, 1, 2, 3]
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert {"loss_recon", "loss_img", "loss_text", "lr", "samples_per_s"} <= set(epochs[0])
    assert any(r["kind"] == "train_step" for r in records)
    backbone = torch.load(summary["checkpoints"]["backbone"], weights_only=True)["base_model"]
    assert backbone.keys() == _weights(tmp_path).keys()  # the official released layout of the model
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "summary.json").exists()


def test_gradient_accumulation_equals_the_full_batch(tmp_path):
    base = ["model.random_target=false", "train.epochs=2"]
    pretrain(standin_config("pretrain", tmp_path / "full", base))
    pretrain(standin_config("pretrain", tmp_path / "accum", base + ["train.accum_steps=2"]))
    _same(_weights(tmp_path / "full"), _weights(tmp_path / "accum"), rtol=1e-5, atol=1e-6)


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    pretrain(standin_config("pretrain", tmp_path / "straight", ["train.epochs=3"]))
    # the same run stopped after epoch 1 (cfg epochs=2 but the same 3-epoch schedule), then resumed
    pretrain(standin_config("pretrain", tmp_path / "cut", ["train.epochs=2", "scheduler.t_initial=4"]))
    state = checkpointing.load(os.path.join(tmp_path / "cut", "ckpt-last.pt"))
    assert state["epoch"] == 1 and len(state["rng"]) == 1
    pretrain(standin_config("pretrain", tmp_path / "cut", ["train.epochs=3", "resume=auto"]))
    _same(_weights(tmp_path / "straight"), _weights(tmp_path / "cut"))  # bit-exact
    lines = [yaml.safe_load(ln) for ln in open(tmp_path / "cut" / "metrics.jsonl")]
    assert [r["step"] for r in lines if r["kind"] == "epoch"] == [0, 1, 2]


def test_ckpt_every_writes_the_resumable_state_less_often_and_always_last(tmp_path, monkeypatch):
    from recon.engine import run as engine_run

    saved = []
    real = engine_run.save_training_state
    monkeypatch.setattr(engine_run, "save_training_state", lambda path, **kw: (saved.append(kw["epoch"]), real(path, **kw)))
    pretrain(standin_config("pretrain", tmp_path / "a", ["train.epochs=5", "+train.ckpt_every=2"]))
    assert saved == [1, 3, 4]  # every 2nd epoch and the last one
    saved.clear()
    pretrain(standin_config("pretrain", tmp_path / "b", ["train.epochs=3", "+train.ckpt_every=0"]))
    assert saved == [2] and _weights(tmp_path / "b")


def test_resume_rejects_a_weights_file(tmp_path):
    checkpointing.atomic_save({"base_model": {}}, str(tmp_path / "w.pth"))
    cfg = standin_config("pretrain", tmp_path / "r", [f"resume={tmp_path / 'w.pth'}"])
    with pytest.raises(ValueError, match="not a recon training checkpoint"):
        pretrain(cfg)


def test_two_process_gloo_ddp_equals_one_process(tmp_path, subprocess_env, python):
    over = ["model.random_target=false", "train.epochs=2", "train.batch_size=8", "model.dim=8"]
    pretrain(standin_config("pretrain", tmp_path / "one", over))
    cfg = standin_config("pretrain", tmp_path / "two", over)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    cmd = [python, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "recon.cli", "pretrain", str(path)]
    res = subprocess.run(cmd, env=subprocess_env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    state = checkpointing.load(os.path.join(tmp_path / "two", "ckpt-last.pt"))
    assert len(state["rng"]) == 2  # one RNG state per rank for an exact resume
    _same(_weights(tmp_path / "one"), state["model"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "none")])
def test_amp_auto_on_cpu_follows_native_bf16(monkeypatch, native, expected):
    """train.amp=auto: bf16 autocast on a CPU that multiplies bf16 in hardware, float32 elsewhere;
    fp16 needs CUDA whatever the CPU."""
    from recon.engine import loop
    from recon.errors import ConfigError

    monkeypatch.setattr(loop, "cpu_has_native_bf16", lambda: native)
    amp = loop.Amp("auto", torch.device("cpu"))
    assert amp.mode == expected
    assert amp.dtype == (torch.bfloat16 if native else None)
    assert loop.Amp("none", torch.device("cpu")).dtype is None
    with pytest.raises(ConfigError, match="fp16 needs CUDA"):
        loop.Amp("fp16", torch.device("cpu"))


def test_cpu_has_native_bf16_is_a_bool():
    from recon.engine.loop import cpu_has_native_bf16

    assert isinstance(cpu_has_native_bf16(), bool)
