"""recon's CPU kernels against the CPU peers a user would pick instead (issue #6 table).

    python benchmarks/peers.py                         # 1 thread and all threads, table on stdout
    python benchmarks/peers.py --json peers.json --plot peers.png
    python benchmarks/ops.py --peers ...               # the same, from the ops benchmark

Peers, timed when importable (listed as missing otherwise): pykdtree, scipy (cKDTree),
open3d (core.nns kNN, farthest_point_down_sample), point-cloud-utils (nanoflann kNN), fpsample
(brute FPS and bucket FPS, both with start_idx=0). Each peer runs per cloud in a Python loop over
the batch, as a user would. Every thread setting runs in a fresh subprocess with OMP_NUM_THREADS
set, torch.set_num_threads, and the peers' own worker arguments. Each peer's output is checked
against recon's: "exact" = same indices (kNN: same neighbour lists; Chamfer: same nearest
indices; FPS: same sequence, open3d: same set). Times are the minimum of repeats after a warm-up
(the machine is shared; the minimum is the least disturbed run). Benchmarks never fail on speed.
fpsample 1.0.2's bucket FPS ignored start_idx=0 in our runs (it started elsewhere), so its
sequence differs from the exact start-0 one; it is timed as the speed reference it is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _recon import child_env, require_compiled

# (op, B, M or N, N, k or npoint): the table of issue #6 (+ the smaller PEERS.md shapes with --all)
CASES = [
    ("knn", 32, 1024, 8192, 32),
    ("chamfer", 32, 2048, 2048, 0),
    ("chamfer", 4, 16384, 16384, 0),
    ("chamfer", 832, 32, 32, 0),
    ("fps", 32, 8192, 8192, 1024),
]
EXTRA = [
    ("knn", 32, 64, 1024, 32),
    ("fps", 32, 1024, 1024, 64),
    ("chamfer_fb", 32, 2048, 2048, 0),
    ("chamfer_fb", 832, 32, 32, 0),
]


def case_name(c) -> str:
    op, B, M, N, k = c
    if op == "knn":
        return f"kNN B={B} {M} among {N} k={k}"
    if op == "fps":
        return f"FPS B={B} {N}->{k}"
    if op == "chamfer_fb":
        return f"Chamfer fwd+bwd B={B} {M} vs {N}"
    return f"Chamfer B={B} {M} vs {N}"


# ---------------------------------------------------------------------------------------------
# child: times one thread setting


def _peers(threads: int):
    """name -> module for the importable peers; failures are reported, not raised."""
    mods, missing = {}, {}
    for name in ("pykdtree", "scipy", "open3d", "point_cloud_utils", "fpsample"):
        try:
            if name == "pykdtree":
                from pykdtree.kdtree import KDTree as mod
            elif name == "scipy":
                from scipy.spatial import cKDTree as mod
            elif name == "open3d":
                import open3d as mod
            elif name == "point_cloud_utils":
                import point_cloud_utils as mod
            else:
                import fpsample as mod
            mods[name] = mod
        except Exception as exc:  # noqa: BLE001 - a peer that does not import is just missing
            missing[name] = f"{type(exc).__name__}: {exc}"
    return mods, missing


def _knn_impls(mods, threads):
    out = {}
    if "pykdtree" in mods:
        K = mods["pykdtree"]
        out["pykdtree"] = lambda q, r, k: [K(r[b]).query(q[b], k=k)[1] for b in range(len(q))]
    if "scipy" in mods:
        T = mods["scipy"]
        out["scipy"] = lambda q, r, k: [T(r[b]).query(q[b], k=k, workers=threads)[1] for b in range(len(q))]
    if "open3d" in mods:
        o3d = mods["open3d"]

        def o3d_knn(q, r, k):
            res = []
            for b in range(len(q)):
                nns = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(r[b]))
                nns.knn_index()
                res.append(nns.knn_search(o3d.core.Tensor(q[b]), k)[0].numpy())
            return res

        out["open3d"] = o3d_knn
    if "point_cloud_utils" in mods:
        pcu = mods["point_cloud_utils"]
        out["point-cloud-utils"] = lambda q, r, k: [
            pcu.k_nearest_neighbors(q[b], r[b], k, num_threads=threads)[1] for b in range(len(q))
        ]
    return out


def _fps_impls(mods, threads):
    out = {}
    if "fpsample" in mods:
        f = mods["fpsample"]
        out["fpsample.fps"] = lambda p, n: [f.fps_sampling(p[b], n, start_idx=0) for b in range(len(p))]
        out["fpsample bucket"] = lambda p, n: [
            f.bucket_fps_kdline_sampling(p[b], n, h=7, start_idx=0) for b in range(len(p))
        ]
    if "open3d" in mods:
        o3d = mods["open3d"]

        def o3d_fps(p, n):
            res = []
            for b in range(len(p)):
                pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(p[b].astype("float64")))
                res.append(pcd.farthest_point_down_sample(n))
            return res

        out["open3d"] = o3d_fps
    return out


def _timeit(fn, repeats: int, slow: float):
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    if first > slow:  # one warm-up is enough information for a multi-second call
        t0 = time.perf_counter()
        out = fn()
        return min(first, time.perf_counter() - t0), out
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def child(threads: int, cases, repeats: int, slow: float) -> dict:
    import numpy as np
    import torch

    import recon.ops as rops

    torch.set_num_threads(threads)
    mods, missing = _peers(threads)
    results = []
    for c in cases:
        op, B, M, N, k = c
        g = torch.Generator().manual_seed(0)
        row = {"case": case_name(c), "op": op, "shape": [B, M, N, k], "threads": threads, "times": {}, "exact": {}}
        if op == "knn":
            q, r = torch.rand(B, M, 3, generator=g), torch.rand(B, N, 3, generator=g)
            qn, rn = q.numpy(), r.numpy()
            t, (_, idx) = _timeit(lambda: rops.knn(q, r, k), repeats, slow)
            row["times"]["recon"] = t
            for name, fn in _knn_impls(mods, threads).items():
                t, out = _timeit(lambda: fn(qn, rn, k), repeats, slow)
                row["times"][name] = t
                got = np.stack([np.asarray(o, dtype=np.int64).reshape(M, k) for o in out])
                row["exact"][name] = float((got == idx.numpy()).mean())
        elif op in ("chamfer", "chamfer_fb"):
            x, y = torch.rand(B, M, 3, generator=g), torch.rand(B, N, 3, generator=g)
            xn, yn = x.numpy(), y.numpy()
            if op == "chamfer":
                t, (_, _, ixy, iyx) = _timeit(lambda: rops.chamfer_distance(x, y), repeats, slow)
            else:
                xg, yg = x.clone().requires_grad_(), y.clone().requires_grad_()

                def fb():
                    out = rops.chamfer_distance(xg, yg)
                    (out[0].mean() + out[1].mean()).backward()
                    return out

                t, (_, _, ixy, iyx) = _timeit(fb, repeats, slow)
            row["times"]["recon"] = t
            if op == "chamfer":
                for name, fn in _knn_impls(mods, threads).items():
                    t, out = _timeit(lambda: (fn(xn, yn, 1), fn(yn, xn, 1)), repeats, slow)
                    row["times"][name] = t
                    a = np.stack([np.asarray(o, dtype=np.int64).reshape(M) for o in out[0]])
                    b = np.stack([np.asarray(o, dtype=np.int64).reshape(N) for o in out[1]])
                    row["exact"][name] = float(
                        ((a == ixy.numpy()).sum() + (b == iyx.numpy()).sum()) / (a.size + b.size)
                    )
        else:  # fps
            p = torch.rand(B, N, 3, generator=g)
            pn = p.numpy()
            t, idx = _timeit(lambda: rops.furthest_point_sample(p, k, 0), repeats, slow)
            row["times"]["recon"] = t
            for name, fn in _fps_impls(mods, threads).items():
                t, out = _timeit(lambda: fn(pn, k), repeats, slow)
                row["times"][name] = t
                if name == "open3d":  # same set, in input order: compare the sets of chosen points
                    ours = np.sort(pn[np.arange(B)[:, None], idx.numpy()].reshape(B, -1, 3), axis=1)
                    theirs = np.sort(np.stack([np.asarray(o.points) for o in out]).astype(np.float32), axis=1)
                    row["exact"][name] = float(np.isclose(ours, theirs).all(axis=-1).mean())
                else:
                    got = np.stack([np.asarray(o, dtype=np.int64) for o in out])
                    row["exact"][name] = float((got == idx.numpy()).mean())
        results.append(row)
        print(f"  [{threads} thr] {row['case']}: " + ", ".join(f"{n} {v:.4f}s" for n, v in row["times"].items()),
              file=sys.stderr, flush=True)
    return {"threads": threads, "results": results, "missing": missing}


# ---------------------------------------------------------------------------------------------
# parent: one subprocess per thread setting, a table, JSON and a plot


def run(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default=None, help="comma list, default '1,<all cores>'")
    ap.add_argument("--all", action="store_true", help="also the smaller PEERS.md shapes")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--slow", type=float, default=2.0, help="a warm-up slower than this is timed once more only")
    ap.add_argument("--json", default=None)
    ap.add_argument("--plot", default=None, help="PNG bar chart")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cases", default=None, help="comma list of case indices (debugging)")
    args = ap.parse_args(argv)
    cases = CASES + (EXTRA if args.all else [])
    if args.cases:
        cases = [cases[int(i)] for i in args.cases.split(",")]
    if args.child is not None:
        print(json.dumps(child(args.child, cases, args.repeats, args.slow)))
        return {}
    print(require_compiled())
    allc = os.cpu_count() or 1
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, allc})
    runs = []
    for t in threads:
        env = dict(child_env(), OMP_NUM_THREADS=str(t), MKL_NUM_THREADS=str(t))
        cmd = [sys.executable, os.path.abspath(__file__), "--child", str(t), "--repeats", str(args.repeats),
               "--slow", str(args.slow)] + (["--all"] if args.all else []) + (["--cases", args.cases] if args.cases else [])
        out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    report = {"runs": runs, "cpu": _cpu_name(), "cores": allc}
    print_table(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)
    if args.plot:
        plot(report, args.plot)
    return report


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def print_table(report: dict) -> None:
    print(f"CPU: {report['cpu']} ({report['cores']} cores). Times in seconds (min of repeats); "
          "'exact' = fraction of indices equal to recon's.")
    for run in report["runs"]:
        if run["missing"]:
            print(f"missing peers: {run['missing']}")
        print(f"\n### {run['threads']} thread(s)")
        print("| case | recon | best peer | recon / best | peers (time, exact) |")
        print("|---|---|---|---|---|")
        for row in run["results"]:
            peers = {n: t for n, t in row["times"].items() if n != "recon"}
            best = min(peers, key=peers.get) if peers else None
            ratio = f"{row['times']['recon'] / peers[best]:.2f}" if best else "-"
            detail = ", ".join(f"{n} {t:.4f} ({row['exact'].get(n, float('nan')):.3f})" for n, t in peers.items())
            print(f"| {row['case']} | {row['times']['recon']:.4f} | {best or '-'} {peers.get(best, float('nan')):.4f} "
                  f"| {ratio} | {detail} |")


def plot(report: dict, path: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot")
        return
    runs = report["runs"]
    fig, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 5), squeeze=False)
    for ax, run in zip(axes[0], runs):
        names = sorted({n for r in run["results"] for n in r["times"]}, key=lambda n: (n != "recon", n))
        cases = [r["case"] for r in run["results"]]
        w = 0.8 / len(names)
        for i, n in enumerate(names):
            xs = [j + i * w for j in range(len(cases))]
            ys = [r["times"].get(n, float("nan")) for r in run["results"]]
            ax.bar(xs, ys, w, label=n)
        ax.set_yscale("log")
        ax.set_xticks([j + 0.4 - w / 2 for j in range(len(cases))])
        ax.set_xticklabels(cases, rotation=25, ha="right", fontsize=7)
        ax.set_ylabel("seconds (log)")
        ax.set_title(f"{run['threads']} thread(s)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"plot written to {path}")


if __name__ == "__main__":
    run()
