"""Parameters, FLOPs and throughput of the ReCon family against the single-stream baseline.

    python benchmarks/flops.py                                  # CPU, 2048 points, 128 groups, 15 classes
    python benchmarks/flops.py --quick                          # small clouds, 1 repeat: a smoke run
    python benchmarks/flops.py --device cuda --batch-size 32 --json flops.json --plot flops.png

Columns: params (M); GFLOPs (FlopCounterMode: 2 per multiply-add, every matmul/conv, attention
included); GMACs (= GFLOPs / 2); "paper conv." = GMACs without the attention matmuls, the
convention of the paper's #F column (fvcore/thop style); the paper's own figures; forward and
forward+backward throughput (samples/s, median over repeats after warm-up) and each model's
ratio to pointmae_base. Speeds are measured, never asserted. See docs/models.md.

Time: the full default run takes about 8 minutes on 2 CPU cores. --quick (512 points, batch 2, one
warm-up and one timed round instead of 2 + 5) does a small fraction of that work: a FLOP count at a
quarter of the points, and timing calls on 1/32 of the points. Progress bars (FLOP counts, forward,
forward+backward) show which model is being counted or timed.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from tqdm.auto import tqdm

from _recon import require_compiled

HEADER = require_compiled(allow_fallback="--allow-fallback" in sys.argv)

from recon.models import count_flops, count_params, create_model, model_info  # noqa: E402

MODELS = ("pointmae_base", "recon_tiny", "recon_small", "recon_base")
BASELINE = "pointmae_base"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved_medians(fns: dict, device, warmup: int, repeats: int, desc: str = "timing") -> dict:
    """Median seconds per call of each fn, timed round-robin so that load changes on a shared
    machine hit every model alike (a ratio is then meaningful even when absolute speed drifts)."""
    times = {k: [] for k in fns}
    with tqdm(total=(warmup + repeats) * len(fns), desc=desc, leave=False) as bar:
        for r in range(warmup + repeats):
            for k, fn in fns.items():
                bar.set_postfix_str(f"{k} ({'warm-up' if r < warmup else 'timed'})")
                _sync(device)
                t0 = time.perf_counter()
                fn()
                _sync(device)
                if r >= warmup:
                    times[k].append(time.perf_counter() - t0)
                bar.update()
    return {k: statistics.median(v) for k, v in times.items()}


def _clouds(batch: int, npoints: int, device, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(batch, npoints, 3, generator=g)
    pts = pts / pts.norm(dim=-1, keepdim=True).clamp_min(1e-6) * torch.rand(batch, npoints, 1, generator=g) ** (1 / 3)
    return pts.to(device)


def build(name: str, args, device: torch.device):
    """The model ``name`` at the benchmark setting and its static row (params, FLOPs, paper)."""
    num_group = args.num_group or args.npoints // 16
    model = create_model(name, num_classes=args.num_classes, npoints=args.npoints, num_group=num_group).to(device)
    model.eval()
    flops = count_flops(model, _clouds(1, args.npoints, device))
    info = model_info(name)
    paper_setting = args.npoints == 2048 and num_group == 128
    return model, {
        "model": name,
        "params_m": count_params(model) / 1e6,
        "gflops": flops.flops / 1e9,
        "gmacs": flops.macs / 1e9,
        "paper_conv_gmacs": flops.paper_macs / 1e9,
        "paper_params_m": info.paper.get("params_m"),
        "paper_gmacs": info.paper.get("gmacs_2048") if paper_setting else None,
    }


def time_models(models: dict, rows: dict, args, device: torch.device) -> None:
    """Add forward and forward+backward throughput (samples/s) to ``rows``."""
    x = _clouds(args.batch_size, args.npoints, device, seed=1)
    for m in models.values():
        m.eval()
    with torch.no_grad():
        t = _interleaved_medians({k: (lambda m=m: m(x)) for k, m in models.items()}, device, args.warmup, args.repeats,
                                 "forward")
    for k in models:
        rows[k]["fwd_samples_s"] = args.batch_size / t[k]
    if args.no_backward:
        return
    labels = torch.randint(args.num_classes, (args.batch_size,), device=device)

    def step(m):
        m.zero_grad(set_to_none=True)
        F.cross_entropy(m(x), labels).backward()

    for m in models.values():
        m.train()
    t = _interleaved_medians({k: (lambda m=m: step(m)) for k, m in models.items()}, device, args.warmup, args.repeats,
                             "forward+backward")
    for k in models:
        rows[k]["fwdbwd_samples_s"] = args.batch_size / t[k]


def _fmt(v, spec):
    return "—" if v is None else format(v, spec)


def print_table(rows: list, baseline: dict | None) -> None:
    hdr = (f"{'model':<14}{'params M':>9}{'paper':>7}{'GFLOPs':>9}{'GMACs':>8}{'paper conv.':>12}{'paper #F':>9}"
           f"{'fwd /s':>9}{'ratio':>7}{'fwd+bwd /s':>11}{'ratio':>7}")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        fr = r["fwd_samples_s"] / baseline["fwd_samples_s"] if baseline else None
        br = (r["fwdbwd_samples_s"] / baseline["fwdbwd_samples_s"]
              if baseline and "fwdbwd_samples_s" in r else None)
        r["fwd_ratio"], r["fwdbwd_ratio"] = fr, br
        print(f"{r['model']:<14}{r['params_m']:>9.3f}{_fmt(r['paper_params_m'], '.1f'):>7}{r['gflops']:>9.3f}"
              f"{r['gmacs']:>8.3f}{r['paper_conv_gmacs']:>12.3f}{_fmt(r['paper_gmacs'], '.1f'):>9}"
              f"{r['fwd_samples_s']:>9.2f}{_fmt(fr, '.3f'):>7}{_fmt(r.get('fwdbwd_samples_s'), '.2f'):>11}"
              f"{_fmt(br, '.3f'):>7}")


def plot(rows: list, path: str) -> None:
    from recon._optional import require

    matplotlib = require("matplotlib", purpose="the --plot chart")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["model"] for r in rows]
    panels = [("gflops", "GFLOPs (forward)"), ("params_m", "parameters (M)"), ("fwd_samples_s", "forward samples/s")]
    if all("fwdbwd_samples_s" in r for r in rows):
        panels.append(("fwdbwd_samples_s", "fwd+bwd samples/s"))
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.5))
    for ax, (key, title) in zip(axes, panels):
        ax.bar(names, [r[key] for r in rows], color=["#888888"] + ["#3b75af"] * (len(rows) - 1))
        ax.set_title(title)
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot written to {path}")


def main(argv=None) -> list:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="samples per throughput call (default 16)")
    p.add_argument("--npoints", type=int, default=2048, help="points per cloud (default 2048, the paper's setting)")
    p.add_argument("--num-group", type=int, default=None, help="groups (default npoints // 16)")
    p.add_argument("--num-classes", type=int, default=15, help="classes of the head (default 15, ScanObjectNN)")
    p.add_argument("--models", nargs="+", default=list(MODELS), help=f"registered names (default {' '.join(MODELS)})")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (default 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported (default 5)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on CPU")
    p.add_argument("--no-backward", action="store_true", help="skip the forward+backward timing")
    p.add_argument("--json", metavar="PATH", help="write the rows and the setting as JSON")
    p.add_argument("--plot", metavar="PATH", help="write a bar chart (needs recon[eval]: matplotlib)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 512 points, batch 2, 1 warm-up and 1 timed round (under a minute)")
    p.add_argument("--allow-fallback", action="store_true",
                   help="time recon even without its compiled kernels (the header says so loudly)")
    args = p.parse_args(argv)
    if args.quick:
        args.npoints, args.batch_size, args.warmup, args.repeats = 512, 2, 1, 1
    print(HEADER)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda given but torch.cuda.is_available() is False")
    if args.threads:
        torch.set_num_threads(args.threads)
    import recon.ops

    ops_impl = getattr(recon.ops.furthest_point_sample, "__module__", "?")
    setting = {
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(device),
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "npoints": args.npoints,
        "num_group": args.num_group or args.npoints // 16,
        "num_classes": args.num_classes,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "ops": ops_impl,
    }
    print("setting: " + ", ".join(f"{k}={v}" for k, v in setting.items()))
    models, by_name = {}, {}
    for name in tqdm(args.models, desc="params + FLOPs", leave=False):
        models[name], by_name[name] = build(name, args, device)
    time_models(models, by_name, args, device)
    rows = list(by_name.values())
    baseline = next((r for r in rows if r["model"] == BASELINE), None)
    print_table(rows, baseline)
    print("GFLOPs: FlopCounterMode (2 FLOPs per multiply-add, attention matmuls included); GMACs = GFLOPs/2;\n"
          "paper conv. = GMACs without the attention matmuls, as the paper's #F (fvcore/thop) column;\n"
          "ratio = throughput / pointmae_base throughput.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"setting": setting, "rows": rows}, f, indent=2)
        print(f"json written to {args.json}")
    if args.plot:
        plot(rows, args.plot)
    return rows


if __name__ == "__main__":
    main()
