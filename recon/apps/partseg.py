"""``recon partseg``: part segmentation on ShapeNetPart (or the built-in synthetic part set).

    recon partseg partseg/shapenetpart [key=value ...] [--pretrained PATH] [--resume [PATH]] [--out DIR]
    recon partseg --synthetic [key=value ...] [--pretrained PATH]     # minutes on 2 cores
    recon test partseg/shapenetpart --ckpt best_model.pth             # the per-category IoU table

The run trains with :func:`recon.engine.train_partseg.train_partseg`, measures with
:func:`recon.eval.miou.evaluate_partseg`, prints the per-category table of the test split and
draws ``predictions.png`` (ground truth vs prediction for a few test shapes) in the output folder.
"""

from __future__ import annotations

import argparse
import os

import torch

__all__ = ["run", "run_partseg", "test_partseg", "render_predictions", "SYNTHETIC_CONFIG"]

NAME = "partseg"

SYNTHETIC_CONFIG = "partseg/synthetic"


def _evaluator(model, loader, device, amp=None) -> dict:
    from recon.eval.miou import evaluate_partseg

    ds = loader.dataset
    return evaluate_partseg(model, loader, device, ds.category_parts, ds.classes,
                            amp.autocast if amp is not None else None)


def render_predictions(model, dataset, path: str, count: int = 4, device="cpu") -> str:
    """A PNG with ground truth (top row) and masked predictions (bottom row) of ``count`` shapes,
    one per category where possible; returns ``path``. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recon.atomic import atomic_write
    from recon.eval.miou import masked_predict

    picks, seen = [], set()
    for i, (c, _) in enumerate(dataset.items):
        if c not in seen:
            picks.append(i)
            seen.add(c)
        if len(picks) == count:
            break
    was_training = model.training
    model.eval()
    fig = plt.figure(figsize=(3 * len(picks), 6))
    with torch.no_grad():
        for j, i in enumerate(picks):
            item = dataset[i]
            pts = item["points"][:, :3]
            scores = model(pts[None].to(device), torch.tensor([item["label"]], device=device))
            pred = masked_predict(scores.cpu(), torch.tensor([item["label"]]), dataset.category_parts)[0]
            base = dataset.category_parts[item["label"]][0]
            for row, (seg, what) in enumerate(((item["seg"], "ground truth"), (pred, "prediction"))):
                ax = fig.add_subplot(2, len(picks), row * len(picks) + j + 1, projection="3d")
                p = pts.numpy()
                ax.scatter(p[:, 0], p[:, 2], p[:, 1], c=(seg.numpy() - base), cmap="tab10", vmin=0, vmax=9, s=2)
                ax.set_title(f"{dataset.classes[item['label']]}: {what}", fontsize=9)
                ax.set_axis_off()
    model.train(was_training)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=80, format="png"))
    plt.close(fig)
    return path


def _load(config: str | None, overrides, synthetic: bool, out=None, resume=None, pretrained=None):
    from recon.errors import ConfigError

    from ._args import load_run_config

    if synthetic and config not in (None, SYNTHETIC_CONFIG):
        raise ConfigError(f"--synthetic runs the {SYNTHETIC_CONFIG} recipe; do not also pass CONFIG ({config!r})")
    if config is None and not synthetic:
        raise ConfigError("recon partseg needs CONFIG (e.g. partseg/shapenetpart) or --synthetic")
    cfg = load_run_config(config or SYNTHETIC_CONFIG, overrides, out=out, resume=resume, pretrained=pretrained)
    if cfg.get("task") != "partseg":
        raise ConfigError(f"{config} is not a part-segmentation config (task: {cfg.get('task')!r}, expected partseg)")
    return cfg


def run_partseg(config: str | None = None, overrides=(), synthetic: bool = False, pretrained: str | None = None,
                resume: str | None = None, out: str | None = None, png: bool = True) -> dict:
    """Train and test one part-seg config; prints the per-category table; returns the summary."""
    from recon.engine.train_partseg import train_partseg
    from recon.eval.miou import format_iou_table

    cfg = _load(config, overrides, synthetic, out, resume, pretrained)
    summary = train_partseg(cfg, _evaluator)
    if int(os.environ.get("RANK", 0)) != 0:  # under torchrun only rank 0 prints and draws
        return summary
    if not (cfg.get_path("log.quiet", False)):
        print(format_iou_table(summary["test"]))
    if png:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            summary["png"] = None
        else:
            from recon.models import load_model
            from recon.engine.train_partseg import partseg_dataset

            ckpt = summary["checkpoints"]["best"] or summary["checkpoints"]["last"]
            test_set = partseg_dataset(cfg.data, "test", "fixed")
            summary["png"] = render_predictions(load_model(ckpt), test_set,
                                                os.path.join(summary["output_dir"], "predictions.png"))
    return summary


def test_partseg(cfg, ckpt: str, sampling: str | None = None) -> dict:
    """Evaluate a part-seg checkpoint (official ``best_model.pth`` or recon file) on the test split
    of ``cfg.data``; prints the per-category table; returns the metrics."""
    from recon.engine.builders import eval_loader
    from recon.engine.train_partseg import PROTOCOLS, partseg_dataset, partseg_model
    from recon.eval.miou import format_iou_table

    if not ckpt:
        from recon.errors import ConfigError

        raise ConfigError("recon test needs --ckpt PATH (a part-seg checkpoint)")
    cfg.pretrained = ckpt
    sampling = sampling or cfg.eval.get("sampling") or PROTOCOLS[str(cfg.eval.get("protocol", "honest"))][2]
    model = partseg_model(cfg)
    device = torch.device("cuda" if str(cfg.get("device", "auto")) in ("auto", "cuda") and torch.cuda.is_available()
                          else "cpu")
    model.to(device)
    test_set = partseg_dataset(cfg.data, "test", sampling)
    bs = 1 if sampling == "full" else int(cfg.eval.get("batch_size", 32))
    metrics = _evaluator(model, eval_loader(test_set, bs), device)
    print(f"part segmentation test: {ckpt} on {len(test_set)} shapes (sampling {sampling})")
    print(format_iou_table(metrics))
    return metrics


def add_parser(sub) -> argparse.ArgumentParser:
    """The ``recon partseg`` subcommand."""
    p = sub.add_parser(NAME, help="part segmentation on ShapeNetPart (configs/partseg/*.yaml)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", nargs="?", default=None,
                   help="YAML file or shipped config name (partseg/shapenetpart); omit with --synthetic")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    p.add_argument("--synthetic", action="store_true",
                   help=f"the quick recipe on the built-in synthetic part set ({SYNTHETIC_CONFIG})")
    p.add_argument("--pretrained", help="pretraining or part-seg checkpoint (recon or official .pth)")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="PATH",
                   help="continue from PATH, or from <output_dir>/ckpt-last.pt")
    p.add_argument("--out", help="output folder (sets output_dir)")
    p.add_argument("--no-png", action="store_true", help="skip predictions.png")
    p.set_defaults(_run=run)
    return p


def run(config: str | None = None, overrides=(), synthetic: bool = False, pretrained: str | None = None,
        resume: str | None = None, out: str | None = None, no_png: bool = False) -> dict:
    """``recon partseg`` from the command's arguments (``recon partseg --synthetic key=value`` has no CONFIG)."""
    overrides = list(overrides)
    if config is not None and "=" in config:
        config, overrides = None, [config] + overrides
    return run_partseg(config, overrides, synthetic=synthetic, pretrained=pretrained, resume=resume, out=out,
                       png=not no_png)
