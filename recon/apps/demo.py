"""``recon demo``: the whole ReCon pipeline on the built-in synthetic shapes, on a CPU.

1. generate the synthetic set (ShapeNet-55 layout, one rendered view per shape);
2. cache the features of the demo's small image and text teachers (random-init "tiny" towers:
   no weights can be downloaded here, so they stand in for ViT-B/16 and CLIP; a warning says so);
3. pretrain a reduced ReCon-Tiny (configs/demo/pretrain.yaml: fewer blocks and points than the
   official Tiny, said in the output) on the training split;
4. finetune it (configs/demo/finetune.yaml) and test with 10-vote voting on the test split;
5. finetune the same model from scratch with the same budget, for comparison;
6. linear-SVM probe (the paper's Table 10 protocol) of the pretrained features against the same
   model at random init, and one attention PNG (image and text queries over the local tokens).

Prints accuracies, timings and output paths; writes ``<out>/summary.json``.
"""

from __future__ import annotations

import os
import resource
import time

import torch

from recon.atomic import atomic_write_json
from recon.config import load_config

from ._args import positive

__all__ = ["run_demo"]

NAME = "demo"


def add_parser(sub):
    p = sub.add_parser(NAME, help="the whole pipeline on the built-in synthetic shapes (≈10 min on 2 cores)")
    p.add_argument("--out", default=os.path.join("runs", "demo"), help="output folder (default runs/demo)")
    p.add_argument("--epochs", type=int, default=None,
                   help="pretrain and finetune epochs (default: the demo configs'; 1 = a smoke run)")
    p.add_argument("--num-per-class", type=int, default=None, help="synthetic shapes per class and split")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(_run=run_demo)
    return p


def _describe(cfg) -> str:
    m = cfg.model
    return (f"{m.name} reduced for the demo: depth {m.depth} (official 12), embed {m.embed_dim}, "
            f"{m.npoints} points in {m.num_group} groups of {m.group_size} (official 1024 / 64 / 32)")


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _model_kwargs(cfg) -> dict:
    m = cfg.model
    return dict(depth=int(m.depth), embed_dim=int(m.embed_dim), num_heads=int(m.num_heads),
                num_group=int(m.num_group), group_size=int(m.group_size))


def _probe(pre_cfg, backbone: str, data_root: str, data_kwargs: dict, out: str) -> dict:
    """SVM accuracy of pretrained vs random-init features, and the attention PNG of one test shape."""
    from recon.data.registry import build_dataset
    from recon.eval.frozen import frozen_model
    from recon.eval.svm import pretrained_vs_random
    from recon.eval.visualize import visualize

    npoints, kw = int(pre_cfg.model.npoints), _model_kwargs(pre_cfg)
    svm = pretrained_vs_random("recon_tiny", backbone, data_root, "synthetic", npoints=npoints, model_kwargs=kw,
                               data_kwargs=data_kwargs, cache_dir=None, seed=int(pre_cfg.seed))
    test = build_dataset("synthetic", data_root, "test", npoints=1024, **data_kwargs)
    sample = test[0]
    model = frozen_model("recon_tiny", backbone, num_classes=len(test.classes), npoints=npoints, **kw)
    name = test.classes[int(sample["label"])]
    png = visualize(model, sample["points"][:, :3].numpy(), os.path.join(out, "attention.png"), npoints=npoints,
                    group_size=kw["group_size"], title=f"pretrained demo ReCon-Tiny, test shape 0 ({name})")
    return {"svm": svm, "attention_png": str(png)}


def run_demo(out: str = "runs/demo", epochs: int | None = None, num_per_class: int | None = None,
             seed: int = 0, threads: int | None = None, quiet: bool = False) -> dict:
    """Run the demo; returns the summary dict (also ``<out>/summary.json``).

    Args:
        out: output folder (data, teacher cache, runs, summary).
        epochs: pretrain and finetune epochs (default: the demo configs'); 1 is a smoke run.
        num_per_class: synthetic shapes per class (default: the config's).
        seed: seed of the data generation and of every run.
        threads: ``torch.set_num_threads`` (default: torch's choice).
        quiet: no progress bars.
    """
    positive(epochs, "--epochs")
    positive(num_per_class, "--num-per-class", 2)
    positive(threads, "--threads")
    if threads:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    out = os.path.abspath(out)
    os.makedirs(out, exist_ok=True)
    common = [f"seed={seed}", f"log.progress={not quiet}"]
    pre_cfg = load_config("demo/pretrain", common + [f"output_dir={os.path.join(out, 'pretrain')}"])
    ft_cfg = load_config("demo/finetune", common + [f"output_dir={os.path.join(out, 'finetune')}"])
    data_root = os.path.join(out, "data", "synthetic")
    npc = int(num_per_class or pre_cfg.data.args.num_per_class)
    for cfg in (pre_cfg, ft_cfg):
        cfg.data.root = data_root
        cfg.data.args.num_per_class = npc
        cfg.data.args.seed = seed
        if epochs is not None:
            cfg.train.epochs = epochs
            cfg.scheduler.t_initial = epochs
            cfg.scheduler.warmup_epochs = min(int(cfg.scheduler.warmup_epochs), max(epochs - 1, 0))
    if epochs is not None:
        ft_cfg.eval.start_epoch = min(int(ft_cfg.eval.start_epoch), epochs - 1)
    pre_cfg.teachers.cache = os.path.join(out, "data", "teacher_cache")
    timings = {}

    print(f"recon demo -> {out}")
    print(f"  model: {_describe(pre_cfg)}")
    print("  teachers: demo-size image/text towers with RANDOM weights (no downloads here); the real "
          "recipe uses ViT-B/16-in21k and CLIP ViT-B/32 (configs/pretrain/*.yaml)")

    t = time.perf_counter()
    from recon.data.synthetic import generate

    generate(data_root, num_per_class=npc, seed=seed, num_classes=int(pre_cfg.data.args.num_classes))
    timings["data"] = time.perf_counter() - t
    print(f"[demo] synthetic set ({npc} shapes/class) ready in {timings['data']:.1f}s: {data_root}")

    from recon.engine.train_finetune import finetune
    from recon.engine.train_pretrain import pretrain

    t = time.perf_counter()
    pre = pretrain(pre_cfg)
    timings["pretrain"] = time.perf_counter() - t  # includes building the teacher cache

    t = time.perf_counter()
    ft_cfg.pretrained = pre["checkpoints"]["backbone"]
    ft = finetune(ft_cfg)
    timings["finetune"] = time.perf_counter() - t

    t = time.perf_counter()
    scratch_cfg = load_config("demo/finetune", common + [f"output_dir={os.path.join(out, 'scratch')}"])
    scratch_cfg.data = ft_cfg.data
    scratch_cfg.train = ft_cfg.train
    scratch_cfg.scheduler = ft_cfg.scheduler
    scratch = finetune(scratch_cfg)
    timings["scratch"] = time.perf_counter() - t

    t = time.perf_counter()
    data_kwargs = {"num_per_class": npc, "seed": seed, "num_classes": int(pre_cfg.data.args.num_classes)}
    from recon._optional import available

    if available("sklearn") and available("matplotlib"):
        probe = _probe(pre_cfg, pre["checkpoints"]["backbone"], data_root, data_kwargs, out)
    else:  # a plain `pip install .` runs the demo; the probe's packages are the eval extra
        print("[demo] linear-SVM probe and attention PNG skipped: pip install 'recon[eval]' adds them")
        probe = {"svm": {"pretrained": None, "random": None}, "attention_png": None}
    timings["svm_and_attention"] = time.perf_counter() - t
    seconds = time.perf_counter() - t0

    summary = {
        "accuracy_vote": ft["accuracy_vote"],
        "accuracy": ft["accuracy"],
        "accuracy_scratch": scratch["accuracy_vote"],
        "accuracy_scratch_single": scratch["accuracy"],
        "svm_pretrained": probe["svm"]["pretrained"],
        "svm_random": probe["svm"]["random"],
        "seconds": seconds,
        # CPU time of this process: on a busy machine wall time overstates the demo's own cost
        "cpu_seconds": _cpu_seconds(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "timings": timings,
        "epochs": {"pretrain": int(pre_cfg.train.epochs), "finetune": int(ft_cfg.train.epochs)},
        "votes": ft["vote"]["votes"],
        "test_samples": ft["vote"]["total"],
        "model": _describe(pre_cfg),
        "threads": torch.get_num_threads(),
        "paths": {
            "data": data_root,
            "pretrain": pre["output_dir"],
            "pretrained_weights": pre["checkpoints"]["backbone"],
            "finetune": ft["output_dir"],
            "finetuned_model": ft["checkpoints"]["best"] or ft["checkpoints"]["last"],
            "scratch": scratch["output_dir"],
            "attention_png": probe["attention_png"],
        },
    }
    atomic_write_json(os.path.join(out, "summary.json"), summary, indent=2, default=float)
    print()
    print(f"recon demo finished in {seconds:.0f}s on {torch.get_num_threads()} threads "
          f"(data {timings['data']:.0f}s, pretrain {timings['pretrain']:.0f}s, finetune "
          f"{timings['finetune']:.0f}s, scratch {timings['scratch']:.0f}s, "
          f"SVM + attention {timings['svm_and_attention']:.0f}s)")
    print(f"  CPU time {summary['cpu_seconds']:.0f}s, 1-min load average {summary['load_average']:.1f} "
          f"(a load above the core count means other work shared the CPU: the wall time is pessimistic)")
    print(f"  test accuracy, pretrained + finetuned: {summary['accuracy_vote']:.2f}% with "
          f"{summary['votes']}-vote voting ({summary['accuracy']:.2f}% single pass), "
          f"{summary['test_samples']} test shapes")
    print(f"  test accuracy, from scratch (same budget): {summary['accuracy_scratch']:.2f}% with voting "
          f"({summary['accuracy_scratch_single']:.2f}% single pass)")
    if probe["attention_png"] is not None:
        print(f"  linear SVM on frozen features (LinearSVC C=0.075): pretrained {summary['svm_pretrained']:.2f}%, "
              f"random init {summary['svm_random']:.2f}%")
        print(f"  attention of the image / text queries: {probe['attention_png']}")
    listed = "summary.json, attention.png" if probe["attention_png"] is not None else "summary.json"
    print(f"  outputs: {out} ({listed}, pretrain/, finetune/, scratch/, data/)")
    print(f"  test again: recon test demo/finetune --ckpt {summary['paths']['finetuned_model']} "
          f"data.root={data_root} data.args.num_per_class={npc} data.args.seed={seed}")
    return summary

