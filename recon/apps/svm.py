"""``recon svm``: the linear-SVM probe of frozen features (paper Table 10) on one dataset.

Features per cloud are the official ``PointTransformerSVM`` ones (:mod:`recon.eval.svm`), cached on
disk keyed by the checkpoint's hash, the dataset and the sampling; ``LinearSVC(C=0.075)`` is fit on
the train split and scored on the test split.
"""

from __future__ import annotations

import argparse
import logging

from ._args import add_model_args, check_out_path, parse_kv, positive

__all__ = ["run"]

NAME = "svm"
log = logging.getLogger("recon.apps")


def add_parser(sub):
    from recon.eval.svm import SVM_C

    p = sub.add_parser(NAME, help="linear-SVM probe of frozen features (Table 10)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="modelnet40", help="modelnet40 (official) | modelnet10 | synthetic | scan_*")
    p.add_argument("--root", required=True, help="dataset root in the real format")
    p.add_argument("--checkpoint", default=None, help="pretrained checkpoint; none = random weights (said so)")
    add_model_args(p, "recon_base")
    p.add_argument("--npoints", type=int, default=1024, help="FPS points per cloud (official 1024)")
    p.add_argument("--c", type=float, default=SVM_C, help=f"LinearSVC C (official {SVM_C})")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cache-dir", default="runs/svm_cache", help="feature cache ('' disables)")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights when no checkpoint")
    p.add_argument("--out", default=None, help="write the result JSON here")
    p.set_defaults(_run=run)
    return p


def run(root: str, dataset: str = "modelnet40", checkpoint: str | None = None, model: str = "recon_base",
        model_args=(), data_args=(), npoints: int = 1024, c: float = 0.075, batch_size: int = 32,
        cache_dir: str | None = "runs/svm_cache", seed: int = 0, out: str | None = None) -> dict:
    """Run the SVM protocol; prints a line and returns (and with ``out`` writes) the result record."""
    from recon.data.registry import check_name
    from recon.eval.results import write_result
    from recon.eval.svm import svm_probe

    key = check_name(dataset)
    positive(npoints, "--npoints")
    positive(batch_size, "--batch-size")
    check_out_path(out)
    res = svm_probe(model, checkpoint, root, key, npoints, parse_kv(model_args, "model-args"),
                    parse_kv(data_args, "data-args"), batch_size, cache_dir or None, seed, c)
    notes = [] if checkpoint else ["random weights (no checkpoint)"]
    result = dict(protocol="svm", dataset=key, setting=f"LinearSVC C={c}, FPS-{npoints}", value=res["acc"],
                  std=None, n=res["n_test"], model=model, checkpoint=checkpoint, notes=notes,
                  **{k: v for k, v in res.items() if k != "acc"})
    print(f"linear SVM {key}: {res['acc']:.2f}% on {res['n_test']} test clouds "
          f"({res['dim']}-d features of {model}{', RANDOM weights' if not checkpoint else ''})")
    if out:
        write_result(out, result)
        log.info(f"wrote {out}")
    return result
