"""The run config's schema: defaults live in the dataclasses, values are typed, unknown keys are refused."""

import dataclasses

import pytest

from helpers import standin_config
from recon.config import load_config
from recon.engine.optim import build_optimizer, build_schedule
from recon.engine.schema import EvalSection, LogSection, OptimizerSection, SchedulerSection, run_config, section
from recon.errors import ConfigError


def test_defaults_fill_what_a_config_leaves_out(tmp_path):
    cfg = standin_config("finetune", tmp_path)
    for key in ("eval", "log"):
        del cfg[key]
    del cfg["train"]["accum_steps"], cfg["optimizer"]["weight_decay"], cfg["scheduler"]["t_initial"]
    del cfg["train"]["transform"]
    spec = run_config(cfg)
    assert spec.eval == EvalSection() and spec.log == LogSection()
    assert (spec.eval.best_on, spec.eval.votes, spec.eval.start_epoch, spec.log.every) == ("val", 10, 1, 20)
    assert spec.train.accum_steps == 1 and spec.optimizer.weight_decay == 0.05
    assert spec.scheduler.t_initial is None and spec.train.transform is None
    assert run_config(standin_config("pretrain", tmp_path)).train.transform == "none"  # the config's own value
    assert run_config(cfg, "pretrain").train.transform == "rotate"  # the official pretraining augmentation
    assert spec.raw is cfg and run_config(spec) is spec
    cfg["data"]["args"] = None  # `args: null` in a YAML file
    assert run_config(cfg).data.args == {}


def test_every_shipped_config_reads_and_keeps_its_values():
    spec = run_config(load_config("finetune/scan_hardest"))
    assert (spec.optimizer.lr, spec.optimizer.cls_lr_mult, spec.train.grad_clip) == (2e-5, 10.0, 10.0)
    assert (spec.train.epochs, spec.scheduler.t_initial, spec.eval.vote_transform) == (301, 300, "rotate")
    assert spec.data.name == "ScanObjectNN" and spec.data.args == {"variant": "hardest"}


@pytest.mark.parametrize("override, message", [
    ("+train.epochz=3", "unknown config key 'train.epochz'.*Did you mean 'epochs'"),
    ("+colour=red", "unknown config key 'colour'"),
    ("train.epochs=1.5", "train.epochs must be an int, got 1.5"),
    ("train.epochs=many", "train.epochs must be an int"),
    ("optimizer.lr=fast", "optimizer.lr must be a float"),
    ("log.progress=3", "log.progress must be a bool"),
    ("data.args=[1]", "data.args must be a dict"),
    ("device=tpu", "device must be one of auto, cpu, cuda"),
])
def test_bad_keys_and_values_are_config_errors_naming_the_key(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        run_config(standin_config("finetune", tmp_path, [override]))


def test_required_keys(tmp_path):
    cfg = standin_config("finetune", tmp_path)
    del cfg["optimizer"]["lr"]
    with pytest.raises(ConfigError, match="'optimizer.lr' is required"):
        run_config(cfg)
    del cfg["data"]
    with pytest.raises(ConfigError, match="'data' is required"):
        run_config(cfg)


def test_section_readers_take_a_mapping_or_the_dataclass():
    from torch import nn

    model = nn.Linear(2, 2)
    opt = build_optimizer(model, {"lr": 0.5})
    assert opt.param_groups[0]["weight_decay"] in (0.0, 0.05) and opt.defaults["betas"] == (0.9, 0.999)
    same = build_optimizer(model, OptimizerSection(lr=0.5))
    assert [g["lr"] for g in same.param_groups] == [g["lr"] for g in opt.param_groups]
    sched = build_schedule(opt, {"name": "constant"}, steps_per_epoch=1, epochs=7)
    assert sched.t_initial == 7 and sched.warmup == SchedulerSection().warmup_epochs
    with pytest.raises(ConfigError, match="unknown config key 'optimizer.lrate'"):
        build_optimizer(model, {"lrate": 0.5})
    assert section(LogSection, None, "log") == LogSection()
    fields = {f.name for f in dataclasses.fields(EvalSection)}
    assert {"best_on", "votes", "vote_transform", "vote_seed", "vote_repeats", "point_all"} <= fields


def test_another_tasks_own_keys_are_left_to_its_loop(tmp_path):
    """A task outside STRICT_TASKS (a loop with keys of its own) gets the shared keys typed, its own untouched."""
    cfg = standin_config("finetune", tmp_path, ["task=partseg", "+optimizer.head_lr_mult=10", "+train.augment=true",
                                                "+eval.protocol=honest"])
    spec = run_config(cfg)
    assert spec.optimizer.lr == 1e-2 and spec.raw.optimizer.head_lr_mult == 10 and spec.raw.eval.protocol == "honest"
    with pytest.raises(ConfigError, match="train.epochs must be an int"):
        run_config(standin_config("finetune", tmp_path, ["task=partseg", "train.epochs=many"]))
    with pytest.raises(ConfigError, match="unknown config key 'optimizer.head_lr_mult'"):
        run_config(cfg, "finetune")
