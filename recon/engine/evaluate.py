"""Classification evaluation: one-pass accuracy and the official voting test.

Voting (docs/official.md §9): per batch, FPS to ``point_all`` once; for each of ``votes`` votes take one
random ``npoints`` subset of those positions (shared by the batch, as the official code does),
apply the dataset's test transform, and average the **logits**; the prediction is the argmax.
The official ``--test`` repeats the vote pass 299 times and reports the maximum; recon's default is
one pass with a fixed seed (``repeats > 1`` reports mean, std and the optimistic max).
"""

from __future__ import annotations

import contextlib
import math

import torch

from recon.data.transforms import fps_points
from recon.errors import ConfigError

from . import dist
from .loop import move_to
from .schema import run_config

__all__ = ["evaluate", "vote_evaluate", "test_model", "test_checkpoint"]


def _reduce_counts(correct: int, total: int) -> tuple[int, int]:
    t = dist.all_reduce_sum(torch.tensor([correct, total], dtype=torch.float64))
    return int(t[0]), int(t[1])


@torch.no_grad()
def evaluate(model, loader, device, npoints: int, amp=None) -> dict:
    """Single-pass accuracy with FPS to ``npoints`` (the per-epoch validation of the official loop).

    Returns:
        ``{"acc": percent, "correct": int, "total": int}`` summed over ranks.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    for batch in loader:
        batch = move_to(batch, device)
        pts = fps_points(batch["points"], npoints)
        with amp.autocast() if amp is not None else contextlib.nullcontext():
            logits = model(pts)
        correct += int((logits.argmax(-1) == batch["label"].view(-1)).sum())
        total += len(pts)
    model.train(was_training)
    correct, total = _reduce_counts(correct, total)
    return {"acc": 100.0 * correct / max(total, 1), "correct": correct, "total": total}


@torch.no_grad()
def vote_evaluate(model, loader, device, npoints: int, point_all: int, votes: int = 10, transform=None,
                  seed: int = 0, repeats: int = 1, amp=None) -> dict:
    """The voting test.

    Args:
        model: classifier ``points [B, npoints, 3] -> logits``.
        loader: the test split (each rank its own shard).
        npoints, point_all: points per vote and the FPS pool they are drawn from (capped at N).
        votes: votes per pass (official 10).
        transform: the dataset's test transform (``transform(points, generator=g)``) or None.
        seed: seed of the first pass; pass r uses ``seed + r``.
        repeats: number of full passes (official 299, reporting the max).

    Returns:
        ``acc`` (first pass), ``acc_mean``, ``acc_std``, ``acc_max`` over passes (percent),
        ``votes``, ``repeats``, ``total``.
    """
    if votes < 1 or repeats < 1:
        raise ConfigError(f"votes and repeats must be >= 1, got votes={votes}, repeats={repeats}")
    was_training = model.training
    model.eval()
    accs = []
    for r in range(repeats):
        g = torch.Generator(device="cpu").manual_seed(int(seed) + r + 1000003 * dist_rank())
        correct = total = 0
        for batch in loader:
            batch = move_to(batch, device)
            points = batch["points"][..., :3]
            pool = fps_points(points, min(point_all, points.shape[1]))
            if npoints > pool.shape[1]:
                raise ValueError(f"npoints={npoints} exceeds the FPS pool of {pool.shape[1]} points")
            logits = 0
            for _ in range(votes):
                pick = torch.randperm(pool.shape[1], generator=g)[:npoints].to(pool.device)
                pts = pool[:, pick]
                if transform is not None:
                    pts = transform(pts, generator=g)
                with amp.autocast() if amp is not None else contextlib.nullcontext():
                    logits = logits + model(pts).float()
            correct += int((logits.argmax(-1) == batch["label"].view(-1)).sum())
            total += len(points)
        correct, total = _reduce_counts(correct, total)
        accs.append(100.0 * correct / max(total, 1))
    model.train(was_training)
    mean = sum(accs) / len(accs)
    std = math.sqrt(sum((a - mean) ** 2 for a in accs) / len(accs))
    return {"acc": accs[0], "acc_mean": mean, "acc_std": std, "acc_max": max(accs), "votes": votes,
            "repeats": repeats, "total": total}


def dist_rank() -> int:
    return torch.distributed.get_rank() if dist.is_active() else 0


def test_model(model, loader, device, spec, amp=None, votes: int | None = None, repeats: int | None = None,
               seed: int | None = None) -> tuple[dict, dict]:
    """The test of a finetuned classifier: single-pass accuracy and the voting test, as the config says.

    Args:
        model: the classifier, on ``device``.
        loader: the test split (:func:`~.builders.eval_loader`).
        spec: the run config (:class:`~.schema.RunConfig`): ``train.npoints``/``point_all`` and ``eval.*``.
        votes, repeats, seed: override ``eval.votes``, ``eval.vote_repeats``, ``eval.vote_seed``.

    Returns:
        ``(single, vote)``: the results of :func:`evaluate` and :func:`vote_evaluate`.
    """
    from .builders import build_transform

    tr, ev = spec.train, spec.eval
    single = evaluate(model, loader, device, tr.npoints, amp)
    vote = vote_evaluate(model, loader, device, tr.npoints, ev.point_all or tr.point_all or tr.npoints,
                         votes=votes or ev.votes, transform=build_transform(ev.vote_transform),
                         seed=ev.vote_seed if seed is None else seed, repeats=repeats or ev.vote_repeats, amp=amp)
    return single, vote


def test_checkpoint(cfg, ckpt: str, votes: int | None = None, repeats: int | None = None,
                    seed: int | None = None) -> dict:
    """The config's classifier with weights from ``ckpt``, tested with voting on the test split.

    Args:
        cfg: a finetune config (``model``, ``data``, ``train.npoints``/``point_all``, ``eval.*``).
        ckpt: finetuned weights (recon file or official ``.pth``), loaded strictly.
        votes, repeats, seed: override ``eval.votes`` (10), ``eval.vote_repeats`` (1), ``eval.vote_seed`` (0).

    Returns:
        ``accuracy`` (single pass), ``accuracy_vote`` and the vote details.
    """
    from recon.checkpoint import load_checkpoint
    from recon.compile import compile_model, compile_options

    from .builders import build_dataset, build_model, eval_loader
    from .loop import Amp

    spec = run_config(cfg, "finetune")
    if spec.train.npoints is None:
        raise ConfigError("train.npoints (points per cloud) is required to test a classifier")
    info = dist.init_distributed(spec.device)
    try:
        tr = spec.train
        model = build_model(spec.model)
        report = load_checkpoint(model, ckpt, strict=True)
        model = model.to(info.device)
        options = compile_options(tr)
        if options is not None:
            compile_model(model, **options)
        amp = Amp(tr.amp, info.device)
        test_set = build_dataset(spec.data, spec.data.test_split)
        loader = eval_loader(test_set, spec.eval.batch_size or tr.batch_size, info.rank, info.world_size,
                             tr.num_workers)
        single, vote = test_model(model, loader, info.device, spec, amp, votes=votes, repeats=repeats, seed=seed)
        return {"checkpoint": ckpt, "load_report": str(report), "accuracy": single["acc"],
                "accuracy_vote": vote["acc"], "vote": vote}
    finally:
        dist.cleanup()
