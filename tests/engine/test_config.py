import os

import pytest
import yaml

from recon.config import apply_overrides, config_dir, load_config


def _write(path, data):
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_base_inheritance_and_overrides(tmp_path):
    _write(tmp_path / "base.yaml", {"optimizer": {"lr": 1e-3, "wd": 0.05}, "train": {"epochs": 10}})
    child = _write(tmp_path / "child.yaml", {"_base_": "base.yaml", "optimizer": {"lr": 5e-4}})
    cfg = load_config(child, ["train.epochs=3", "optimizer.wd=0", "+model.depth=4", "train.epochs=[1, 2]"])
    assert cfg.optimizer.lr == 5e-4 and cfg.optimizer.wd == 0
    assert cfg.train.epochs == [1, 2]
    assert cfg.model.depth == 4
    assert cfg.get_path("optimizer.lr") == 5e-4 and cfg.get_path("nope.x", 7) == 7


def test_replace_marker_drops_inherited_keys(tmp_path):
    _write(tmp_path / "base.yaml", {"data": {"name": "A", "args": {"variant": "hardest", "n": 1}}})
    child = _write(tmp_path / "c.yaml", {"_base_": "base.yaml", "data": {"args": {"_replace_": True, "n": 2}}})
    assert load_config(child).data.to_dict() == {"name": "A", "args": {"n": 2}}


def test_unknown_key_lists_valid_keys(tmp_path):
    cfg = load_config(_write(tmp_path / "c.yaml", {"optimizer": {"lr": 1.0, "weight_decay": 0.1}}))
    with pytest.raises(KeyError) as err:
        apply_overrides(cfg, ["optimizer.lrr=2"])
    msg = str(err.value)
    assert "optimizer.lrr" in msg and "'lr'" in msg and "'weight_decay'" in msg and "Did you mean 'lr'" in msg
    with pytest.raises(KeyError, match="is a value"):
        apply_overrides(cfg, ["optimizer.lr.x=2"])
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides(cfg, ["optimizer.lr"])
    with pytest.raises(AttributeError, match="valid keys"):
        cfg.optimizer.momentum


def test_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))
    _write(tmp_path / "a.yaml", {"_base_": "b.yaml"})
    _write(tmp_path / "b.yaml", {"_base_": "a.yaml"})
    with pytest.raises(ValueError, match="cycle"):
        load_config(str(tmp_path / "a.yaml"))
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(str(tmp_path / "list.yaml"))


SHIPPED = sorted(
    os.path.relpath(os.path.join(d, f), config_dir())[:-5]
    for d, _, fs in os.walk(config_dir()) for f in fs if f.endswith(".yaml") and f != "default_runtime.yaml"
)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load(name):
    cfg = load_config(name)
    assert cfg.task in ("pretrain", "finetune", "partseg")
    for section in ("model", "data", "optimizer", "scheduler", "train", "log"):
        assert section in cfg, (name, section)
    assert cfg.train.batch_size > 0 and cfg.optimizer.lr > 0


def test_official_hyperparameters():
    scan = load_config("finetune/scan_hardest")
    assert (scan.optimizer.lr, scan.optimizer.cls_lr_mult, scan.train.grad_clip) == (2e-5, 10, 10)
    assert (scan.train.epochs, scan.scheduler.t_initial, scan.scheduler.warmup_epochs) == (301, 300, 10)
    assert (scan.model.npoints, scan.model.num_group, scan.eval.votes) == (2048, 128, 10)
    mn = load_config("finetune/modelnet")
    assert (mn.optimizer.lr, mn.train.transform, mn.eval.vote_transform) == (1e-5, "scale_translate", "scale")
    assert load_config("finetune/scan_objonly").eval.vote_transform == "none"
    demo = load_config("demo/pretrain")
    assert demo.data.train_split == "train" and not demo.data.args.get("whole")  # no test shapes in pretraining
    pre = load_config("pretrain/tiny")
    assert (pre.optimizer.lr, pre.train.batch_size, pre.model.mask_ratio) == (5e-4, 128, 0.6)
