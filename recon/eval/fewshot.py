"""Few-shot classification grid (paper Table 2; RECON_FACTS.md §8-9).

One command runs way x shot x fold: each fold is a finetune on ``<way>way_<shot>shot/<fold>.pkl``
whose best validation accuracy (on the fold's own 20-per-class test subset, as the official runner
does) is that fold's result.  Each finished fold writes ``<out>/<way>way_<shot>shot/fold<k>.json``
and is never run again (resume); the summary is mean +- std over folds, as the paper's table.

The finetune itself is a callable ``run_fold(cfg) -> dict(acc=...)``; :func:`engine_run_fold` binds it
to ``recon.engine``'s finetune with a few-shot config (``configs/fewshot/{full,linear,mlp3}.yaml``,
the official hyper-parameters).  A fold's accuracy is its last epoch's test accuracy by default;
``--official-selection`` reports the best epoch on the episode's test set, as the official runner.
``--dataset synthetic`` first writes few-shot pickles in the official format from the built-in
synthetic set, so the whole protocol runs offline.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from .common import build_dataset, log, run_main, write_result

PAPER_WAYS, PAPER_SHOTS, PAPER_FOLDS = (5, 10), (10, 20), tuple(range(10))


def fold_path(out_dir, way: int, shot: int, fold: int) -> Path:
    """Where one fold's result JSON lives."""
    return Path(out_dir) / f"{way}way_{shot}shot" / f"fold{fold}.json"


def load_fold(path: Path) -> dict | None:
    """A finished fold's result, or None if the file is missing or not a finished result."""
    try:
        res = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return res if isinstance(res, dict) and isinstance(res.get("acc"), (int, float)) else None


def run_grid(
    run_fold: Callable[[dict], dict],
    base_cfg: dict,
    out_dir,
    ways: Iterable[int] = PAPER_WAYS,
    shots: Iterable[int] = PAPER_SHOTS,
    folds: Iterable[int] = PAPER_FOLDS,
) -> dict:
    """Run every (way, shot, fold) not yet finished, then summarise.

    Args:
        run_fold: ``cfg -> dict(acc=% , ...)``; ``cfg`` is ``base_cfg`` plus ``way``, ``shot``, ``fold``,
            ``out_dir`` (a per-fold directory for its checkpoints/logs).
        base_cfg: settings shared by all folds (config, data root, pretrained checkpoint, seed).
        out_dir: results root; ``fold_path`` gives each fold's JSON.

    Returns:
        ``{"<way>way_<shot>shot": dict(mean, std, n, accs, folds)}`` (std over folds, ddof=0).
    """
    results: dict[tuple[int, int], dict[int, float]] = {}
    for way in ways:
        for shot in shots:
            for fold in folds:
                path = fold_path(out_dir, way, shot, fold)
                res = load_fold(path)
                if res is not None:
                    log(f"{way}-way {shot}-shot fold {fold}: done before ({res['acc']:.2f}%), skipped")
                else:
                    cfg = dict(base_cfg, way=way, shot=shot, fold=fold, out_dir=str(path.with_suffix("")))
                    t0 = time.perf_counter()
                    res = dict(run_fold(cfg))
                    if not isinstance(res.get("acc"), (int, float)) or math.isnan(res["acc"]):
                        raise ValueError(f"run_fold: expected dict(acc=<number>), got {res!r}")
                    res.update(way=way, shot=shot, fold=fold, seconds=time.perf_counter() - t0)
                    write_result(path, res)
                    log(f"{way}-way {shot}-shot fold {fold}: {res['acc']:.2f}%")
                results.setdefault((way, shot), {})[fold] = float(res["acc"])
    return summarize(results)


def summarize(results: dict[tuple[int, int], dict[int, float]]) -> dict:
    """Mean and population std (ddof=0) of the fold accuracies per (way, shot)."""
    summary = {}
    for (way, shot), per_fold in results.items():
        accs = np.array([per_fold[f] for f in sorted(per_fold)], dtype=np.float64)
        summary[f"{way}way_{shot}shot"] = dict(way=way, shot=shot, mean=float(accs.mean()), std=float(accs.std()),
                                               n=len(accs), folds=sorted(per_fold), accs=accs.tolist())
    return summary


def format_table(summary: dict) -> str:
    """Markdown table in the paper's layout: rows = way, columns = shot, cells 'mean ± std (n folds)'."""
    ways = sorted({v["way"] for v in summary.values()})
    shots = sorted({v["shot"] for v in summary.values()})
    lines = ["| | " + " | ".join(f"{s}-shot" for s in shots) + " |", "|---" * (len(shots) + 1) + "|"]
    for w in ways:
        cells = []
        for s in shots:
            v = summary.get(f"{w}way_{s}shot")
            cells.append(f"{v['mean']:.1f} ± {v['std']:.1f} ({v['n']} folds)" if v else "—")
        lines.append(f"| {w}-way | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_fewshot_pickles(train_set, test_set, out_root, way: int, shot: int, fold: int, n_test: int = 20,
                          seed: int = 0) -> Path:
    """Write one fold in the official pickle format from any labelled dataset.

    Draws ``way`` classes and, per class, ``shot`` train and ``n_test`` test clouds (seeded by
    ``seed``, ``way``, ``shot`` and ``fold``); labels are remapped to ``0..way-1`` as in the official
    pickles.  File: ``<out_root>/<way>way_<shot>shot/<fold>.pkl`` =
    ``{"train": [(points [N, 3] float32, label, name)], "test": [...]}``.
    """
    rng = np.random.default_rng([seed, way, shot, fold])

    def by_class(ds):
        groups: dict[int, list[int]] = {}
        for i in range(len(ds)):
            groups.setdefault(int(ds[i]["label"]), []).append(i)
        return groups

    train_idx, test_idx = by_class(train_set), by_class(test_set)
    usable = sorted(c for c in train_idx if len(train_idx[c]) >= shot and len(test_idx.get(c, [])) >= n_test)
    if len(usable) < way:
        raise ValueError(f"way: only {len(usable)} classes have {shot} train and {n_test} test samples, need {way}")
    chosen = rng.choice(usable, size=way, replace=False)
    names = getattr(train_set, "classes", None)
    split = {"train": [], "test": []}
    for new_label, cls in enumerate(chosen.tolist()):
        for part, ds, pool, k in (("train", train_set, train_idx, shot), ("test", test_set, test_idx, n_test)):
            for i in rng.choice(pool[cls], size=k, replace=False).tolist():
                pts = np.asarray(ds[i]["points"], dtype=np.float32)[:, :3]
                name = names[cls] if names else str(cls)
                split[part].append((pts, new_label, name))
    path = Path(out_root) / f"{way}way_{shot}shot" / f"{fold}.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(split, f)
    return path


def frozen_backbone(base: str = "recon_base", **kwargs):
    """The official ``linear`` / ``mlp3`` protocols: a registry classifier whose parameters train only
    if their name contains ``'cls'`` (``cls_token``, ``cls_pos``, the head), as the official runner
    freezes them; BatchNorm statistics still update in train mode.

    Used from a config as ``model: {name: "recon.eval.fewshot:frozen_backbone", base: recon_base,
    head: linear}`` (``mlp3`` = the full 3-layer head on the frozen backbone).
    """
    from recon.models import create_model

    model = create_model(base, **kwargs)
    for name, p in model.named_parameters():
        p.requires_grad_("cls" in name)
    return model


def engine_run_fold(cfg: dict) -> dict:
    """One fold = one ``recon.engine`` finetune of the few-shot config.

    Args:
        cfg: ``config`` (YAML path or shipped name), ``root`` (few-shot pickles), ``way``, ``shot``,
            ``fold``, ``out_dir``, and optionally ``pretrained``, ``seed``, ``official_selection``,
            ``overrides`` (extra dotted ``key=value`` strings).

    Returns:
        ``dict(acc=test accuracy of the selected epoch, acc_vote, selected, best)``.
    """
    from recon.config import load_config
    from recon.engine.train_finetune import finetune

    over = [f"data.root={cfg['root']}", f"data.args.way={cfg['way']}", f"data.args.shot={cfg['shot']}",
            f"data.args.fold={cfg['fold']}", f"output_dir={cfg['out_dir']}", f"seed={int(cfg.get('seed', 0))}"]
    if Path(cfg["out_dir"], "ckpt-last.pt").is_file():
        over.append("resume=auto")  # an interrupted fold continues from its last epoch
    if cfg.get("pretrained"):
        over.append(f"pretrained={cfg['pretrained']}")
    if cfg.get("official_selection"):
        over.append("eval.best_on=test")
    summary = finetune(load_config(cfg["config"], over + list(cfg.get("overrides") or [])))
    return dict(acc=float(summary["accuracy"]), acc_vote=float(summary["accuracy_vote"]), selected=summary["model"],
                best=summary.get("best"))


def parse_folds(text: str) -> list[int]:
    """``"0-9"`` / ``"0,3,5"`` / ``"4"`` -> list of fold numbers."""
    out = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m:
            raise ValueError(f"folds: expected e.g. '0-9' or '0,1,2', got {text!r}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        out.extend(range(lo, hi + 1))
    return out


def _add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="fewshot/full",
                   help="few-shot finetune config: fewshot/full (default), fewshot/linear, fewshot/mlp3 or a YAML")
    p.add_argument("--root", required=True, help="few-shot root (<way>way_<shot>shot/<fold>.pkl), or with "
                   "--dataset synthetic the synthetic set's root")
    p.add_argument("--dataset", default="modelnet40", choices=["modelnet40", "synthetic"],
                   help="modelnet40: the official pickles in --root; synthetic: episodes drawn from the built-in set")
    p.add_argument("--pretrained", default=None, help="pretrained checkpoint (none = from scratch, said so)")
    p.add_argument("--ways", type=int, nargs="+", default=list(PAPER_WAYS))
    p.add_argument("--shots", type=int, nargs="+", default=list(PAPER_SHOTS))
    p.add_argument("--folds", default="0-9", help="e.g. 0-9 or 0,1,2")
    p.add_argument("--official-selection", action="store_true",
                   help="report each fold's best epoch on its test set (official, optimistic); default: last epoch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/fewshot", help="results root (resume reads it)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.epochs=21")


def run(args, run_fold: Callable[[dict], dict] | None = None) -> dict:
    """Run the grid from parsed arguments; prints the table, writes ``<out>/summary.json``."""
    folds = parse_folds(args.folds)
    root = Path(args.root)
    if args.dataset == "synthetic":
        pkl_root = Path(args.out) / "fewshot_data"
        train_set = build_dataset("synthetic", root, "train", npoints=2048)
        test_set = build_dataset("synthetic", root, "test", npoints=2048)
        for w in args.ways:
            for s in args.shots:
                for f in folds:
                    if not (pkl_root / f"{w}way_{s}shot" / f"{f}.pkl").is_file():
                        write_fewshot_pickles(train_set, test_set, pkl_root, w, s, f, seed=args.seed)
        root = pkl_root
    if not root.is_dir():
        raise FileNotFoundError(f"root: no directory {str(root)!r}")
    if args.pretrained is None:
        log("no --pretrained checkpoint: every fold finetunes from RANDOM initialisation")
    if args.official_selection:
        log("OFFICIAL SELECTION: each fold reports its best epoch on its own test set (optimistic)")
    base = dict(config=args.config, root=str(root), pretrained=args.pretrained, seed=args.seed,
                official_selection=bool(args.official_selection), overrides=list(args.overrides))
    summary = run_grid(run_fold or engine_run_fold, base, args.out, args.ways, args.shots, folds)
    table = format_table(summary)
    print(table)
    notes = [] if args.pretrained else ["from scratch (no pretrained checkpoint)"]
    if args.official_selection:
        notes.append("best epoch on the test set (official selection)")
    for key, v in summary.items():
        write_result(Path(args.out) / f"result_{key}.json", dict(
            protocol="fewshot", dataset=args.dataset, setting=f"{v['way']}-way {v['shot']}-shot, {args.config}",
            value=v["mean"], std=v["std"], n=v["n"], checkpoint=args.pretrained, way=v["way"], shot=v["shot"],
            accs=v["accs"], notes=notes))
    write_result(Path(args.out) / "summary.json", dict(settings=base, summary=summary, table=table))
    return summary


def add_fewshot_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``recon fewshot`` on an argparse ``subparsers`` object; sets ``func``."""
    p = subparsers.add_parser("fewshot", help="few-shot grid with resume (Table 2)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_args(p)
    p.set_defaults(func=run)
    return p


def main_fewshot(argv: Sequence[str] | None = None) -> int:
    """``recon fewshot`` as a function: returns the exit code."""
    p = argparse.ArgumentParser(prog="recon fewshot", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_args(p)
    return run_main(run, p, argv)
