"""Pretraining throughput on CPU and the share of time spent in recon.ops kernels.

    python benchmarks/pretrain_throughput.py --models recon_tiny_pretrain recon_base_pretrain \
        --batch 32 --npoints 1024 --steps 3 --json out.json

One step = forward (grouping, masking, encoder, decoder, Chamfer + SmoothL1 to teacher features),
backward and AdamW, as in ``recon pretrain`` with cached teacher features (the cache hands the
loop ready feature vectors, so random vectors of the teachers' sizes stand in for them here).
Reports wall-clock samples/s and CPU-time samples/s (CPU time is what a busy shared machine does
not distort), and from one ``torch.profiler`` step the share of self CPU time in ``recon::*`` ops
(FPS, kNN, gather/group, Chamfer, forward and backward). Prints a table, writes JSON; never fails
on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from _recon import require_compiled


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def bench(name: str, batch: int, npoints: int, steps: int, warmup: int) -> dict:
    from torch.profiler import ProfilerActivity, profile

    from recon.models import create_model

    torch.manual_seed(0)
    model = create_model(name, npoints=npoints, num_group=npoints // 16).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    pts = torch.rand(batch, npoints, 3) * 2 - 1
    feats = {}
    if getattr(model, "img_proj", None) is not None:
        feats["img_feat"] = torch.randn(batch, model.img_proj.out_features)
    if getattr(model, "text_proj", None) is not None:
        feats["text_feat"] = torch.randn(batch, model.text_proj.out_features)

    def step():
        out = model(pts, **feats)
        out["loss"].backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    w0, c0 = time.perf_counter(), _cpu()
    for _ in range(steps):
        step()
    wall, cpu = (time.perf_counter() - w0) / steps, (_cpu() - c0) / steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    ops = {e.key: e.self_cpu_time_total for e in events if e.key.startswith("recon::")}
    return {
        "model": name, "batch": batch, "npoints": npoints, "threads": torch.get_num_threads(),
        "seconds_per_step": wall, "samples_per_s": batch / wall,
        "cpu_seconds_per_step": cpu, "samples_per_cpu_s": batch / cpu,
        "recon_ops_share": sum(ops.values()) / max(total, 1),
        "recon_ops_us": {k: round(v) for k, v in sorted(ops.items(), key=lambda kv: -kv[1])},
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["recon_tiny_pretrain", "recon_base_pretrain"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--npoints", type=int, default=1024)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    a = p.parse_args()
    print(require_compiled())
    if a.threads:
        torch.set_num_threads(a.threads)
    rows = [bench(m, a.batch, a.npoints, a.steps, a.warmup) for m in a.models]
    print(f"{'model':<22} {'threads':>7} {'s/step':>8} {'samples/s':>10} {'CPU s/step':>11} "
          f"{'samples/CPU-s':>14} {'recon.ops share':>16} {'load':>6}")
    for r in rows:
        print(f"{r['model']:<22} {r['threads']:>7} {r['seconds_per_step']:8.2f} {r['samples_per_s']:10.2f} "
              f"{r['cpu_seconds_per_step']:11.2f} {r['samples_per_cpu_s']:14.2f} "
              f"{100 * r['recon_ops_share']:15.1f}% {r['load_average']:6.1f}")
        print("    recon ops (self CPU us):", r["recon_ops_us"])
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
