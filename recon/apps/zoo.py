"""``recon zoo``: every registered model with its parameter count and forward FLOPs.

FLOPs come from ``recon.models.count_flops`` (``FlopCounterMode``: 2 FLOPs per multiply-add,
attention matmuls included) on one cloud; "paper GMACs" is the paper's #F convention
(multiply-adds without the attention matmuls; docs/official.md §5).
"""

from __future__ import annotations

import torch

from recon.errors import ConfigError

from ._args import positive

__all__ = ["zoo_rows", "format_zoo", "run"]

NAME = "zoo"
MIN_POINTS = 32  # the zoo's models group 32 points around each centre


def add_parser(sub):
    p = sub.add_parser(NAME, help="list the models with parameters and FLOPs")
    p.add_argument("--npoints", type=int, default=1024, help="points per cloud for the FLOP count")
    p.add_argument("--num-classes", type=int, default=15)
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (faster)")
    p.set_defaults(_run=run)
    return p


def zoo_rows(npoints: int = 1024, num_classes: int = 15, flops: bool = True) -> list[dict]:
    """One dict per registered model: ``name``, ``kind``, ``params``, ``gflops``, ``paper_gmacs``."""
    from recon.models import count_flops, count_params, create_model, list_models, model_info

    positive(npoints, "--npoints", MIN_POINTS)
    positive(num_classes, "--num-classes")
    pts = torch.rand(1, npoints, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    rows = []
    for name in list_models():
        kind = model_info(name).kind
        kwargs = {"npoints": npoints, "num_group": npoints // 16}
        if kind == "classifier":
            kwargs["num_classes"] = num_classes
        try:
            model = create_model(name, **kwargs).eval()
            # a part-seg model also takes the object category
            extra = [torch.zeros(1, dtype=torch.long)] if kind == "partseg" else []
            fc = count_flops(model, pts, *extra) if flops else None
        except ValueError as exc:  # the model refuses these sizes: the user's arguments
            raise ConfigError(f"--npoints {npoints} / --num-classes {num_classes}: {name}: {exc}") from None
        row = {"name": name, "kind": kind, "params": count_params(model), "gflops": None, "paper_gmacs": None}
        if fc is not None:
            row["gflops"], row["paper_gmacs"] = fc.flops / 1e9, fc.paper_macs / 1e9
        rows.append(row)
    return rows


def format_zoo(rows: list[dict], npoints: int, num_classes: int) -> str:
    """The zoo table as text, one model per line."""
    lines = [f"{'model':<24} {'kind':<11} {'params':>9} {'GFLOPs':>8} {'paper GMACs':>12}"
             f"   (1 cloud of {npoints} points, {npoints // 16} groups, {num_classes} classes)"]
    for r in rows:
        f = (f"{r['gflops']:8.3f} {r['paper_gmacs']:12.3f}" if r["gflops"] is not None else f"{'-':>8} {'-':>12}")
        lines.append(f"{r['name']:<24} {r['kind']:<11} {r['params'] / 1e6:8.3f}M {f}")
    return "\n".join(lines)


def run(npoints: int = 1024, num_classes: int = 15, no_flops: bool = False) -> list[dict]:
    """Print the zoo table (the command's product) and return its rows."""
    rows = zoo_rows(npoints, num_classes, flops=not no_flops)
    print(format_zoo(rows, npoints, num_classes))
    return rows
