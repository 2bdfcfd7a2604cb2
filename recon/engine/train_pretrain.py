"""Pretraining loop (the official ``runner_pretrain``): masked point modelling + cross-modal
feature regression to frozen teacher features, cached (default) or computed per batch
(``teachers.online: true``, see :mod:`.teacher_cache`).

Per step: the official augmentation (rotation about y), then
``model(points, img_feat, text_feat) -> {"loss", "loss_recon", "loss_img", "loss_text"}`` (plus
``text=`` the raw category strings, and ``"loss_smc"`` back, for a model with ``smc``); every
``loss*`` entry is logged. After each epoch: the resumable ``ckpt-last.pt`` and the weights in the
official released-pretrain layout (``{"base_model": state_dict}``, keys ``MAE_encoder.*`` ...,
no teachers), which ``recon.checkpoint.load_checkpoint`` (and the official finetune loader) read
into a classifier.
"""

from __future__ import annotations

import os
import time

from . import dist
from .builders import build_dataset, build_model, build_transform
from .checkpointing import atomic_save, atomic_write_json
from .run import TrainRun
from .schema import run_config

__all__ = ["pretrain", "pretrain_step", "save_backbone", "BACKBONE"]

BACKBONE = "ckpt-pretrain.pth"


def pretrain_step(transform, teachers=None):
    """The pretraining ``step_fn``: augment, forward with teacher features, keep the losses.

    Args:
        transform: batched point augmentation (None: none).
        teachers: online mode's :class:`~recon.engine.teacher_cache.OnlineTeachers`, run on the
            batch first (inside the loop's autocast, on the batch's device); None when the batch
            already carries cached ``img_feat`` / ``text_feat``.
    """

    def step(model, batch):
        if teachers is not None:
            batch = teachers(batch)
        points = batch["points"][..., :3]
        if transform is not None:
            points = transform(points)
        extra = {}
        if getattr(dist.unwrap(model), "smc", False):  # the single-modal term pairs samples by category text
            if "text" not in batch:
                raise ValueError("model.smc=true needs a dataset whose items carry 'text' (the category string)")
            extra["text"] = list(batch["text"])
        out = model(points, img_feat=batch.get("img_feat"), text_feat=batch.get("text_feat"), **extra)
        return {k: v for k, v in out.items() if k.startswith("loss")}

    return step


def save_backbone(model, path: str, epoch: int) -> None:
    """The pretraining model as an official released-pretrain checkpoint (atomic)."""
    state = {k: v.detach().cpu() for k, v in dist.unwrap(model).state_dict().items()}
    atomic_save({"base_model": state, "epoch": int(epoch)}, path)


def build_pretrain_dataset(cfg, run):
    """The training set with its teachers: ``(dataset, online teachers or None)``
    (:func:`~recon.engine.teacher_cache.prepare_teachers`)."""
    from .teacher_cache import prepare_teachers

    spec = run_config(cfg, "pretrain")
    dataset = build_dataset(spec.data, spec.data.train_split)
    return prepare_teachers(dataset, spec.teachers, run)


def pretrain(cfg) -> dict:
    """Run a pretraining config; returns the summary (also ``<output_dir>/summary.json``)."""
    spec = run_config(cfg, "pretrain")
    run = TrainRun(spec, "pretrain")
    t_start = time.perf_counter()
    log, info, tr = run.logger, run.info, spec.train
    try:
        dataset, teachers = build_pretrain_dataset(spec, run)
        loader = run.train_loader(dataset)
        model = run.wrap(build_model(spec.model))
        optimizer, schedule, steps_per_epoch = run.optimization(model, loader)
        epochs = tr.epochs
        start, _ = run.resume(model, optimizer, schedule)
        step = pretrain_step(build_transform(tr.transform), teachers=teachers)
        backbone = os.path.join(run.out_dir, BACKBONE)
        log.info(f"[pretrain] {len(dataset)} samples, {steps_per_epoch} steps/epoch, epochs {start}..{epochs - 1}")
        model.train()
        stats = {}
        for epoch in range(start, epochs):
            stats = run.train_epoch(model, loader, step, optimizer, schedule, epoch, steps_per_epoch)
            log.log("epoch", epoch, **stats)
            parts = " ".join(f"{k} {v:.4f}" for k, v in stats.items() if k.startswith("loss"))
            log.info(f"[pretrain] epoch {epoch}: {parts} lr {stats['lr']:.3g} "
                     f"{stats['samples_per_s']:.1f} samples/s")
            if info.is_main:
                save_backbone(model, backbone, epoch)
            run.save(epoch, model, optimizer, schedule)
        seconds = time.perf_counter() - t_start
        summary = {"task": "pretrain", "epochs": epochs, "last_epoch": stats, "seconds": seconds,
                   "output_dir": run.out_dir, "checkpoints": {"backbone": backbone, "train_state": run.last_path}}
        log.info(f"[pretrain] done in {seconds:.1f}s: final loss {stats.get('loss', float('nan')):.4f}; "
                 f"backbone {backbone}")
        if info.is_main:
            atomic_write_json(os.path.join(run.out_dir, "summary.json"), summary, indent=2, default=float)
        return summary
    finally:
        run.close()

