"""Every shipped config runs through ``recon.cli.main`` (the path users take) on tiny files in its
dataset's official on-disk format: one or two optimizer steps and the config's evaluation.

Configs are discovered, so a config added later is included; a config whose (task, dataset) kind
has no writer here fails: give it one. Only sizes change (a 1-block model, few points, one epoch of
two steps) and teachers are tiny towers loaded from files written here, through config overrides.
"""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch

from recon.cli import main
from recon.config import config_dir, load_config

CONFIGS = sorted(os.path.relpath(os.path.join(d, f), config_dir())[: -len(".yaml")]
                 for d, _, files in os.walk(config_dir()) for f in files if f.endswith(".yaml"))
BASES = {"default_runtime"}  # inherited by every config; not a run of its own
MISSING = object()


def _write_shapenet(root, cfg):
    from data_writers import write_shapenet

    write_shapenet(root, per_class=3, points=256, image=(48, 40))
    return []


def _write_scanobjectnn(root, cfg):
    from data_writers import write_scanobjectnn

    for folder, stem in (("main_split", "objectdataset_augmentedrot_scale75"), ("main_split", "objectdataset"),
                         ("main_split_nobg", "objectdataset")):
        write_scanobjectnn(root, folder, stem, n=20, points=256)
    return []


def _write_modelnet(root, cfg):
    from data_writers import write_dat

    os.makedirs(root, exist_ok=True)
    n = int(cfg.data.args.get("num_category", 40))
    with open(os.path.join(root, f"modelnet{n}_shape_names.txt"), "w") as f:
        f.write("\n".join(f"class{i}" for i in range(n)) + "\n")
    for i, split in enumerate(("train", "test")):
        write_dat(os.path.join(root, f"modelnet{n}_{split}_8192pts_fps.dat"), n=16, points=8192, n_cls=4, seed=i)
    return []


def _write_fewshot(root, cfg):
    from data_writers import write_fewshot

    a = cfg.data.args
    write_fewshot(root, way=int(a.way), shot=int(a.shot), fold=int(a.fold), points=256)
    return []


def _synthetic(root, cfg):
    return ["data.args.num_per_class=2", "+data.args.num_points=1024"]  # the set writes itself


def _partseg(root, cfg):
    """A part-seg run brings its own tiny model and data (tests/partseg/partseg_writers.py)."""
    from partseg_writers import config_overrides

    return config_overrides(cfg.name, root)


# (task, data.name) -> writer(root, cfg) -> extra overrides
WRITERS = {
    ("pretrain", "ShapeNet55"): _write_shapenet,
    ("pretrain", "SyntheticShapes"): _synthetic,
    ("finetune", "ScanObjectNN"): _write_scanobjectnn,
    ("finetune", "ModelNet40"): _write_modelnet,
    ("finetune", "ModelNetFewShot"): _write_fewshot,
    ("finetune", "SyntheticShapes"): _synthetic,
    ("partseg", "ShapeNetPart"): _partseg,
    ("partseg", "SyntheticParts"): _partseg,
}


def _kind(cfg):
    return cfg.get("task"), cfg.get_path("data.name")


@pytest.fixture(scope="module")
def teacher_files(tmp_path_factory):
    """Tiny teacher towers saved as weight files (the full-size ones are too slow for a smoke run)."""
    from recon.teachers import build_image_teacher, build_text_teacher

    root = tmp_path_factory.mktemp("teachers")
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, teacher in (("text", build_text_teacher("tiny", "random")),
                              ("vit", build_image_teacher("tiny", "random")),
                              ("clip", build_image_teacher("clip-tiny", "random"))):
            out[name] = str(root / f"{name}.pt")
            torch.save({k: v + 0.01 for k, v in teacher.tower.state_dict().items()}, out[name])
    return out


def test_every_config_has_a_writer():
    unknown = {}
    for name in CONFIGS:
        if name not in BASES:
            kind = _kind(load_config(name))
            if kind not in WRITERS:
                unknown[name] = kind
    assert not unknown, f"configs without a tiny-data writer in tests/smoke (add one): {unknown}"


def _opt(cfg, key, value):
    """``key=value`` where the config declares the key (sizes only shrink what a config has)."""
    return [f"{key}={value}"] if cfg.get_path(key, MISSING) is not MISSING else []


def _overrides(cfg, root, teacher_files):
    task = cfg.task
    o = ["log.progress=false", "log.tensorboard=false", "log.every=1", "train.epochs=1", "train.batch_size=4",
         "train.num_workers=0", "train.max_steps=2", "scheduler.t_initial=1", "scheduler.warmup_epochs=0",
         f"data.root={root}", "model.npoints=128", "model.num_group=8", "model.group_size=8", "+model.depth=1"]
    if task == "pretrain":
        o += ["+model.decoder_depth=1", "data.args.npoints=128"]
        teachers = cfg.get("teachers")
        if teachers:
            image = teachers.get("image")
            if image:  # keep the teacher's output size (768 ViT, 512 CLIP): the model's img_dim expects it
                clip = str(image.arch).startswith("clip")
                o += [f"teachers.image.arch={'clip-tiny' if clip else 'tiny'}",
                      f"teachers.image.weights={teacher_files['clip' if clip else 'vit']}"]
            if teachers.get("text"):
                o += ["teachers.text.arch=tiny", f"teachers.text.weights={teacher_files['text']}"]
            o += [f"teachers.cache={root}/teacher_cache"] + _opt(cfg, "teachers.views", 1)
    else:
        o += ["train.npoints=128", "train.point_all=160", "eval.start_epoch=0", "eval.votes=2",
              "eval.batch_size=8"] + _opt(cfg, "eval.point_all", "null")
    return o


@pytest.mark.parametrize("name", CONFIGS)
def test_config_runs(name, tmp_path, teacher_files):
    cfg = load_config(name)
    if name in BASES:
        assert "task" not in cfg
        return
    kind = _kind(cfg)
    assert kind in WRITERS, f"{name}: no tiny-data writer for {kind} in tests/smoke: add one"
    root = tmp_path / "data"
    cfg.name = name
    extra = WRITERS[kind](str(root), cfg)
    out = tmp_path / "run"
    sizes = [] if cfg.task == "partseg" else _overrides(cfg, root, teacher_files)
    argv = [cfg.task, name, *sizes, *extra, "--out", str(out), *(["--no-png"] if cfg.task == "partseg" else [])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(argv) == 0, f"recon {' '.join(argv)}"
    summary = json.loads((out / "summary.json").read_text())
    if cfg.task == "finetune":
        assert 0 <= summary["accuracy"] <= 100 and 0 <= summary["accuracy_vote"] <= 100
    elif cfg.task == "partseg":
        assert 0 <= summary["test"]["instance_miou"] <= 100
    else:
        assert os.path.isfile(summary["checkpoints"]["backbone"])
        assert np.isfinite(summary["last_epoch"]["loss"])
