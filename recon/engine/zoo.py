"""``recon zoo``: every registered model with its parameter count and forward FLOPs.

FLOPs come from ``recon.models.count_flops`` (``FlopCounterMode``: 2 FLOPs per multiply-add,
attention matmuls included) on one cloud; "paper GMACs" is the paper's #F convention
(multiply-adds without the attention matmuls; RECON_FACTS §5).
"""

from __future__ import annotations

import torch

__all__ = ["zoo_rows", "print_zoo"]


def zoo_rows(npoints: int = 1024, num_classes: int = 15, flops: bool = True) -> list[dict]:
    """One dict per registered model: ``name``, ``kind``, ``params``, ``gflops``, ``paper_gmacs``."""
    from recon.models import count_flops, count_params, create_model, list_models, model_info

    pts = torch.rand(1, npoints, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    rows = []
    for name in list_models():
        kind = model_info(name).kind
        kwargs = {"npoints": npoints, "num_group": npoints // 16}
        if kind == "classifier":
            kwargs["num_classes"] = num_classes
        model = create_model(name, **kwargs).eval()
        row = {"name": name, "kind": kind, "params": count_params(model), "gflops": None, "paper_gmacs": None}
        if flops:  # a part-seg model also takes the object category
            fc = count_flops(model, pts, *([torch.zeros(1, dtype=torch.long)] if kind == "partseg" else []))
            row["gflops"], row["paper_gmacs"] = fc.flops / 1e9, fc.paper_macs / 1e9
        rows.append(row)
    return rows


def print_zoo(npoints: int = 1024, num_classes: int = 15, flops: bool = True) -> None:
    rows = zoo_rows(npoints, num_classes, flops)
    print(f"{'model':<24} {'kind':<11} {'params':>9} {'GFLOPs':>8} {'paper GMACs':>12}"
          f"   (1 cloud of {npoints} points, {npoints // 16} groups, {num_classes} classes)")
    for r in rows:
        f = (f"{r['gflops']:8.3f} {r['paper_gmacs']:12.3f}" if r["gflops"] is not None else f"{'-':>8} {'-':>12}")
        print(f"{r['name']:<24} {r['kind']:<11} {r['params'] / 1e6:8.3f}M {f}")
