"""Times recon.ops against its plain-PyTorch baselines and the peers that are installed.

    python benchmarks/ops.py                      # Point-MAE shapes, 1 thread and all threads, CPU (+ CUDA)
    python benchmarks/ops.py --peers [--json P --plot PNG]   # vs the CPU kd-tree/FPS peers (benchmarks/peers.py)
    python benchmarks/ops.py --quick              # tiny shapes, seconds: a smoke test for CI
    python benchmarks/ops.py --json ops.json      # also write every measurement as JSON

Baselines (the "ratio" column is baseline time / recon time): FPS -> recon.ops.reference (the
usual loop over npoint, vectorised over the batch); kNN -> torch.cdist + topk; Chamfer ->
torch.cdist + min both ways; ball query -> the fastest CPU peer installed (scipy's
cKDTree.query_ball_point with workers = the thread count, open3d's fixed-radius search), whose
neighbour lists are checked against recon's in float64 before timing (timed: the peer's call
alone, tree build included, not the conversion of its lists to recon's padded layout); ragged
rows -> the padded call of the same op on equal-length clouds (ratio >= 0.9: within 10 %). recon.ops.reference is also timed where its O(B·N·M) memory fits
under --max-baseline-gb. Peers (fpsample, torch_cluster, pytorch3d, open3d) are timed when
importable and listed as skipped otherwise. Each number is the median of repeats after one
warm-up call (a call slower than --slow seconds is timed once). Peak extra memory of recon's
Chamfer at the largest shape is measured in a fresh process. Benchmarks never fail on speed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable

import torch

from _recon import child_env, require_compiled

HEADER = require_compiled(allow_fallback="--allow-fallback" in sys.argv)

import recon.ops as ops
from recon.ops import reference

FULL = {
    "fps": [(32, 1024, 64), (32, 8192, 1024), (8, 65536, 4096)],
    "knn": [(32, 64, 1024, 32), (32, 1024, 8192, 32)],
    "chamfer": [(32, 2048, 2048), (32 * 26, 32, 32), (4, 16384, 16384)],
    "ball_query": [(32, 1024, 8192, 32, 0.1), (32, 1024, 8192, 32, 0.2)],
    "ragged": [(32, 1024, 8192, 32)],
}
QUICK = {
    "fps": [(4, 1024, 64)],
    "knn": [(4, 64, 1024, 32)],
    "chamfer": [(4, 512, 512), (64, 32, 32)],
    "ball_query": [(4, 128, 1024, 32, 0.2)],
    "ragged": [(4, 128, 1024, 8)],
}


# ---------------------------------------------------------------------------------------------
# implementations: name -> callable(inputs) ; each returns something to synchronise on


def _cdist_knn(q, r, k):
    return torch.cdist(q, r).pow(2).topk(k, dim=-1, largest=False)


def _cdist_chamfer(x, y):
    d = torch.cdist(x, y).pow(2)
    return d.min(dim=2), d.min(dim=1)


def _peer(name: str):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:80]


def peers_fps():
    out, skipped = {}, {}
    m = _peer("fpsample")
    if isinstance(m, str):
        skipped["fpsample"] = m
    else:
        def run(xyz, npoint, m=m):
            a = xyz.cpu().numpy()
            return [m.fps_sampling(a[b], npoint, start_idx=0) for b in range(a.shape[0])]
        out["fpsample"] = run
    m = _peer("torch_cluster")
    if isinstance(m, str):
        skipped["torch_cluster"] = m
    else:
        def run(xyz, npoint, m=m):
            B, N, _ = xyz.shape
            batch = torch.arange(B, device=xyz.device).repeat_interleave(N)
            return m.fps(xyz.reshape(-1, 3), batch, ratio=npoint / N, random_start=False)
        out["torch_cluster"] = run
    m = _peer("pytorch3d.ops")
    if isinstance(m, str):
        skipped["pytorch3d"] = m
    else:
        out["pytorch3d"] = lambda xyz, npoint, m=m: m.sample_farthest_points(xyz, K=npoint)
    m = _peer("open3d")
    if isinstance(m, str):
        skipped["open3d"] = m
    else:
        def run(xyz, npoint, m=m):
            res = []
            for cloud in xyz.cpu().double().numpy():
                pc = m.geometry.PointCloud(m.utility.Vector3dVector(cloud))
                res.append(pc.farthest_point_down_sample(npoint))
            return res
        out["open3d"] = run
    return out, skipped


def peers_knn():
    out, skipped = {}, {}
    m = _peer("pytorch3d.ops")
    if isinstance(m, str):
        skipped["pytorch3d"] = m
    else:
        out["pytorch3d"] = lambda q, r, k, m=m: m.knn_points(q, r, K=k)
    m = _peer("torch_cluster")
    if isinstance(m, str):
        skipped["torch_cluster"] = m
    else:
        def run(q, r, k, m=m):
            B, M, _ = q.shape
            N = r.shape[1]
            bq = torch.arange(B, device=q.device).repeat_interleave(M)
            br = torch.arange(B, device=q.device).repeat_interleave(N)
            return m.knn(r.reshape(-1, 3), q.reshape(-1, 3), k, br, bq)
        out["torch_cluster"] = run
    return out, skipped


def peers_chamfer():
    out, skipped = {}, {}
    m = _peer("pytorch3d.ops")
    if isinstance(m, str):
        skipped["pytorch3d"] = m
    else:
        out["pytorch3d"] = lambda x, y, m=m: (m.knn_points(x, y, K=1), m.knn_points(y, x, K=1))
    return out, skipped


# ---------------------------------------------------------------------------------------------


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timeit(fn: Callable[[], object], device: str, repeats: int, slow: float) -> tuple[float, int]:
    """Median seconds of ``fn`` after one warm-up; a warm-up slower than ``slow`` is the sample."""
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    first = time.perf_counter() - t
    if first > slow:
        return first, 1
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times), len(times)


def _fwd_bwd(fn):
    def run(x, y):
        xr, yr = x.detach().requires_grad_(), y.detach().requires_grad_()
        out = fn(xr, yr)
        (out[0].sum() + out[1].sum()).backward()
        return out
    return run


def _cdist_chamfer_vals(x, y):
    (a, _), (b, _) = _cdist_chamfer(x, y)
    return a, b


def cases(shapes: dict, device: str, max_gb: float):
    """Yields (op, case label, baseline name, {impl name: thunk}, {impl: skip reason})."""
    g = torch.Generator().manual_seed(0)

    def pts(B, N):
        return torch.rand(B, N, 3, generator=g).to(device)

    fps_peers, fps_skip = peers_fps()
    knn_peers, knn_skip = peers_knn()
    ch_peers, ch_skip = peers_chamfer()
    for B, N, npoint in shapes["fps"]:
        xyz = pts(B, N)
        impls = {"recon": lambda: ops.furthest_point_sample(xyz, npoint),
                 "reference": lambda: reference.furthest_point_sample(xyz, npoint)}
        skip = dict(fps_skip) if device == "cpu" else {}
        if device == "cpu":
            impls.update({k: (lambda f=f: f(xyz, npoint)) for k, f in fps_peers.items()})
        yield "fps", f"B={B}, {N} -> {npoint}", "reference", impls, skip
    for B, M, N, k in shapes["knn"]:
        q, r = pts(B, M), pts(B, N)
        impls = {"recon": lambda: ops.knn(q, r, k), "cdist+topk": lambda: _cdist_knn(q, r, k)}
        skip = dict(knn_skip) if device == "cpu" else {}
        gb = B * M * N * 3 * 4 / 1e9
        if gb <= max_gb:
            impls["reference"] = lambda: reference.knn(q, r, k)
        else:
            skip["reference"] = f"needs ~{gb:.1f} GB (> --max-baseline-gb)"
        if device == "cpu":
            impls.update({name: (lambda f=f: f(q, r, k)) for name, f in knn_peers.items()})
        yield "knn", f"B={B}, {M} among {N}, k={k}", "cdist+topk", impls, skip
    for B, N, M in shapes["chamfer"]:
        x, y = pts(B, N), pts(B, M)
        for mode in ("fwd", "fwd+bwd"):
            wrap = (lambda f: f) if mode == "fwd" else _fwd_bwd
            impls = {"recon": lambda w=wrap: w(ops.chamfer_distance)(x, y)}
            skip = dict(ch_skip) if device == "cpu" else {}
            cd_gb = B * N * M * 4 * (2 if mode == "fwd" else 4) / 1e9
            if cd_gb <= max_gb:
                impls["cdist+min"] = lambda w=wrap: w(_cdist_chamfer_vals)(x, y)
            else:
                skip["cdist+min"] = f"needs ~{cd_gb:.1f} GB (> --max-baseline-gb)"
            ref_gb = B * N * M * 4 * 5 / 1e9
            if ref_gb <= max_gb:
                impls["reference"] = lambda w=wrap: w(reference.chamfer_distance)(x, y)
            else:
                skip["reference"] = f"needs ~{ref_gb:.1f} GB (> --max-baseline-gb)"
            if device == "cpu":
                impls.update({name: (lambda f=f, w=wrap: w(lambda a, b: _p3d_vals(f(a, b)))(x, y))
                              for name, f in ch_peers.items()})
            yield f"chamfer {mode}", f"B={B}, {N} vs {M}", "cdist+min", impls, skip
    bq_peers, bq_skip = peers_ball_query()
    for B, M, N, k, radius in shapes["ball_query"]:
        q, r = pts(B, M), pts(B, N)
        impls = {"recon": lambda: ops.ball_query(q, r, radius, k)}
        skip = dict(bq_skip) if device == "cpu" else {}
        if device == "cpu":
            for name, ok in check_ball_query_peers(q[:2, :256], r[:2], radius, k).items():
                if not ok:
                    raise SystemExit(f"ball query: {name} disagrees with recon (B={B}, r={radius})")
            impls.update({name: (lambda f=f: f(q, r, radius, k)) for name, f in bq_peers.items()})
        base = min(bq_peers, default="recon") if device == "cpu" else "recon"
        yield "ball_query", f"B={B}, {M} in {N}, k={k}, r={radius}", base, impls, skip
    for B, M, N, k in shapes["ragged"]:
        q, r = pts(B, M), pts(B, N)
        lq = torch.full((B,), M, dtype=torch.long, device=device)
        lr = torch.full((B,), N, dtype=torch.long, device=device)
        pairs = {
            "knn": (lambda: ops.knn(q, r, k), lambda: ops.knn(q, r, k, query_lengths=lq, ref_lengths=lr)),
            "ball_query": (lambda: ops.ball_query(q, r, 0.1, k),
                           lambda: ops.ball_query(q, r, 0.1, k, query_lengths=lq, ref_lengths=lr)),
            "chamfer": (lambda: ops.chamfer_distance(q, r),
                        lambda: ops.chamfer_distance(q, r, x_lengths=lq, y_lengths=lr)),
            "fps": (lambda: ops.furthest_point_sample(r, M), lambda: ops.furthest_point_sample(r, M, lengths=lr)),
        }
        for name, (padded, rag) in pairs.items():
            yield f"ragged {name}", f"B={B}, {M} / {N}, full lengths", "padded", {"padded": padded, "ragged": rag}, {}


def peers_ball_query():
    """name -> fn(q, r, radius, k) running the peer's radius search, and name -> fn(...) giving its
    answer in recon's layout (first k hits by index, -1 padded) for the check."""
    out, skipped = {}, {}
    m = _peer("scipy.spatial")
    if isinstance(m, str):
        skipped["scipy"] = m
    else:
        def run(q, r, radius, k, m=m):
            qa, ra = q.cpu().numpy(), r.cpu().numpy()
            w = torch.get_num_threads()
            return [m.cKDTree(ra[b]).query_ball_point(qa[b], radius, workers=w) for b in range(qa.shape[0])]
        out["scipy cKDTree"] = run
    m = _peer("open3d")
    if isinstance(m, str):
        skipped["open3d"] = m
    else:
        def run(q, r, radius, k, m=m):
            res = []
            for b in range(q.shape[0]):
                nns = m.core.nns.NearestNeighborSearch(m.core.Tensor.from_numpy(r[b].cpu().numpy()))
                nns.fixed_radius_index(radius)
                res.append(nns.fixed_radius_search(m.core.Tensor.from_numpy(q[b].cpu().numpy()), radius, False))
            return res
        out["open3d"] = run
    return out, skipped


def _as_first_k(name: str, res, B: int, M: int, k: int) -> torch.Tensor:
    """A peer's hit lists -> (B, M, k) int64, the k lowest indices ascending, -1 padded."""
    out = torch.full((B, M, k), -1, dtype=torch.long)
    for b in range(B):
        if name == "open3d":
            idx, _, splits = res[b]
            idx, splits = idx.numpy().tolist(), splits.numpy().tolist()
            rows = [idx[splits[i] : splits[i + 1]] for i in range(M)]
        else:
            rows = res[b]
        for i, row in enumerate(rows):
            first = sorted(row)[:k]
            out[b, i, : len(first)] = torch.tensor(first, dtype=torch.long)
    return out


def check_ball_query_peers(q, r, radius, k) -> dict:
    """Whether each peer returns recon's neighbours (both in float64; peers test <= radius,
    recon < radius, which differs only for a distance exactly equal to the radius)."""
    peers, _ = peers_ball_query()
    want = ops.ball_query(q.double(), r.double(), radius, k)[1]
    B, M = q.shape[0], q.shape[1]
    return {name: bool(torch.equal(_as_first_k(name, f(q.double(), r.double(), radius, k), B, M, k), want))
            for name, f in peers.items()}


def _p3d_vals(res):
    a, b = res
    return a.dists[..., 0], b.dists[..., 0]


MEM_CHILD = r"""
import json, os, resource, sys, threading, time, torch
import recon.ops as ops
PAGE = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE
torch.manual_seed(0)
B, N, M, device, bwd = {B}, {N}, {M}, {device!r}, {bwd}
x = torch.rand(B, N, 3, device=device, requires_grad=bwd)
y = torch.rand(B, M, 3, device=device, requires_grad=bwd)
ops.chamfer_distance(x[:, :64], y[:, :64])  # load everything once
if device == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
peak, done = [rss()], [False]
before = peak[0]
def sample():  # resident-set high-water mark while the op runs
    while not done[0]:
        peak[0] = max(peak[0], rss()); time.sleep(0.0005)
t = threading.Thread(target=sample); t.start()
d_xy, d_yx, _, _ = ops.chamfer_distance(x, y)
if bwd:
    (d_xy.mean() + d_yx.mean()).backward()
if device == "cuda":
    torch.cuda.synchronize()
peak[0] = max(peak[0], rss()); done[0] = True; t.join()
out = {{"cpu_peak_extra_mb": round((peak[0] - before) / 2**20, 2)}}
if device == "cuda":
    out["cuda_peak_extra_mb"] = round((torch.cuda.max_memory_allocated() - base) / 2**20, 2)
print(json.dumps(out))
"""


def peak_memory(B: int, N: int, M: int, device: str, bwd: bool) -> dict:
    """Extra peak memory of recon's Chamfer (resident set sampled every 0.5 ms), in a fresh process."""
    code = MEM_CHILD.format(B=B, N=N, M=M, device=device, bwd=bwd)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--peers" in argv:  # the CPU spatial peers (issue #6): benchmarks/peers.py owns those options
        import peers  # beside this script

        argv.remove("--peers")
        peers.run(argv)
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny shapes and few repeats (CI smoke test)")
    p.add_argument("--json", metavar="PATH", help="write all measurements to PATH")
    p.add_argument("--device", choices=["cpu", "cuda", "all"], default="all")
    p.add_argument("--threads", default="1,all", help="comma list of thread counts; 'all' = every core")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per measurement")
    p.add_argument("--slow", type=float, default=2.0, help="a warm-up slower than this is the only sample")
    p.add_argument("--max-baseline-gb", type=float, default=2.0,
                   help="skip dense baselines whose distance matrix would exceed this")
    p.add_argument("--allow-fallback", action="store_true",
                   help="time recon even without its compiled kernels (the header says so loudly)")
    p.add_argument("--only", default=None, help="comma list of ops to run: fps, knn, chamfer")
    p.add_argument("--impls", default=None,
                   help="comma list of implementations to time (e.g. recon,fpsample); default all")
    args = p.parse_args(argv)

    shapes = QUICK if args.quick else FULL
    if args.only:
        keep = set(args.only.split(","))
        shapes = {k: (v if k in keep else []) for k, v in shapes.items()}
    repeats = args.repeats or (3 if args.quick else 5)
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    if "cuda" in devices and not torch.cuda.is_available():
        devices.remove("cuda")
        print("CUDA: skipped (no CUDA device)")
    all_threads = torch.get_num_threads()
    thread_list = sorted({all_threads if t == "all" else int(t) for t in args.threads.split(",")})

    info = ops.backend_info()
    print(HEADER)
    print(f"recon.ops backend: {info}")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {all_threads} threads")
    records, skipped = [], {}
    header = f"{'op':<16} {'case':<28} {'dev':<4} {'thr':>3}  {'impl':<14} {'median':>10} {'n':>2} {'ratio':>8}"
    print(header)
    print("-" * len(header))
    for device in devices:
        for threads in (thread_list if device == "cpu" else [all_threads]):
            torch.set_num_threads(threads)
            for op, case, base, impls, skip in cases(shapes, device, args.max_baseline_gb):
                for name, why in skip.items():
                    skipped.setdefault(f"{op} | {case} | {name}", why)
                times = {}
                if args.impls:
                    impls = {k: v for k, v in impls.items() if k in args.impls.split(",")}
                for name, fn in impls.items():
                    t, n = timeit(fn, device, repeats, args.slow)
                    times[name] = (t, n)
                for name, (t, n) in times.items():
                    ratio = times[base][0] / t if base in times else None
                    rec = {"op": op, "case": case, "device": device, "threads": threads, "impl": name,
                           "seconds": t, "samples": n, "baseline": base, "speedup_vs_baseline": ratio}
                    records.append(rec)
                    r = f"{ratio:7.1f}x" if ratio is not None else "      -"
                    ms = f"{t * 1e3:9.2f}ms" if t < 10 else f"{t:9.2f}s "
                    print(f"{op:<16} {case:<28} {device:<4} {threads:>3}  {name:<14} {ms:>10} {n:>2} {r}")
    torch.set_num_threads(all_threads)

    memory = {}
    big = max(shapes["chamfer"], key=lambda s: s[0] * s[1] * s[2], default=None)
    if big is not None:
        for device in devices:
            for bwd in (False, True):
                key = f"chamfer {'fwd+bwd' if bwd else 'fwd'} B={big[0]}, {big[1]} vs {big[2]} ({device})"
                memory[key] = peak_memory(*big, device, bwd)
        print("\npeak extra memory of recon's Chamfer (fresh process, resident set sampled during the call):")
        for k, v in memory.items():
            print(f"  {k}: {v}")
    if skipped:
        print("\nskipped:")
        for k, v in skipped.items():
            print(f"  {k}: {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "threads_all": all_threads, "backend": info,
                       "quick": args.quick, "records": records, "skipped": skipped,
                       "peak_memory": memory, "machine": platform.platform()}, f, indent=1)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
