"""Configs for the loop tests (stand-in models and data; see standins.py)."""

from recon.config import Config, apply_overrides, load_config, merge


def standin_config(task: str, out, overrides=()) -> Config:
    runtime = load_config("default_runtime")
    body = {
        "task": task,
        "output_dir": str(out),
        "deterministic": True,
        "model": ({"name": "standins:TinyPretrain", "dim": 16, "random_target": True} if task == "pretrain"
                  else {"name": "standins:TinyClassifier", "dim": 16, "num_classes": 3}),
        "data": {"name": "standins:BlobDataset", "root": None, "train_split": "train", "test_split": "test",
                 "args": {"n": 48, "npoints": 32}},
        "teachers": None,
        "pretrained": None,
        "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.05, "cls_lr_mult": 1},
        "scheduler": {"name": "cos_step", "t_initial": 4, "warmup_epochs": 1, "lr_min": 1e-4,
                      "warmup_lr_init": 1e-3},
        "train": {"epochs": 3, "batch_size": 8, "accum_steps": 1, "num_workers": 0, "grad_clip": None,
                  "amp": "none", "transform": "none", "sync_bn": False, "compile": False, "compile_fullgraph": True,
                  "max_steps": None, "npoints": 32, "point_all": 32},
        "eval": {"best_on": "val", "val_fraction": 0.25, "start_epoch": 0, "every": 1, "batch_size": 16,
                 "votes": 2, "vote_transform": "none", "vote_seed": 0, "vote_repeats": 1, "point_all": None},
        "log": {"every": 1, "progress": False, "tensorboard": False, "quiet": True},
    }
    if task == "pretrain":
        del body["eval"], body["pretrained"]
    return apply_overrides(Config(merge(runtime, body)), overrides)
