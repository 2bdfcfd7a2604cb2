"""Uniform grid vs kd-tree inside recon's exact CPU kNN and Chamfer kernels (issue #6).

    PYTHONPATH=. python benchmarks/spatial_index.py [--repeats 7] [--threads 1] [--json out.json]

Times the private ops ``_knn_path`` and ``_chamfer_forward_path`` with path "grid", "tree" and
"index" (``index`` = the per-cloud choice the public ops use) at the issue's shapes on clouds of several
kinds: uniform in the unit cube, a sphere surface (how ShapeNet-like objects fill space), planar
(all z equal), tight clusters, and a line. Every output is checked against the brute-force
kernel (bit-identical or the script stops). Reported per op: the minimum over repeats of the
wall time and of the calling thread's CPU time (with one thread, the CPU time is what a shared,
busy machine disturbs least). Benchmarks never fail on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import recon._C  # noqa: E402,F401  (registers torch.ops.recon)

KINDS = ["uniform", "sphere", "planar", "clustered", "line"]
CASES = [("knn", 32, 1024, 8192, 32), ("knn", 32, 64, 1024, 32), ("chamfer", 32, 2048, 2048, 0),
         ("chamfer", 4, 16384, 16384, 0)]


def make_cloud(kind: str, B: int, N: int, g: torch.Generator) -> torch.Tensor:
    if kind == "uniform":
        return torch.rand(B, N, 3, generator=g)
    if kind == "sphere":
        p = torch.randn(B, N, 3, generator=g)
        return p / p.norm(dim=-1, keepdim=True)
    if kind == "planar":
        p = torch.rand(B, N, 3, generator=g)
        p[..., 2] = 0.25
        return p
    if kind == "clustered":  # 8 blobs of radius ~0.01 in the unit cube
        centers = torch.rand(B, 8, 3, generator=g)
        which = torch.randint(0, 8, (B, N), generator=g)
        return centers.gather(1, which[..., None].expand(-1, -1, 3)) + 0.01 * torch.randn(B, N, 3, generator=g)
    if kind == "line":
        t = torch.rand(B, N, 1, generator=g)
        return torch.cat([t, 2 * t, -t], dim=-1)
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def timeit(fn, repeats: int):
    out = fn()
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu = min(cpu, time.thread_time() - c0)
        wall = min(wall, time.perf_counter() - w0)
    return wall, cpu, out


def same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ops = torch.ops.recon
    rows = []
    print(f"threads={args.threads}; seconds, min of {args.repeats} (wall / thread CPU); "
          "'grid/tree' compares CPU times; every result equals brute force")
    print("| case | cloud | grid | kd-tree | index (auto) | grid/tree |")
    print("|---|---|---|---|---|---|")
    for op, B, M, N, k in CASES:
        for kind in args.kinds.split(","):
            g = torch.Generator().manual_seed(0)
            if op == "knn":
                q, r = make_cloud(kind, B, M, g), make_cloud(kind, B, N, g)
                fns = {n: (lambda n=n: ops._knn_path(q, r, k, n)) for n in ("grid", "tree", "index")}
                want = ops._knn_path(q, r, k, "brute")
                name = f"kNN B={B} {M} in {N} k={k}"
            else:
                x, y = make_cloud(kind, B, M, g), make_cloud(kind, B, N, g)
                fns = {n: (lambda n=n: ops._chamfer_forward_path(x, y, n)) for n in ("grid", "tree", "index")}
                want = ops._chamfer_forward_path(x, y, "brute")
                name = f"Chamfer B={B} {M} vs {N}"
            row = {"case": name, "cloud": kind, "times": {}}
            for n, fn in fns.items():
                wall, cpu, out = timeit(fn, args.repeats)
                if not same(out, want):
                    raise SystemExit(f"{name} {kind}: path {n!r} differs from brute force")
                row["times"][n] = {"wall": wall, "cpu": cpu}
            t = row["times"]
            print(f"| {name} | {kind} | {t['grid']['wall']:.4f} / {t['grid']['cpu']:.4f} | "
                  f"{t['tree']['wall']:.4f} / {t['tree']['cpu']:.4f} | {t['index']['wall']:.4f} / "
                  f"{t['index']['cpu']:.4f} | {t['grid']['cpu'] / t['tree']['cpu']:.2f} |", flush=True)
            rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": args.threads, "repeats": args.repeats, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
