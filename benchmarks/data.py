"""Data-side timings: synthetic set generation and the pretraining data path.

    PYTHONPATH=. python benchmarks/data.py [--root /tmp/recon-bench] [--workers 2] [--json out.json]

1. ``generate`` of 12 classes × 100 shapes (8192 points + a 224² view each), from scratch.
2. The teacher-feature cache for that set (tiny demo teachers, K views), built once.
3. The pretraining data path: ``CachedTeacherDataset(SyntheticShapes(npoints=1024))`` through a
   ``DataLoader`` (batch 128, shuffled) — samples/s over a few epochs after one warm-up batch.
Prints a table and writes JSON; never fails on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import warnings

from _recon import require_compiled


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default="/tmp/recon-bench-data")
    ap.add_argument("--workers", type=int, default=2, help="generation and DataLoader workers")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--views", type=int, default=8)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="reuse an existing synthetic set / cache")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    print(require_compiled())

    import torch
    from torch.utils.data import DataLoader

    from recon.data import SyntheticShapes
    from recon.data.synthetic import generate

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    syn = os.path.join(args.root, "synthetic")
    if not args.keep:
        shutil.rmtree(args.root, ignore_errors=True)
    rows = {}
    t0 = time.perf_counter()
    generate(syn, num_per_class=args.per_class, workers=args.workers)
    rows["synthetic generate (s)"] = time.perf_counter() - t0
    rows["synthetic shapes"] = 12 * args.per_class

    from recon.teachers import (CachedTeacherDataset, TeacherFeatureCache, build_image_teacher,
                                build_text_teacher)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text, image = build_text_teacher("tiny", "random"), build_image_teacher("tiny", "random")
    ds = SyntheticShapes(syn, "train", npoints=1024, num_per_class=args.per_class)
    t0 = time.perf_counter()
    cache = TeacherFeatureCache(os.path.join(args.root, "cache"), ds, text, image, views=args.views,
                                num_workers=args.workers, batch_size=64).build()
    rows[f"feature cache build, tiny teachers, {args.views} views (s)"] = time.perf_counter() - t0
    data = CachedTeacherDataset(ds, cache)
    for workers in sorted({0, args.workers}):
        loader = DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=workers,
                            drop_last=True, persistent_workers=workers > 0)
        it = iter(loader)
        next(it)  # warm-up: worker start-up, page cache
        n, t0 = 0, time.perf_counter()
        for _ in range(args.epochs):
            for batch in loader:
                n += batch["points"].shape[0]
        rows[f"data path samples/s (1024 pts, {workers} workers)"] = n / (time.perf_counter() - t0)
    shapes = {k: list(v.shape) for k, v in batch.items() if hasattr(v, "shape")}
    width = max(map(len, rows))
    print(f"{'measure':<{width}}  value")
    for k, v in rows.items():
        print(f"{k:<{width}}  {v:,.1f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    print("batch:", shapes)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "batch": shapes, "cpus": os.cpu_count(),
                       "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    main()
