"""DDP training throughput on CPU (gloo): 1 process against N processes, same global batch.

    python benchmarks/ddp_throughput.py --procs 1 2 --batch 32 --steps 8 --json out.json

One step = forward, cross-entropy, backward (DDP all-reduces the gradients) and AdamW, on the
demo's reduced ReCon-Tiny classifier (4 blocks, C=192, 256 points, 16 groups of 16), random
clouds. The global batch is split over the processes as ``recon finetune`` does. Each process gets
``--threads`` torch threads; the processes meet on 127.0.0.1. Reports global samples/s per process
count and whether DDP warned "Grad strides do not match bucket view strides" (a gradient that is
not laid out like its parameter costs a copy per bucket per step). Prints a table, writes JSON;
never fails on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

MODEL = dict(name="recon_tiny", num_classes=12, npoints=256, num_group=16, group_size=16, depth=4,
             embed_dim=192, num_heads=3)
STRIDE_WARNING = "Grad strides do not match bucket view strides"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, args, result_path: str) -> None:
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    from recon.models import create_model

    torch.manual_seed(0)
    model = create_model(**MODEL).train()
    model = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    per_rank = args.batch // world
    g = torch.Generator().manual_seed(rank)
    pts = torch.rand(per_rank, MODEL["npoints"], 3, generator=g) * 2 - 1
    labels = torch.randint(0, MODEL["num_classes"], (per_rank,), generator=g)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(pts), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(args.warmup):
            step()
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        dist.barrier()
        seconds = time.perf_counter() - t0
    if rank == 0:
        with open(result_path, "w") as f:
            json.dump({"processes": world, "global_batch": per_rank * world, "steps": args.steps,
                       "seconds": seconds, "samples_per_s": per_rank * world * args.steps / seconds,
                       "stride_warning": any(STRIDE_WARNING in str(w.message) for w in caught)}, f)
    dist.destroy_process_group()


def bench(world: int, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.json")
        mp.spawn(_worker, args=(world, _free_port(), args, path), nprocs=world, join=True)
        with open(path) as f:
            return json.load(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch", type=int, default=32, help="global batch (split over the processes)")
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    rows = [bench(w, args) for w in args.procs]
    print(f"{'processes':>9} {'global batch':>12} {'samples/s':>10} {'speed-up':>8}  stride warning")
    for r in rows:
        print(f"{r['processes']:>9} {r['global_batch']:>12} {r['samples_per_s']:>10.1f} "
              f"{r['samples_per_s'] / rows[0]['samples_per_s']:>8.2f}  {'yes' if r['stride_warning'] else 'no'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads_per_process": args.threads, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
