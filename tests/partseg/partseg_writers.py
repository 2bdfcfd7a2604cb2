"""Tiny ShapeNetPart folders and config overrides, shared by the part-seg tests (and the config smoke runs).

    root = write_shapenetpart(tmp_path / "shapenetpart")
    cfg = load_config("partseg/shapenetpart", tiny_overrides(root, tmp_path / "out"))
"""

from __future__ import annotations

import json
import os

import numpy as np

# name -> (synset, global part ids); a subset of ShapeNetPart's 16 categories, in the official order
CATEGORIES = {"Airplane": ("02691156", [0, 1, 2, 3]), "Mug": ("03797390", [36, 37]),
              "Table": ("04379243", [47, 48, 49])}


def write_shapenetpart(root, categories=CATEGORIES, per_split=(3, 2, 2), rows=(150, 220), seed=0) -> str:
    """A ShapeNetPart layout with random clouds; ``per_split`` = shapes per category in train/val/test.

    Every shape has rows ``x y z nx ny nz part`` with its category's parts (each part present).
    Returns ``root`` (as str).
    """
    rng = np.random.default_rng(seed)
    root = os.fspath(root)
    os.makedirs(os.path.join(root, "train_test_split"), exist_ok=True)
    with open(os.path.join(root, "synsetoffset2category.txt"), "w") as f:
        f.write("".join(f"{name}\t{syn}\n" for name, (syn, _) in categories.items()))
    for split, n in zip(("train", "val", "test"), per_split):
        listed = []
        for name, (syn, parts) in categories.items():
            os.makedirs(os.path.join(root, syn), exist_ok=True)
            for i in range(n):
                token = f"{split}_{name.lower()}_{i:03d}"
                m = int(rng.integers(rows[0], rows[1] + 1))
                xyz = rng.normal(size=(m, 3)) * 2 + 3
                nrm = rng.normal(size=(m, 3))
                part = np.array(parts)[np.arange(m) % len(parts)]
                np.savetxt(os.path.join(root, syn, token + ".txt"),
                           np.concatenate([xyz, nrm, part[:, None]], axis=1), fmt="%.6f")
                listed.append(f"shape_data/{syn}/{token}")
        with open(os.path.join(root, "train_test_split", f"shuffled_{split}_file_list.json"), "w") as f:
            json.dump(listed[::-1], f)
    return root


# a reduced part-seg model: the official classes and head structure, tiny widths
TINY_MODEL = ["model.npoints=64", "model.num_group=8", "model.group_size=8", "+model.depth=2",
              "+model.embed_dim=32", "+model.num_heads=2", "+model.feature_blocks=[0,1]",
              "+model.propagation_dims=[24,16]", "+model.head_dims=[16,8]"]


def tiny_overrides(root, out, epochs: int = 1) -> list[str]:
    """Overrides that make ``partseg/shapenetpart*.yaml`` run in seconds on the tiny folder."""
    return TINY_MODEL + [
        f"data.root={os.fspath(root)}", "data.args.npoints=64", f"output_dir={os.fspath(out)}",
        f"train.epochs={epochs}", "train.batch_size=4", "train.num_workers=0", "eval.batch_size=4",
        "log.progress=false", "log.tensorboard=false", "log.quiet=true",
    ]


def config_overrides(config: str, tmp, epochs: int = 1) -> list[str]:
    """Tiny-run overrides for any shipped ``partseg/*`` config (writes the data it needs under ``tmp``)."""
    tmp = os.fspath(tmp)
    out = os.path.join(tmp, "out")
    if config.endswith("synthetic"):
        return tiny_overrides(os.path.join(tmp, "synthetic_parts"), out, epochs) + [
            "data.args.counts={train: 4, val: 2, test: 2}", "+data.args.categories=[Mug, Table]",
            "+data.args.num_points=[150, 200]"]
    return tiny_overrides(write_shapenetpart(os.path.join(tmp, "shapenetpart")), out, epochs)
