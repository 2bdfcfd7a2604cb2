"""Writers of tiny files in the real dataset formats, shared by the data tests."""

from __future__ import annotations

import json
import os
import pickle

import h5py
import numpy as np
from PIL import Image

SYNSETS = {"02691156": "airplane", "03001627": "chair", "04379243": "table"}


def write_shapenet(root, per_class=2, points=200, image=(40, 30), color=(255, 0, 0), seed=0):
    """ShapeNet-55 layout; returns the list of sample names (train: first, test: last per class)."""
    rng = np.random.default_rng(seed)
    for d in ("shapenet_pc", "shapenet_img", "ShapeNet-55"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    train, test = [], []
    for syn in SYNSETS:
        for i in range(per_class):
            name = f"{syn}-model{i:03d}"
            np.save(os.path.join(root, "shapenet_pc", name + ".npy"),
                    (rng.normal(size=(points, 3)) * 3 + 5).astype(np.float32))
            Image.new("RGB", image, color).save(os.path.join(root, "shapenet_img", name + ".png"))
            (test if i == per_class - 1 else train).append(name + ".npy")
    for s, lines in (("train", train), ("test", test)):
        with open(os.path.join(root, "ShapeNet-55", f"{s}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(root, "shapenet55.json"), "w") as f:
        json.dump([{"catalogue": int(s), "describe": d} for s, d in SYNSETS.items()], f)
    return train, test


def write_modelnet(root, classes=("airplane", "bathtub", "bed"), per_split=2, rows=120, seed=0,
                   num_category=40):
    rng = np.random.default_rng(seed)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, f"modelnet{num_category}_shape_names.txt"), "w") as f:
        f.write("\n".join(classes) + "\n")
    ids = {"train": [], "test": []}
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for k in range(2 * per_split):
            sid = f"{c}_{k + 1:04d}"
            arr = rng.normal(size=(rows, 6)).astype(np.float32)
            np.savetxt(os.path.join(root, c, sid + ".txt"), arr, delimiter=",", fmt="%.6f")
            ids["train" if k < per_split else "test"].append(sid)
    for s, lst in ids.items():
        with open(os.path.join(root, f"modelnet{num_category}_{s}.txt"), "w") as f:
            f.write("\n".join(lst) + "\n")
    return ids


def write_dat(path, n=3, points=8192, n_cls=3, seed=0):
    rng = np.random.default_rng(seed)
    pcs = [rng.normal(size=(points, 6)).astype(np.float32) for _ in range(n)]
    labels = [np.array([i % n_cls], dtype=np.int32) for i in range(n)]
    with open(path, "wb") as f:
        pickle.dump([pcs, labels], f)
    return pcs, labels


def write_fewshot(root, way=5, shot=10, fold=0, folder_fmt="{way}way_{shot}shot", points=64, seed=0):
    rng = np.random.default_rng(seed)
    names = ["airplane", "bathtub", "bed", "bench", "bookshelf", "bottle", "bowl", "car", "chair", "cone"]
    data = {s: [(rng.normal(size=(points, 6)).astype(np.float32) + 3, c, f"{names[c]}_{i:04d}")
                for c in range(way) for i in range(n)] for s, n in (("train", 2), ("test", 1))}
    d = os.path.join(root, folder_fmt.format(way=way, shot=shot))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{fold}.pkl"), "wb") as f:
        pickle.dump(data, f)
    return data


def write_scanobjectnn(root, folder, stem, n=6, points=64, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, folder), exist_ok=True)
    out = {}
    for s in ("training", "test"):
        data = (rng.normal(size=(n, points, 3)) * 2 + 1).astype(np.float32)
        label = (np.arange(n) % 15).astype(np.int64)
        with h5py.File(os.path.join(root, folder, f"{s}_{stem}.h5"), "w") as f:
            f["data"] = data
            f["label"] = label
        out[s] = (data, label)
    return out
