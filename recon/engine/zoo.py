"""``recon zoo``: every registered model with its parameter count and forward FLOPs.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass of a single
cloud (2 FLOPs per multiply-add, every op, attention matmuls included; RECON_FACTS §5 relates this
to the paper's #F column, which counts multiply-adds without the attention matmuls).
"""

from __future__ import annotations

import torch

__all__ = ["zoo_rows", "print_zoo"]


def _build(name: str, npoints: int, num_classes: int):
    from recon.models import create_model

    if "pretrain" in name:
        return create_model(name, npoints=npoints, num_group=npoints // 16)
    return create_model(name, num_classes=num_classes, npoints=npoints, num_group=npoints // 16)


def count_flops(model: torch.nn.Module, npoints: int) -> int:
    """Forward FLOPs of ``model`` on one random cloud of ``npoints`` points."""
    from torch.utils.flop_counter import FlopCounterMode

    model.eval()
    pts = torch.rand(1, npoints, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(pts)
    return int(counter.get_total_flops())


def zoo_rows(npoints: int = 1024, num_classes: int = 15, flops: bool = True) -> list[dict]:
    """One dict per registered model: ``name``, ``params`` (trainable + frozen), ``gflops``."""
    from recon.models import list_models

    rows = []
    for name in list_models():
        model = _build(name, npoints, num_classes)
        row = {"name": name, "params": sum(p.numel() for p in model.parameters())}
        row["gflops"] = count_flops(model, npoints) / 1e9 if flops else None
        rows.append(row)
    return rows


def print_zoo(npoints: int = 1024, num_classes: int = 15, flops: bool = True) -> None:
    rows = zoo_rows(npoints, num_classes, flops)
    print(f"{'model':<28} {'params':>12} {'GFLOPs':>8}   (1 cloud, {npoints} points, "
          f"{npoints // 16} groups, {num_classes} classes; FlopCounterMode, 2 per MAC)")
    for r in rows:
        fl = f"{r['gflops']:8.3f}" if r["gflops"] is not None else f"{'-':>8}"
        print(f"{r['name']:<28} {r['params'] / 1e6:11.3f}M {fl}")
