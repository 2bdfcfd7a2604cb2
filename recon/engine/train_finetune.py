"""Finetuning loop for classification (the official ``runner_finetune``, made honest by default).

Per step: FPS to ``point_all`` then a random ``npoints`` subset (official train sampling), the
dataset's train augmentation, cross-entropy (no label smoothing). After each epoch (from
``eval.start_epoch``; the official loop skips epoch 0): single-pass accuracy on the selection split,
``ckpt-best`` when it improves, and the resumable ``ckpt-last.pt``. At the end the best model is
tested with voting on the test split.

Selection split (``eval.best_on``):
  * ``val`` (default): a fixed random hold-out of ``eval.val_fraction`` of the training set;
  * ``test``: the official behaviour — picks the best epoch **on the test split** (optimistic);
  * ``last``: no selection, the final epoch is used.
"""

from __future__ import annotations

import os
import time

import torch.nn.functional as F
from torch.utils.data import Subset

from recon.errors import ConfigError, MissingFileError

from . import dist
from .builders import build_dataset, build_model, build_transform, eval_loader, holdout_split
from .checkpointing import atomic_write_json
from .evaluate import evaluate, test_model
from .run import TrainRun
from .schema import run_config

__all__ = ["finetune", "classification_step", "load_pretrained", "BEST_ON"]

BEST_ON = ("val", "test", "last")


def classification_step(npoints: int, point_all: int | None, transform):
    """The finetune ``step_fn``: sample, augment, CE; also returns the batch accuracy."""

    def step(model, batch):
        from recon.data.transforms import fps_then_random_subset

        points = batch["points"][..., :3]
        pa = min(int(point_all or points.shape[1]), points.shape[1])
        if pa != npoints or points.shape[1] != npoints:
            points = fps_then_random_subset(points, npoints, pa)
        if transform is not None:
            points = transform(points)
        logits = model(points)
        label = batch["label"].view(-1).long()
        loss = F.cross_entropy(logits.float(), label)
        acc = (logits.argmax(-1) == label).float().mean() * 100
        return {"loss": loss, "train_acc": acc.detach()}

    return step


def load_pretrained(model, path: str, logger) -> None:
    """Load backbone weights (recon or official checkpoint) through ``recon.checkpoint``."""
    from recon.checkpoint import load_checkpoint

    if not os.path.isfile(path):
        raise MissingFileError(f"pretrained={path!r} does not exist")
    report = load_checkpoint(model, path, strict=False)
    logger.info(f"[finetune] loaded {path}\n{report}")


def finetune(cfg) -> dict:
    """Run a finetuning config; returns the summary (also written to ``<output_dir>/summary.json``)."""
    spec = run_config(cfg, "finetune")
    tr, ev = spec.train, spec.eval
    best_on = ev.best_on
    if best_on not in BEST_ON:
        raise ConfigError(f"eval.best_on must be one of {BEST_ON}, got {best_on!r}")
    if tr.npoints is None:
        raise ConfigError("train.npoints (points per cloud) is required for finetuning")
    run = TrainRun(spec, "finetune")
    t_start = time.perf_counter()
    log, info = run.logger, run.info
    try:
        train_set = build_dataset(spec.data, spec.data.train_split)
        test_set = build_dataset(spec.data, spec.data.test_split)
        if best_on == "val":
            tr_idx, val_idx = holdout_split(len(train_set), ev.val_fraction, spec.seed)
            select_set, train_set = Subset(train_set, val_idx), Subset(train_set, tr_idx)
        else:
            select_set = test_set
        log.info(f"[finetune] train {len(train_set)} / select on {best_on} ({len(select_set)}) / "
                 f"test {len(test_set)} samples")
        loader = run.train_loader(train_set)
        ebs = ev.batch_size or tr.batch_size
        select_loader = eval_loader(select_set, ebs, info.rank, info.world_size, tr.num_workers)
        test_loader = eval_loader(test_set, ebs, info.rank, info.world_size, tr.num_workers)

        model = build_model(spec.model)
        if spec.pretrained:
            load_pretrained(model, spec.pretrained, log)
        model = run.wrap(model)
        optimizer, schedule, steps_per_epoch = run.optimization(model, loader)
        epochs = tr.epochs
        start, extra = run.resume(model, optimizer, schedule)
        best = extra.get("best", {"acc": -1.0, "epoch": -1})
        npoints = tr.npoints
        step = classification_step(npoints, tr.point_all, build_transform(tr.transform))
        best_path = os.path.join(run.out_dir, "ckpt-best")
        last_model_path = os.path.join(run.out_dir, "model-last")
        model.train()
        stats = {}
        for epoch in range(start, epochs):
            stats = run.train_epoch(model, loader, step, optimizer, schedule, epoch, steps_per_epoch)
            line = f"[finetune] epoch {epoch}: loss {stats['loss']:.4f} acc {stats['train_acc']:.2f} " \
                   f"lr {stats['lr']:.3g} {stats['samples_per_s']:.1f} samples/s"
            record = dict(stats)
            do_eval = best_on != "last" and epoch >= ev.start_epoch and (
                (epoch + 1) % ev.every == 0 or epoch == epochs - 1)
            if do_eval:
                res = evaluate(dist.unwrap(model), select_loader, run.device, npoints, run.amp)
                record[f"{best_on}_acc"] = res["acc"]
                line += f" | {best_on} acc {res['acc']:.2f}"
                if res["acc"] > best["acc"]:
                    best = {"acc": res["acc"], "epoch": epoch}
                    run.save_weights(model, best_path)
                    line += " (best)"
            run.end_epoch(epoch, record, line, model, optimizer, schedule, best)
        run.save_weights(model, last_model_path, wait=True)

        # test: the selected model with voting, plus the single-pass accuracy
        final = dist.unwrap(model)
        chosen = "last"
        if best_on != "last" and best["epoch"] >= 0:
            from recon.checkpoint import load_checkpoint

            load_checkpoint(final, best_path, strict=True)
            chosen = f"best on {best_on} (epoch {best['epoch']})"
        single, vote = test_model(final, test_loader, run.device, spec, run.amp)
        summary = {
            "task": "finetune",
            "accuracy": single["acc"],
            "accuracy_vote": vote["acc"],
            "vote": vote,
            "model": chosen,
            "best": best,
            "epochs": epochs,
            "last_epoch": stats,
            "seconds": time.perf_counter() - t_start,
            "output_dir": run.out_dir,
            "checkpoints": {"best": best_path if best["epoch"] >= 0 else None, "last": last_model_path,
                            "train_state": run.last_path},
        }
        log.log("summary", epochs, accuracy=single["acc"], accuracy_vote=vote["acc"])
        log.info(f"[finetune] done in {summary['seconds']:.1f}s: model={chosen} test acc {single['acc']:.2f} "
                 f"| vote x{vote['votes']} acc {vote['acc']:.2f} | outputs in {run.out_dir}")
        _write_summary(run, summary)
        return summary
    finally:
        run.close()


def _write_summary(run, summary: dict) -> None:
    if run.info.is_main:
        atomic_write_json(os.path.join(run.out_dir, "summary.json"), summary, indent=2, default=float)
