"""``recon test``: the voting test of a finetuned checkpoint, the official voting, or N finetuning seeds.

    recon test CONFIG --ckpt PATH [--votes 10] [--repeats 1] [--seed S] [key=value ...]
    recon test CONFIG --ckpt PATH --official-voting
    recon test CONFIG --seeds N [--pretrained PATH]

* default: one honest pass of ``eval.votes`` votes (:func:`recon.engine.evaluate.test_checkpoint`;
  voting as docs/official.md §9 describes).
* ``--official-voting``: the official ``test()`` repeats the vote pass 299 times and reports the
  MAXIMUM -- the best of 299 random draws on the test set, an optimistic figure.  It is printed
  as such, and the mean +- std over the passes is reported beside it.
* ``--seeds N``: finetune the config with seeds 0..N-1 (resumable: a finished seed is not rerun)
  and report the mean +- std of the voted test accuracy; the official README instead keeps the
  best of 8 random seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from recon.errors import ConfigError

from ._args import add_run_args, check_out_path, load_run_config, positive, with_compile

__all__ = ["OFFICIAL_PASSES", "seed_summary", "official_test", "finetune_seeds", "result_record", "run_test"]

NAME = "test"
OFFICIAL_PASSES = 299  # official test(): for i in range(1, 300)
OFFICIAL_BANNER = ("OFFICIAL VOTING: best of {n} passes x {v} votes on the test set. This is the maximum over "
                   "random draws, an optimistic figure; the single-pass and mean figures are honest.")
log = logging.getLogger("recon.apps")


def add_parser(sub):
    p = sub.add_parser(NAME, help="voting test of a finetuned checkpoint", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(p, resume=False)
    p.add_argument("--ckpt", default=None, help="finetuned checkpoint (recon or official .pth); not with --seeds")
    p.add_argument("--votes", type=int, default=None, help="votes per pass (default eval.votes, official 10)")
    p.add_argument("--repeats", type=int, default=None,
                   help="vote passes; the official reports the max of 299 (optimistic); default 1")
    p.add_argument("--seed", type=int, default=None, help="vote seed (default eval.vote_seed)")
    p.add_argument("--official-voting", action="store_true",
                   help=f"the official protocol: max over {OFFICIAL_PASSES} vote passes (optimistic; said so)")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="finetune the config with seeds 0..N-1 (resumable) and report mean ± std; --ckpt unused")
    p.add_argument("--pretrained", default=None, help="with --seeds: the pretrained checkpoint to finetune from")
    p.add_argument("--result", default=None, help="write a result JSON for `recon report` here")
    p.set_defaults(_run=run)
    return p


def seed_summary(accs: Iterable[float]) -> dict:
    """Mean, population std (ddof=0), min and max of per-seed accuracies."""
    arr = np.asarray(list(accs), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("accs: expected at least one accuracy")
    return dict(mean=float(arr.mean()), std=float(arr.std()), min=float(arr.min()), max=float(arr.max()),
                n=int(arr.size))


def official_test(cfg, ckpt: str, test_fn: Callable | None = None, votes: int | None = None,
                  seed: int | None = None) -> dict:
    """The official voting test: ``OFFICIAL_PASSES`` vote passes, the maximum reported (said loudly).

    Args:
        cfg: a finetune config.
        ckpt: finetuned weights.
        test_fn: ``recon.engine.evaluate.test_checkpoint`` (injectable for tests).

    Returns:
        the engine's test result plus ``official_voting=True`` and ``accuracy_official`` (= the max).
    """
    if test_fn is None:
        from recon.engine.evaluate import test_checkpoint as test_fn
    log.info(OFFICIAL_BANNER.format(n=OFFICIAL_PASSES, v=votes or _votes(cfg)))
    res = dict(test_fn(cfg, ckpt, votes=votes, repeats=OFFICIAL_PASSES, seed=seed))
    vote = res.get("vote", {})
    res.update(official_voting=True, accuracy_official=vote.get("acc_max"))
    print(f"official voting (max of {OFFICIAL_PASSES} passes, optimistic): {vote.get('acc_max', float('nan')):.2f}%"
          f" | mean {vote.get('acc_mean', float('nan')):.2f} ± {vote.get('acc_std', float('nan')):.2f} over passes"
          f" | first pass {vote.get('acc', float('nan')):.2f}%")
    return res


def finetune_seeds(config: str, n: int, out_dir, overrides: Iterable[str] = (), pretrained: str | None = None,
                   finetune_fn: Callable | None = None, load_fn: Callable | None = None) -> dict:
    """Finetune ``config`` with seeds ``0..n-1`` and summarise the test accuracies.

    A seed whose ``<out_dir>/seed<k>/summary.json`` exists is not rerun.

    Returns:
        ``dict(accuracy=seed_summary of single-pass test acc, accuracy_vote=seed_summary of voted acc,
        runs=[per-seed summaries])``.
    """
    if n < 1:
        raise ConfigError(f"seeds: expected N >= 1, got {n}")
    if finetune_fn is None:
        from recon.engine.train_finetune import finetune as finetune_fn
    if load_fn is None:
        from recon.config import load_config as load_fn
    runs = []
    for seed in range(n):
        folder = Path(out_dir) / f"seed{seed}"
        done = folder / "summary.json"
        if done.is_file():
            summary = json.loads(done.read_text())
            log.info(f"seed {seed}: finished before ({summary['accuracy_vote']:.2f}%), skipped")
        else:
            over = list(overrides) + [f"seed={seed}", f"output_dir={folder}"]
            if pretrained:
                over.append(f"pretrained={pretrained}")
            if (folder / "ckpt-last.pt").is_file():
                over.append("resume=auto")
            summary = finetune_fn(load_fn(config, over))
        runs.append(dict(seed=seed, accuracy=float(summary["accuracy"]), accuracy_vote=float(summary["accuracy_vote"])))
    res = dict(accuracy=seed_summary(r["accuracy"] for r in runs),
               accuracy_vote=seed_summary(r["accuracy_vote"] for r in runs), runs=runs)
    print(f"{n} finetuning seeds: voted test accuracy {res['accuracy_vote']['mean']:.2f} ± "
          f"{res['accuracy_vote']['std']:.2f} (single pass {res['accuracy']['mean']:.2f} ± "
          f"{res['accuracy']['std']:.2f}); best seed {res['accuracy_vote']['max']:.2f} (the README's selection)")
    return res


def _votes(cfg) -> int:
    """``eval.votes`` of a config, its default from the schema."""
    from recon.engine.schema import EvalSection, section

    return section(EvalSection, cfg.get("eval"), "eval").votes


def result_record(cfg, value: float, std: float | None, setting: str, **extra) -> dict:
    """A ``recon report`` record (protocol ``finetune``) for a test of a finetune config; its ``dataset``
    is the canonical name of the config's ``data`` section (:func:`recon.data.registry.canonical_name`)."""
    from recon.data.registry import canonical_name
    from recon.engine.schema import DataSection, section

    data = section(DataSection, cfg.get("data"), "data")
    npoints = (cfg.get("train") or {}).get("npoints")
    return dict(protocol="finetune", dataset=canonical_name(data.name, data.args), npoints=int(npoints or 0) or None,
                value=value, std=std, setting=setting, **extra)


def run_test(cfg, config: str, overrides: Iterable[str] = (), ckpt: str | None = None, votes: int | None = None,
             repeats: int | None = None, seed: int | None = None, official_voting: bool = False,
             seeds: int | None = None, pretrained: str | None = None, result: str | None = None,
             test_fn: Callable | None = None) -> dict:
    """``recon test`` on a loaded config: one honest pass (default), official voting, or seeds.

    Args:
        cfg: the loaded finetune config (``config`` with ``overrides``).
        config, overrides: what ``cfg`` was loaded from (``seeds`` reloads it once per seed).
        ckpt: the finetuned weights (not with ``seeds``).
        votes, repeats, seed: override ``eval.votes``, ``eval.vote_repeats``, ``eval.vote_seed``.
        official_voting: the max over :data:`OFFICIAL_PASSES` passes (optimistic; said so).
        seeds: finetune seeds ``0..seeds-1`` and report mean ± std (from ``pretrained``).
        result: write a ``recon report`` record here.
        test_fn: ``recon.engine.evaluate.test_checkpoint`` (injectable for tests).
    """
    check_out_path(result, "--result")
    if seeds:
        out = cfg.get("output_dir") or str(Path("runs") / "seeds")
        res = finetune_seeds(config, seeds, out, list(overrides), pretrained=pretrained)
        v = res["accuracy_vote"]
        record = result_record(cfg, v["mean"], v["std"], f"{v['n']} finetuning seeds, one "
                               f"{_votes(cfg)}-vote pass each", n=v["n"], seeds=res["runs"], notes=[])
    else:
        if not ckpt:
            raise ConfigError("ckpt: `recon test` needs --ckpt (or --seeds N to finetune and test N seeds)")
        if test_fn is None:
            from recon.engine.evaluate import test_checkpoint as test_fn
        if official_voting:
            res = official_test(cfg, ckpt, test_fn, votes=votes, seed=seed)
            record = result_record(cfg, res["accuracy_official"], None, f"official voting: max of {OFFICIAL_PASSES} "
                                   "passes", checkpoint=ckpt, notes=["optimistic: best of 299 random passes"])
        else:
            res = dict(test_fn(cfg, ckpt, votes=votes, repeats=repeats, seed=seed))
            record = result_record(cfg, res["accuracy_vote"], None, f"one {res['vote']['votes']}-vote pass",
                                   checkpoint=ckpt, accuracy_single=res["accuracy"], notes=[])
            print(json.dumps(res, indent=2, default=float))
    if result:
        from recon.eval.results import write_result

        write_result(result, record)
        log.info(f"wrote {result}")
    return res


def run(config: str, overrides=(), out: str | None = None, ckpt: str | None = None, votes: int | None = None,
        repeats: int | None = None, seed: int | None = None, official_voting: bool = False, seeds: int | None = None,
        pretrained: str | None = None, result: str | None = None, compile: bool = False) -> dict:
    """``recon test`` from the command's arguments."""
    overrides = with_compile(overrides, compile)
    positive(votes, "--votes")
    positive(repeats, "--repeats")
    positive(seeds, "--seeds")
    if not seeds and not ckpt:
        raise ConfigError("recon test needs --ckpt PATH (a finetuned checkpoint), or --seeds N")
    cfg = load_run_config(config, overrides, out=out, pretrained=pretrained)
    if cfg.get("task") == "partseg":  # the per-category IoU table of a part-seg checkpoint
        from .partseg import test_partseg

        return test_partseg(cfg, ckpt)
    return run_test(cfg, config, overrides, ckpt=ckpt, votes=votes, repeats=repeats, seed=seed,
                    official_voting=official_voting, seeds=seeds, pretrained=pretrained, result=result)
