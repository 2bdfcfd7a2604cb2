"""``recon fewshot``: the few-shot grid (paper Table 2), each fold one finetune, resumable.

Each fold finetunes a few-shot config (``configs/fewshot/{full,linear,mlp3}.yaml``, the official
hyper-parameters) on ``<way>way_<shot>shot/<fold>.pkl``; the grid, resume and summary are
:func:`recon.eval.fewshot.run_grid`'s.  A fold's accuracy is its last epoch's test accuracy by default;
``--official-selection`` reports the best epoch on the episode's test set, as the official runner.
``--dataset synthetic`` first writes few-shot pickles in the official format from the built-in
synthetic set, so the whole protocol runs offline.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Callable

from recon.errors import ConfigError, MissingFileError

from ._args import check_out_path, positive

__all__ = ["engine_run_fold", "run"]

NAME = "fewshot"
log = logging.getLogger("recon.apps")


def add_parser(sub):
    from recon.eval.fewshot import PAPER_SHOTS, PAPER_WAYS

    p = sub.add_parser(NAME, help="few-shot grid with resume (Table 2)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
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
    p.add_argument("--seed", type=int, default=0, help="seed of the finetunes and of the synthetic episodes")
    p.add_argument("--num-per-class", type=int, default=None,
                   help="--dataset synthetic: shapes per class of the built-in set (as `recon demo --num-per-class`)")
    p.add_argument("--num-classes", type=int, default=None,
                   help="--dataset synthetic: classes of the built-in set (default: all)")
    p.add_argument("--out", default="runs/fewshot", help="results root (resume reads it)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides, e.g. train.epochs=21")
    p.set_defaults(_run=run)
    return p


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


def _synthetic_episodes(root: Path, out: Path, ways, shots, folds, seed: int, data_args: dict) -> Path:
    """Few-shot pickles in the official format drawn from the synthetic set at ``root`` (built with
    ``data_args``, the demo's ``num_per_class`` / ``num_classes``); returns their root, one per data setting."""
    from recon.data.registry import build_dataset
    from recon.eval.fewshot import write_fewshot_pickles

    tag = "".join(f"_{k}{v}" for k, v in sorted(data_args.items()))
    pkl_root = out / f"fewshot_data{tag}"
    train_set = build_dataset("synthetic", root, "train", npoints=2048, **data_args)
    test_set = build_dataset("synthetic", root, "test", npoints=2048, **data_args)
    for w in ways:
        for s in shots:
            for f in folds:
                if not (pkl_root / f"{w}way_{s}shot" / f"{f}.pkl").is_file():
                    write_fewshot_pickles(train_set, test_set, pkl_root, w, s, f, seed=seed)
    return pkl_root


def run(root: str, config: str = "fewshot/full", dataset: str = "modelnet40", pretrained: str | None = None,
        ways=(5, 10), shots=(10, 20), folds: str = "0-9", official_selection: bool = False, seed: int = 0,
        out: str = "runs/fewshot", overrides=(), run_fold: Callable[[dict], dict] | None = None,
        num_per_class: int | None = None, num_classes: int | None = None) -> dict:
    """Run the grid; prints the table, writes ``<out>/result_<way>way_<shot>shot.json`` and ``<out>/summary.json``.

    Args:
        run_fold: the per-fold run (default :func:`engine_run_fold`; injectable for tests).
    """
    from recon.eval.fewshot import format_table, parse_folds, run_grid
    from recon.eval.results import write_result

    fold_list = parse_folds(folds)
    check_out_path(Path(out) / "summary.json")
    root_path = Path(root)
    data_args = {k: v for k, v in (("num_per_class", positive(num_per_class, "--num-per-class", 2)),
                                   ("num_classes", positive(num_classes, "--num-classes"))) if v is not None}
    if data_args and dataset != "synthetic":
        raise ConfigError("--num-per-class / --num-classes describe the built-in set: use them with --dataset synthetic")
    if dataset == "synthetic":
        root_path = _synthetic_episodes(root_path, Path(out), ways, shots, fold_list, seed, data_args)
    if not root_path.is_dir():
        raise MissingFileError(f"root: no directory {str(root_path)!r}")
    if pretrained is None:
        log.info("no --pretrained checkpoint: every fold finetunes from RANDOM initialisation")
    if official_selection:
        log.info("OFFICIAL SELECTION: each fold reports its best epoch on its own test set (optimistic)")
    base = dict(config=config, root=str(root_path), pretrained=pretrained, seed=seed,
                official_selection=bool(official_selection), overrides=list(overrides))
    summary = run_grid(run_fold or engine_run_fold, base, out, ways, shots, fold_list)
    table = format_table(summary)
    print(table)
    notes = [] if pretrained else ["from scratch (no pretrained checkpoint)"]
    if official_selection:
        notes.append("best epoch on the test set (official selection)")
    for key, v in summary.items():
        write_result(Path(out) / f"result_{key}.json", dict(
            protocol="fewshot", dataset=dataset, setting=f"{v['way']}-way {v['shot']}-shot, {config}",
            value=v["mean"], std=v["std"], n=v["n"], checkpoint=pretrained, way=v["way"], shot=v["shot"],
            accs=v["accs"], notes=notes))
    write_result(Path(out) / "summary.json", dict(settings=base, summary=summary, table=table))
    return summary
