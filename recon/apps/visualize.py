"""``recon visualize``: a PNG of the image and text queries' attention over one cloud (poster figure).

The cloud comes from a file (``--input``: .npy, .txt or .ply) or from a dataset (``--dataset``,
``--root``, ``--index``); the figure is :func:`recon.eval.visualize.visualize`'s.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from recon.errors import ConfigError

from ._args import add_model_args, check_out_path, parse_kv, positive

__all__ = ["run"]

NAME = "visualize"


def add_parser(sub):
    p = sub.add_parser(NAME, help="PNG of the image/text queries' attention over a cloud", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="a point cloud file: .npy, .txt or .ply")
    src.add_argument("--dataset", help="or a dataset name (synthetic, modelnet40, scan_hardest, ...)")
    p.add_argument("--root", default=None, help="dataset root (with --dataset)")
    p.add_argument("--split", default="test")
    p.add_argument("--index", type=int, default=0, help="sample index in the dataset")
    p.add_argument("--checkpoint", default=None, help="checkpoint; none = RANDOM weights (said so in the figure)")
    add_model_args(p, "recon_base")
    p.add_argument("--npoints", type=int, default=1024)
    p.add_argument("--group-size", type=int, default=32)
    p.add_argument("--layer", type=int, default=None, help="block index (negative from the end); default: mean")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="attention.png", help="PNG path")
    p.set_defaults(_run=run)
    return p


def _dataset_cloud(dataset: str, root: str | None, split: str, index: int, npoints: int, data_args) -> tuple:
    from recon.data.registry import build_dataset, load_npoints

    if not root:
        raise ConfigError("root: --dataset needs --root")
    ds = build_dataset(dataset, root, split, npoints=load_npoints(dataset, npoints), **parse_kv(data_args, "data-args"))
    if not 0 <= index < len(ds):
        raise ConfigError(f"index: expected 0 <= index < {len(ds)}, got {index}")
    item = ds[index]
    classes = getattr(ds, "classes", None)
    label = f"{dataset}[{index}]" + (f" ({classes[int(item['label'])]})" if classes else "")
    return np.asarray(item["points"], dtype=np.float32), label


def run(input: str | None = None, dataset: str | None = None, root: str | None = None, split: str = "test",
        index: int = 0, checkpoint: str | None = None, model: str = "recon_base", model_args=(), data_args=(),
        npoints: int = 1024, group_size: int = 32, layer: int | None = None, seed: int = 0,
        out: str = "attention.png") -> Path:
    """Render the attention PNG of one cloud; returns its path."""
    from recon.eval.frozen import frozen_model
    from recon.eval.visualize import read_points, visualize

    positive(npoints, "--npoints", 16)
    positive(group_size, "--group-size")
    check_out_path(out)
    if input:
        points, label = read_points(input), Path(input).name
    elif dataset:
        points, label = _dataset_cloud(dataset, root, split, index, npoints, data_args)
    else:
        raise ConfigError("visualize needs --input FILE or --dataset NAME")
    net = frozen_model(model, checkpoint, seed=seed, npoints=npoints, num_group=npoints // 16, group_size=group_size,
                       **parse_kv(model_args, "model-args"))
    weights = Path(checkpoint).name if checkpoint else "RANDOM weights (no checkpoint)"
    where = "mean over blocks" if layer is None else f"block {layer}"
    path = visualize(net, points, out, npoints=npoints, layer=layer, group_size=group_size,
                     title=f"{label} | {model}, {weights} | {where}, heads averaged")
    print(f"wrote {path}" + ("" if checkpoint else " (random weights: no checkpoint given)"))
    return path
