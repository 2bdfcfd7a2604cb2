"""Samples/s of one full training step (forward, loss, backward, AdamW step) of the zoo's classifiers.

    python benchmarks/train_step.py                     # ReCon-Base/Small/Tiny + Point-MAE, batch 16 x 2048 points
    python benchmarks/train_step.py --quick             # a tiny smoke run (CI): ReCon-Tiny, batch 2 x 256 points
    python benchmarks/train_step.py --models recon_base --batch 32 --threads 1 2 --json out.json
    python benchmarks/train_step.py --engine --models recon_base --batch 32 --point-all 2400   # the engine's step

``--engine`` times the finetune loop's own step instead: ``recon.engine.train_finetune.classification_step``
(FPS of ``--point-all`` input points, the random ``--npoints`` subset, the rotation, cross-entropy),
``recon.engine.optim.build_optimizer`` (``--optimizer`` as ``optimizer.impl``; ``auto`` = fused) and,
the compiled rows (with or without ``--engine``) use ``recon.compile.compile_model`` as ``train.compile: true`` does.

Each row: one model at one thread count, run three ways: ``official`` (the released code's layout and
CPU-default AdamW re-expressed on recon's modules, benchmarks/_official_form.py: the official code itself
needs CUDA), recon ``eager`` and recon ``torch.compile``-d (fullgraph); the last column is the largest
logit difference from recon's eager forward (eval mode). For each, the median step time
over ``--steps`` timed steps after ``--warmup`` steps (compilation happens in the warm-up and is reported
apart). Eager rows also give the share of the step spent in each part of the model (forward of the
tokenizer, patch embedding, positional MLP, blocks, head), in backward and in the optimizer step,
measured with module hooks in a separate pass so the timed steps carry no hook overhead.
Full run on 2 CPU cores: about 50 minutes (4 models x 3 modes x 2 thread counts, cold compiles 2-3 minutes each);
--quick: under a minute.

It imports the INSTALLED recon (build it with ``pip install --no-build-isolation .``) and refuses to time
the pure-PyTorch fallback ops.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def _require_compiled() -> None:
    import recon.ops

    info = recon.ops.backend_info()
    if not info.get("compiled"):
        sys.exit("train_step.py: recon's compiled kernels are not importable "
                 f"({info.get('reason')}); this would time the pure-PyTorch fallback. "
                 "Install recon first: pip install --no-build-isolation .  (and run from outside the checkout "
                 "or with the checkout built in place)")


def _optimizer(model, impl: str):
    from recon.engine.optim import param_groups

    groups = param_groups(model, weight_decay=0.05, lr=1e-4, cls_lr_mult=10.0)
    kwargs = {"fused": True} if impl == "fused" else {"foreach": impl == "foreach"}
    return torch.optim.AdamW(groups, lr=1e-4, **kwargs)


def _autocast(amp: str):
    """``--amp bf16``: the forward under CPU bfloat16 autocast, as ``train.amp: bf16`` runs it."""
    import contextlib

    return torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16" else contextlib.nullcontext()


def _loss(model, batch, amp: str):
    """Forward + loss of one batch: cross-entropy of a classifier, or a pretraining model's own loss
    (reconstruction + teacher-feature regression) when the batch carries teacher features."""
    with _autocast(amp):
        if "img_feat" in batch:
            return model(batch["points"], img_feat=batch["img_feat"], text_feat=batch["text_feat"])["loss"].float()
        logits = model(batch["points"])
    return F.cross_entropy(logits.float(), batch["label"])


def _plain_step(amp: str):
    def step(model, opt, batch):
        loss = _loss(model, batch, amp)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return step


def _engine(model, impl: str, npoints: int, point_all: int, amp: str = "none"):
    from recon.engine.builders import build_transform
    from recon.engine.optim import build_optimizer
    from recon.engine.train_finetune import classification_step

    opt = build_optimizer(model, {"lr": 1e-4, "weight_decay": 0.05, "cls_lr_mult": 10.0,
                                  "impl": "auto" if impl == "auto" else impl})
    step_fn = classification_step(npoints, point_all, build_transform("rotate"))

    def step(run, opt_, batch):
        with _autocast(amp):
            loss = step_fn(run, batch)["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    return opt, step


def _part_shares(model, opt, batch, amp: str = "none", repeats: int = 3) -> tuple[dict, dict]:
    """Shares of one eager step per part (forward hooks on the model's direct children, backward, optimizer),
    and the blocks' forward split by sublayer (norms, attention, MLP of either stream; summed over blocks)."""
    spent: dict = {}
    starts: dict = {}
    inner: dict = {}
    hooks = []
    for block in (m for m in model.modules() if type(m).__name__.endswith("Block")):
        for sub, child in block.named_children():
            if sub == "drop_path":
                continue
            hooks.append(child.register_forward_pre_hook(
                lambda m, a, n=sub: starts.__setitem__(("inner", n), time.perf_counter())))
            hooks.append(child.register_forward_hook(
                lambda m, a, o, n=sub: inner.__setitem__(n, inner.get(n, 0.0) + time.perf_counter()
                                                         - starts[("inner", n)])))
    parts = list(model.named_children())
    if hasattr(model, "MAE_encoder"):  # pretraining calls the backbone's parts, not the backbone itself
        parts = [(n, c) for n, c in parts if n != "MAE_encoder"]
        parts += [(f"encoder.{n}", c) for n, c in model.MAE_encoder.named_children()]
    for name, child in parts:
        hooks.append(child.register_forward_pre_hook(lambda m, a, n=name: starts.__setitem__(n, time.perf_counter())))
        hooks.append(child.register_forward_hook(
            lambda m, a, o, n=name: spent.__setitem__(n, spent.get(n, 0.0) + time.perf_counter() - starts[n])))
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            loss = _loss(model, batch, amp)
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            opt.step()
            opt.zero_grad(set_to_none=True)
            t3 = time.perf_counter()
            spent["(forward, rest)"] = spent.get("(forward, rest)", 0.0) + (t1 - t0)
            spent["backward"] = spent.get("backward", 0.0) + (t2 - t1)
            spent["optimizer"] = spent.get("optimizer", 0.0) + (t3 - t2)
    finally:
        for h in hooks:
            h.remove()
    children = sum(v for k, v in spent.items() if not k.startswith("(") and k not in ("backward", "optimizer"))
    spent["(forward, rest)"] -= children
    total = sum(spent.values())
    inner_total = sum(inner.values()) or 1.0
    return ({k: round(v / total, 4) for k, v in spent.items()},
            {k: round(v / inner_total, 4) for k, v in sorted(inner.items(), key=lambda kv: -kv[1])})


def measure(name: str, mode: str, threads: int, batch: int, npoints: int, steps: int, warmup: int,
            optimizer: str, seed: int = 0, engine: bool = False, point_all: int | None = None, amp: str = "none",
            task: str = "finetune") -> dict:
    from recon.models import create_model

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    if task == "pretrain":
        model = create_model(f"{name}_pretrain", npoints=npoints).train()
    else:
        model = create_model(name, num_classes=15, npoints=npoints).train()
    if mode == "official":
        from _official_form import official_form

        official_form(model)
        optimizer = "for"  # torch's CPU default, which the official code gets
    n_in = point_all if engine and point_all else npoints
    data = {"points": torch.rand(batch, n_in, 3) * 2 - 1, "label": torch.randint(0, 15, (batch,))}
    if task == "pretrain":  # cached teacher features, as the engine feeds them
        if getattr(model, "img_proj", None) is not None:
            data["img_feat"] = torch.randn(batch, model.img_proj.out_features)
            data["text_feat"] = torch.randn(batch, model.text_proj.out_features)
        else:  # Point-MAE: reconstruction only
            data["img_feat"] = data["text_feat"] = None
    if engine:
        opt, step = _engine(model, optimizer, npoints, n_in, amp)
    else:
        opt, step = _optimizer(model, optimizer), _plain_step(amp)
    run = model
    compile_s = 0.0
    if mode == "compiled":  # as train.compile runs it (recon/compile.py: options included)
        from recon.compile import compile_model

        run = compile_model(model, fullgraph=True)
        t0 = time.perf_counter()
        step(run, opt, data)
        compile_s = time.perf_counter() - t0
    for _ in range(warmup):
        step(run, opt, data)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step(run, opt, data)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    row = {"model": name, "mode": mode, "threads": threads, "batch": batch, "npoints": npoints,
           "optimizer": optimizer, "step_s": med, "samples_per_s": batch / med, "compile_s": compile_s,
           "steps": steps, "engine": engine, "point_all": n_in, "amp": amp, "task": task}
    if mode == "eager" and not engine:
        row["shares"], row["block_parts"] = _part_shares(model, opt, data, amp)
    if mode == "compiled" and task == "finetune":  # (pretraining draws its masks at random)
        row["max_abs_diff_vs_eager"] = _compiled_vs_eager(model, run, data["points"][:2], amp)
    if mode == "official" and task == "finetune":
        from _official_form import check_same_logits

        row["max_abs_diff_vs_eager"] = check_same_logits(name, npoints)
    return row


@torch.no_grad()
def _compiled_vs_eager(model, run, points, amp: str) -> float:
    """Max |logit difference| of the compiled and the eager forward (eval mode: no drop path, BN running
    statistics, so both see the same function; costs one more, forward-only, compilation)."""
    model.eval()
    try:
        with _autocast(amp):
            compiled = run(points).float()
            eager = type(model).forward(model, points).float()
    finally:
        model.train()
    return float((compiled - eager).abs().max())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["recon_base", "recon_small", "recon_tiny", "pointmae_base"])
    p.add_argument("--modes", nargs="+", default=None, choices=["official", "eager", "compiled"],
                   help="default: all three (--quick: eager only; compiling takes minutes on 2 cores). "
                        "official: the released code's layout and CPU-default AdamW on recon's modules "
                        "(benchmarks/_official_form.py; the official code itself needs CUDA)")
    p.add_argument("--threads", nargs="+", type=int, default=None, help="default: 1 and all cores")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--npoints", type=int, default=2048)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--optimizer", default="foreach", choices=["auto", "for", "foreach", "fused"],
                   help="AdamW implementation (official groups, lr x10 on 'cls' params; auto: fused where torch "
                        "has it)")
    p.add_argument("--task", default="finetune", choices=["finetune", "pretrain"],
                   help="pretrain: the <model>_pretrain model (60%% masked, cached teacher features), e.g. "
                        "--task pretrain --batch 128 --npoints 1024 for the official pretraining shape")
    p.add_argument("--amp", default="none", choices=["none", "bf16"],
                   help="bf16: the forward under CPU bfloat16 autocast (train.amp: bf16)")
    p.add_argument("--engine", action="store_true",
                   help="time the finetune loop's step (sampling, rotation, engine optimizer, recon.compile)")
    p.add_argument("--point-all", type=int, default=None,
                   help="--engine: input points per cloud, FPS-ed then subsampled to --npoints (official 2400)")
    p.add_argument("--quick", action="store_true", help="ReCon-Tiny, batch 2 x 256 points, 1 step, 1 thread, eager")
    p.add_argument("--json", default=None, help="write the rows here")
    args = p.parse_args(argv)
    _require_compiled()
    if args.quick:
        args.models, args.batch, args.npoints, args.steps, args.warmup = ["recon_tiny"], 2, 256, 1, 0
        args.threads = args.threads or [1]
        args.modes = args.modes or ["eager"]
    args.modes = args.modes or ["official", "eager", "compiled"]
    threads = args.threads or sorted({1, torch.get_num_threads()})
    try:
        from tqdm import tqdm
    except ImportError:  # progress is a nicety
        def tqdm(x, **_):
            return x
    cases = [(m, mode, t) for m in args.models for t in threads for mode in args.modes]
    rows = []
    if args.engine and args.task != "finetune":
        p.error("--engine times the finetune loop's step; drop --task pretrain")
    what = f"{args.task} model step"
    if args.engine:
        what = f"engine finetune step from {args.point_all or args.npoints} points"
    print(f"# torch {torch.__version__}, {what}, batch {args.batch} x {args.npoints} points, AdamW {args.optimizer}, amp {args.amp}")
    for name, mode, t in tqdm(cases, desc="train_step", unit="case"):
        rows.append(measure(name, mode, t, args.batch, args.npoints, args.steps, args.warmup, args.optimizer,
                            engine=args.engine, point_all=args.point_all, amp=args.amp,
                            task=args.task))
    print(f"{'model':<15} {'mode':<9} {'thr':>3} {'step s':>8} {'samples/s':>10} {'vs official':>11} "
          f"{'vs eager':>8} {'compile s':>9} {'max|d|':>8}")

    def base_of(mode):
        return {(r["model"], r["threads"]): r["step_s"] for r in rows if r["mode"] == mode}

    official, eager = base_of("official"), base_of("eager")
    for r in rows:
        key = (r["model"], r["threads"])
        ratios = [f"{b[key] / r['step_s']:.2f}x" if key in b else "-" for b in (official, eager)]
        diff = f"{r['max_abs_diff_vs_eager']:.1e}" if "max_abs_diff_vs_eager" in r else "-"
        print(f"{r['model']:<15} {r['mode']:<9} {r['threads']:>3} {r['step_s']:>8.3f} {r['samples_per_s']:>10.2f} "
              f"{ratios[0]:>11} {ratios[1]:>8} {r['compile_s']:>9.1f} {diff:>8}")
    for r in rows:
        if "shares" in r:
            parts = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["shares"].items())
            print(f"# {r['model']} eager, {r['threads']} thr: {parts}")
            inner = ", ".join(f"{k} {100 * v:.0f}%" for k, v in r["block_parts"].items())
            print(f"#   blocks' forward by sublayer: {inner}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
