"""Runtime of the evaluation protocols (issue #7) on this CPU: measured rates, extrapolated totals.

    python benchmarks/eval_runtime.py --json eval_runtime.json          # rates, 2 threads (~5-7 min)
    python benchmarks/eval_runtime.py --threads 1 2 --only svm_features zeroshot test fewshot text svm_fit \
        --json eval_runtime.json                          # the docs/eval.md table (~40 min)
    python benchmarks/eval_runtime.py --synthetic /tmp/evalrt --only none           # end-to-end commands

Part 1 (rates): the official full-size models with random weights (timing does not depend on the
weights), batch 32, each protocol's own code path:

* ``svm_features``: ``recon.eval.svm.extract_features`` of ``recon_base`` on 1024-point clouds
  (ModelNet's stored FPS order makes the FPS a no-op there, as in ``recon svm``).
* ``zeroshot_<grouping>``: ``recon.eval.zeroshot.evaluate`` of ``recon_base_zeroshot`` (FPS to
  ``point_all`` then a random subset, both queries projected, cosine arg-max) for the three official
  groupings 1024x64x32 (ModelNet), 2048x64x64 (hardest, objbg), 2048x32x128 (objonly).
* ``vote_modelnet`` / ``vote_scan``: ``recon.engine.evaluate.vote_evaluate`` with its 10 votes
  (ModelNet: 8192 stored points, FPS 1200, 1024 per vote, scale transform; ScanObjectNN: 2048
  points, 128 groups of 32, rotation) and ``single_modelnet`` / ``single_scan``: the single pass
  ``recon test`` runs before voting (also the per-epoch evaluation of finetuning).
* ``step_full`` / ``step_linear`` / ``step_mlp3``: one few-shot train step (8192 stored points -> FPS
  1200 -> 1024, rotation, CE, backward, grad clip 10, AdamW) of the configs ``fewshot/<head>``
  (``linear``/``mlp3`` = frozen backbone: the gradient still flows back through every block to
  ``cls_token``).
* ``text_prompts``: the CLIP ViT-B/32 text tower (random weights) over the 60 prompts of one class,
  i.e. ``recon.eval.zeroshot.class_text_features`` for one class (zero-shot encodes 60 x classes).
* ``svm_fit``: ``LinearSVC(C=0.075)`` fit + predict on random class-structured features of
  ModelNet40's sizes (9843 / 2468, 40 classes, 2C = 768-d for Base).

Each rate is reported as wall-clock and CPU-time seconds per batch (CPU time = user + system of this
process, steadier than wall time on a shared machine) with the 1-minute load average.  Part 2
(``extrapolate``) multiplies the measured per-sample cost by each real dataset's sample count.
Part 3 (``--synthetic DIR``) times the CLI commands end to end on the built-in synthetic set with
the demo-size model.  Prints tables, writes JSON; never fails on speed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch
from _recon import child_env, require_compiled

BATCH = 32

# Real split sizes (train / test) of the datasets the protocols run on.
SIZES = {
    "modelnet40": (9843, 2468), "modelnet10": (3991, 908), "scan_hardest": (11416, 2882),
    "scan_objbg": (2309, 581), "scan_objonly": (2309, 581),
}
CLASSES = {"modelnet40": 40, "modelnet10": 10, "scan_hardest": 15, "scan_objbg": 15, "scan_objonly": 15}
ZS_KEY = {"modelnet40": "zeroshot_1024x64x32", "modelnet10": "zeroshot_1024x64x32",
          "scan_hardest": "zeroshot_2048x64x64", "scan_objbg": "zeroshot_2048x64x64",
          "scan_objonly": "zeroshot_2048x32x128"}
FEWSHOT_EPOCHS, FEWSHOT_FOLDS, FEWSHOT_WAYS, FEWSHOT_SHOTS = 151, 10, (5, 10), (10, 20)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system


def timed(fn, reps: int, warmup: int = 1) -> dict:
    """Seconds per call of ``fn`` (wall and CPU), after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    w0, c0, l0 = time.perf_counter(), _cpu(), os.getloadavg()[0]
    for _ in range(reps):
        fn()
    wall, cpu = (time.perf_counter() - w0) / reps, (_cpu() - c0) / reps
    return {"wall_s": wall, "cpu_s": cpu, "reps": reps, "load_before": l0, "load_after": os.getloadavg()[0]}


def _clouds(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(BATCH, n, 3, generator=g) * 2 - 1


def _labels(k: int = 40) -> torch.Tensor:
    return torch.arange(BATCH) % k


def bench_svm_features(reps: int) -> dict:
    from recon.eval.svm import extract_features
    from recon.models import create_model

    torch.manual_seed(0)
    model = create_model("recon_base", num_classes=40, npoints=1024, num_group=64, group_size=32)
    batch = [(_clouds(1024), _labels())]
    out = timed(lambda: extract_features(model, batch, 1024), reps)
    out["feature_dim"] = int(extract_features(model, [(_clouds(1024)[:2], _labels()[:2])], 1024)[0].shape[1])
    return out


def bench_zeroshot(grouping: tuple[int, int, int], reps: int) -> dict:
    from recon.data.transforms import default_point_all
    from recon.eval.zeroshot import evaluate
    from recon.models import create_model

    npoints, num_group, group_size = grouping
    torch.manual_seed(0)
    model = create_model("recon_base_zeroshot", npoints=npoints, num_group=num_group, group_size=group_size)
    # ModelNet files hold the FPS-ordered prefix point_all; ScanObjectNN always yields its 2048 points
    n_in = default_point_all(npoints) if npoints == 1024 else 2048
    batch = [(_clouds(n_in), _labels(15))]
    text = torch.randn(40, 512)
    gen = torch.Generator().manual_seed(0)
    return timed(lambda: evaluate(model, batch, text, 0.25, npoints, generator=gen), reps)


def _classifier(cfg):
    from recon.engine.builders import build_model

    torch.manual_seed(0)
    return build_model(cfg.model)


def bench_test_paths(name: str, reps: int) -> dict:
    """``recon test``'s two passes: single pass (FPS to npoints) and the 10-vote pass."""
    from recon.config import load_config
    from recon.engine.builders import build_transform
    from recon.engine.evaluate import evaluate, vote_evaluate

    cfg = load_config("finetune/modelnet" if name == "modelnet" else "finetune/scan_hardest")
    model = _classifier(cfg).eval()
    n_in = 8192 if name == "modelnet" else 2048
    loader = [{"points": _clouds(n_in), "label": _labels(int(cfg.model.num_classes))}]
    npoints = int(cfg.train.npoints)
    point_all = int(cfg.eval.get("point_all") or cfg.train.point_all)
    tf = build_transform(cfg.eval.get("vote_transform"))
    votes = int(cfg.eval.votes)
    single = timed(lambda: evaluate(model, loader, "cpu", npoints), reps)
    vote = timed(lambda: vote_evaluate(model, loader, "cpu", npoints, point_all, votes=votes, transform=tf), 1,
                 warmup=0)
    vote["votes"] = votes
    return {f"single_{name}": single, f"vote_{name}": vote}


def bench_fewshot_step(head: str, reps: int) -> dict:
    from recon.config import load_config
    from recon.engine.builders import build_transform
    from recon.engine.optim import build_optimizer
    from recon.engine.train_finetune import classification_step

    cfg = load_config(f"fewshot/{head}")
    model = _classifier(cfg).train()
    opt = build_optimizer(model, cfg.optimizer)
    step = classification_step(int(cfg.train.npoints), cfg.train.get("point_all"), build_transform(cfg.train.transform))
    batch = {"points": _clouds(8192), "label": _labels(5)}
    clip = float(cfg.train.grad_clip)

    def one():
        out = step(model, batch)
        out["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    res = timed(one, reps)
    res["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return res


def bench_text(reps: int) -> dict:
    import warnings

    from recon.eval.zeroshot import class_text_features
    from recon.teachers import build_text_teacher

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = build_text_teacher("ViT-B-32", None)
    res = timed(lambda: class_text_features(teacher.encode, ["airplane"]), reps)
    res["prompts"] = 60
    return res


def bench_svm_fit(n_train: int, n_test: int, k: int, dim: int, seed: int = 0) -> dict:
    """LinearSVC on random features with class structure (class means + noise), ModelNet40's sizes."""
    from recon.eval.svm import fit_and_score

    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, dim)).astype(np.float32)
    ytr, yte = rng.integers(0, k, n_train), rng.integers(0, k, n_test)
    xtr = means[ytr] + 2.0 * rng.normal(size=(n_train, dim)).astype(np.float32)
    xte = means[yte] + 2.0 * rng.normal(size=(n_test, dim)).astype(np.float32)
    w0, c0 = time.perf_counter(), _cpu()
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        acc = fit_and_score(xtr, ytr, xte, yte)
    return {"wall_s": time.perf_counter() - w0, "cpu_s": _cpu() - c0, "n_train": n_train, "n_test": n_test,
            "classes": k, "dim": dim, "acc_on_random_features": acc, "load_after": os.getloadavg()[0],
            "converged": not any("converge" in str(w.message).lower() for w in caught)}


ALL = ("svm_features", "zeroshot", "test", "fewshot", "text", "svm_fit")


class _Printing(dict):
    """A dict that prints each measurement as it is stored (the whole run takes minutes)."""

    def __init__(self, threads: int):
        super().__init__()
        self.threads = threads

    def __setitem__(self, k, v):
        super().__setitem__(k, v)
        print(f"  [{self.threads} thread{'s' if self.threads > 1 else ''}] {k:<22} wall {v['wall_s']:7.2f} s  "
              f"CPU {v['cpu_s']:7.2f} s per batch  (load {v['load_after']:.1f})", flush=True)

    def update(self, other):
        for k, v in other.items():
            self[k] = v


def measure(threads: list[int], reps: int, only: list[str]) -> dict:
    rates = {}
    for t in threads:
        torch.set_num_threads(t)
        r = _Printing(t)
        if "svm_features" in only:
            r["svm_features"] = bench_svm_features(reps)
        if "zeroshot" in only:
            for g in ((1024, 64, 32), (2048, 64, 64), (2048, 32, 128)):
                r["zeroshot_" + "x".join(map(str, g))] = bench_zeroshot(g, reps)
        if "test" in only:
            r.update(bench_test_paths("modelnet", reps))
            r.update(bench_test_paths("scan", reps))
        if "fewshot" in only:
            for head in ("full", "linear", "mlp3"):
                r[f"step_{head}"] = bench_fewshot_step(head, reps)
        if "text" in only:
            r["text_prompts"] = bench_text(reps)
        r = dict(r)
        rates[str(t)] = r
    torch.set_num_threads(max(threads))
    return rates


def _per_sample(rates: dict, key: str, field: str) -> float | None:
    v = rates.get(key)
    return None if v is None else v[field] / BATCH


def extrapolate(rates: dict, svm_fit: dict | None, field: str = "cpu_s") -> list[dict]:
    """Per-protocol totals on the real datasets: (seconds per sample measured) x (sample count).

    ``field`` is ``cpu_s`` (CPU seconds: what the job costs) or ``wall_s`` (as measured under the
    load at the time).
    """
    rows = []

    def add(protocol, dataset, seconds, formula):
        if seconds is not None:
            rows.append({"protocol": protocol, "dataset": dataset, "seconds": seconds, "hours": seconds / 3600,
                         "formula": formula})

    ps = lambda k: _per_sample(rates, k, field)  # noqa: E731
    if ps("svm_features") is not None:
        n = sum(SIZES["modelnet40"])
        fit = svm_fit[field] if svm_fit else 0.0
        add("svm", "modelnet40", ps("svm_features") * n + fit,
            f"svm_features/sample x {n} + LinearSVC fit {fit:.1f} s")
    if ps("text_prompts") is not None:
        for ds in SIZES:
            zk = ZS_KEY[ds]
            if ps(zk) is None:
                continue
            text = rates["text_prompts"][field] * CLASSES[ds]
            n_test, n_all = SIZES[ds][1], sum(SIZES[ds])
            add("zeroshot", ds, ps(zk) * n_test + text,
                f"{zk}/sample x {n_test} test + text 60 prompts x {CLASSES[ds]} classes")
            add("zeroshot --merge-train", ds, ps(zk) * n_all + text,
                f"{zk}/sample x {n_all} train+test + text")
    for ds in SIZES:
        kind = "modelnet" if ds.startswith("modelnet") else "scan"
        if ps(f"vote_{kind}") is None:
            continue
        n = SIZES[ds][1]
        one = ps(f"single_{kind}") + ps(f"vote_{kind}")
        add("test (1 pass + 10 votes)", ds, one * n, f"(single_{kind} + vote_{kind})/sample x {n}")
        add("test --official-voting (299 passes)", ds, (ps(f"single_{kind}") + 299 * ps(f"vote_{kind}")) * n,
            f"(single + 299 x vote_{kind})/sample x {n}")
    if ps("vote_modelnet") is not None:
        for head in ("full", "linear", "mlp3"):
            if ps(f"step_{head}") is None:
                continue
            total_last = total_official = 0.0
            for way in FEWSHOT_WAYS:
                for shot in FEWSHOT_SHOTS:
                    n_train, n_test = way * shot, 20 * way
                    # the train loader drops the last partial batch (as the official one): floor(n / 32) steps
                    train = rates[f"step_{head}"][field] * (n_train // BATCH) * FEWSHOT_EPOCHS
                    final = (ps("single_modelnet") + ps("vote_modelnet")) * n_test
                    per_epoch_eval = ps("single_modelnet") * n_test * (FEWSHOT_EPOCHS - 1)
                    total_last += FEWSHOT_FOLDS * (train + final)
                    total_official += FEWSHOT_FOLDS * (train + final + per_epoch_eval)
            add(f"fewshot {head}, best_on=last (default)", "modelnet40 few-shot grid", total_last,
                "sum over 5/10-way x 10/20-shot of 10 folds x (step x floor(way*shot/32) x 151 + final test/sample x 20*way)")
            add(f"fewshot {head}, --official-selection", "modelnet40 few-shot grid", total_official,
                "as above + single_modelnet/sample x 20*way x 150 per-epoch test evaluations")
    return rows


def run_synthetic(root: str, python: str, only: str | None = None) -> list[dict]:
    """Time the CLI commands end to end on the synthetic set with the demo-size model."""
    import shutil

    os.makedirs(root, exist_ok=True)
    synth50, synth100 = os.path.join(root, "synth50"), os.path.join(root, "synth100")
    demo = ["depth=4", "embed_dim=192", "num_heads=3"]
    data50 = ["--data-args", "num_per_class=50", "num_classes=12"]
    ckpt = os.path.join(root, "zeroshot_demo.safetensors")
    code_gen = ("import sys; from recon.data import SyntheticShapes as S\n"
                "for s in ('train', 'test'): S(sys.argv[1], split=s, npoints=2048, num_per_class=int(sys.argv[2]))")
    code_ckpt = ("import sys, torch; from safetensors.torch import save_file; from recon.models import create_model\n"
                 "torch.manual_seed(0); m = create_model('recon_base_zeroshot', depth=4, embed_dim=192, num_heads=3)\n"
                 "save_file({k: v.contiguous() for k, v in m.state_dict().items()}, sys.argv[1])")
    cli = [python, "-m", "recon.cli"]
    jobs = [
        ("generate synthetic set, 50/class", [python, "-c", code_gen, synth50, "50"]),
        ("generate synthetic set, 100/class (few-shot reads the default set)", [python, "-c", code_gen, synth100, "100"]),
        ("recon svm (recon_tiny depth 4, FPS-256, 16x16 groups)",
         cli + ["svm", "--dataset", "synthetic", "--root", synth50, "--model", "recon_tiny", "--npoints", "256",
                "--cache-dir", "", "--model-args", *demo, "num_group=16", "group_size=16", *data50]),
        ("write a random demo-size zero-shot checkpoint", [python, "-c", code_ckpt, ckpt]),
        ("recon zeroshot (depth 4 C=192, 1024x64x32, CLIP ViT-B/32 text, 12 classes)",
         cli + ["zeroshot", "--dataset", "synthetic", "--root", synth50, "--checkpoint", ckpt,
                "--model-args", *demo, *data50]),
        ("recon visualize (recon_tiny depth 4, 256 points)",
         cli + ["visualize", "--dataset", "synthetic", "--root", synth50, "--model", "recon_tiny", "--npoints", "256",
                "--group-size", "16", "--out", os.path.join(root, "attention.png"), "--model-args", *demo, *data50]),
        ("recon fewshot: one fold, 5-way 10-shot, 40 epochs, demo model",
         cli + ["fewshot", "--dataset", "synthetic", "--root", synth100, "--ways", "5", "--shots", "10", "--folds", "0",
                "--out", os.path.join(root, "fewshot"), "model.name=recon_tiny", "+model.depth=4",
                "model.npoints=256", "model.num_group=16", "model.group_size=16", "train.npoints=256",
                "train.point_all=300", "train.epochs=40", "scheduler.t_initial=40", "scheduler.warmup_epochs=4",
                "log.every=0"]),
    ]
    if not only or only in "recon fewshot":
        shutil.rmtree(os.path.join(root, "fewshot"), ignore_errors=True)  # a finished fold would be skipped (resume)
    env = child_env()  # the commands import the recon this process measures
    rows = []
    for name, cmd in jobs:
        if only and only not in name:
            continue
        t0, c0, l0 = time.perf_counter(), os.times(), os.getloadavg()[0]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        c1 = os.times()
        row = {"command": name, "argv": " ".join(cmd[1:]) if cmd[0] == python else " ".join(cmd),
               "wall_s": time.perf_counter() - t0,
               "cpu_s": (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system),
               "rc": proc.returncode, "load_before": l0, "load_after": os.getloadavg()[0],
               "output_tail": (proc.stdout + proc.stderr)[-600:]}
        print(f"  {name:<70} wall {row['wall_s']:7.1f} s  CPU {row['cpu_s']:7.1f} s  rc {proc.returncode}  "
              f"(load {l0:.1f} -> {row['load_after']:.1f})", flush=True)
        if proc.returncode:
            print(row["output_tail"], file=sys.stderr)
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[2],
                   help="thread counts to measure (docs/eval.md: --threads 1 2, ~11 min)")
    p.add_argument("--reps", type=int, default=1, help="timed batches per measurement (after one warm-up)")
    p.add_argument("--only", nargs="+", default=[k for k in ALL if k != "svm_fit"], choices=list(ALL) + ["none"],
                   help="which rates to measure; svm_fit (LinearSVC at ModelNet40 size, ~14 CPU-min) is opt-in")
    p.add_argument("--synthetic", default=None, metavar="DIR", help="also time the CLI commands end to end here")
    p.add_argument("--synthetic-only", default=None, metavar="WORD",
                   help="run only the end-to-end jobs whose name contains WORD (the set must exist already)")
    p.add_argument("--json", default=None)
    a = p.parse_args()
    print(require_compiled())
    from recon.ops import backend_info

    res = {"date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()), "torch": torch.__version__,
           "cpus": os.cpu_count(), "recon_ops_compiled": bool(backend_info()["compiled"]), "batch": BATCH}
    only = [o for o in a.only if o != "none"]
    rate_kinds = [o for o in only if o != "svm_fit"]
    if rate_kinds:
        print("rates (batch 32, full-size models, random weights):", flush=True)
        res["rates"] = measure(a.threads, a.reps, rate_kinds)
    if "svm_fit" in only:
        dim = 2 * 384
        res["svm_fit"] = bench_svm_fit(*SIZES["modelnet40"], 40, dim)
        s = res["svm_fit"]
        print(f"  LinearSVC fit+predict ModelNet40 sizes ({dim}-d): wall {s['wall_s']:.1f} s CPU {s['cpu_s']:.1f} s "
              f"converged {s['converged']}", flush=True)
    if "rates" in res:
        res["extrapolated"] = {}
        for t, rates in res["rates"].items():
            for field in ("cpu_s", "wall_s"):
                rows = extrapolate(rates, res.get("svm_fit"), field)
                res["extrapolated"][f"{t}threads_{field}"] = rows
        best = res["rates"][str(max(a.threads))]
        print(f"\nextrapolated to the real datasets ({max(a.threads)} threads, CPU time and wall time as measured):")
        wall = {(r["protocol"], r["dataset"]): r for r in extrapolate(best, res.get("svm_fit"), "wall_s")}
        for r in extrapolate(best, res.get("svm_fit"), "cpu_s"):
            w = wall[(r["protocol"], r["dataset"])]
            print(f"  {r['protocol']:<40} {r['dataset']:<26} CPU {r['hours']:8.2f} h   wall {w['hours']:8.2f} h")
    if a.synthetic:
        print("\nend to end on the synthetic set (demo-size model):", flush=True)
        res["synthetic"] = run_synthetic(a.synthetic, sys.executable, a.synthetic_only)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
