"""Part-segmentation finetuning loop (the official ``segmentation/main.py``, honest by default).

Per step (docs/official.md §15): every cloud of the batch is scaled by ``U(0.8, 1.25)`` and shifted
by ``U(-0.1, 0.1)^3`` (drawn per cloud), the model returns log-probabilities and the loss is
``nll_loss`` over all points; gradients are clipped to norm 10 (``train.grad_clip``).
Optimizer (:func:`partseg_param_groups`): AdamW; the head's convolutions (every parameter whose
name contains ``conv`` outside the patch ``encoder``, including the label branch's BatchNorm) at
``lr x optimizer.head_lr_mult`` (official ReCon 10, Point-MAE 1) with weight decay; of the rest,
1-D / ``.bias`` / ``*token*`` without decay, everything else (``cls_pos`` included) with decay.
Schedule: ``scheduler.name=cos_epoch`` is timm 0.4.5's cosine as the official loop steps it
(lr of epoch ``e`` = ``f(e - 1)``; epochs 0 and 1 at ``warmup_lr_init``).

``train.compat_double_step`` (off by default): the official loop calls ``optimizer.step()`` twice
per batch with the same gradients, the first unclipped and the second after clipping, so AdamW's
step count and decoupled weight decay advance twice per batch. Turn it on only to reproduce the
official runs; recon's default takes one clipped step.

Protocols (``eval.protocol``):
  * ``honest`` (default): train on ``train``, keep the best instance mIoU on ``val``
    (fixed-seed sampling), test the kept model once on ``test`` (fixed-seed sampling);
  * ``official``: train on ``trainval``, evaluate ``test`` every epoch with a fresh random
    choice with replacement, keep the best instance mIoU (ties replace), i.e. model selection on
    the test split (optimistic).

The loop never computes metrics itself: the caller passes ``evaluate(model, loader, device, amp)
-> {"instance_miou": ..., ...}`` (``recon.eval.miou.evaluate_partseg``), so ``engine`` does not
depend on ``eval``. Outputs (rank 0, atomic): ``ckpt-best`` / ``model-last`` (recon format),
``ckpt-last.pt`` (exact resume), ``metrics.jsonl``, ``summary.json``.
"""

from __future__ import annotations

import os
import time
from typing import Callable

import torch
import torch.nn.functional as F

from . import dist
from .builders import build_dataset, build_model, eval_loader, train_loader
from .checkpointing import atomic_write_json
from .loop import train_epoch
from .optim import build_schedule, split_groups
from .run import TrainRun

__all__ = ["train_partseg", "partseg_param_groups", "build_partseg_optimizer", "DoubleStep", "scale_shift",
           "partseg_step", "PROTOCOLS", "partseg_model", "partseg_dataset"]

# protocol -> (training split, selection split, sampling of the evaluated splits, ties replace the best)
PROTOCOLS = {
    "honest": ("train", "val", "fixed", False),
    "official": ("trainval", "test", "random", True),
}


def partseg_param_groups(model: torch.nn.Module, weight_decay: float, lr: float,
                         head_lr_mult: float = 10.0) -> list[dict]:
    """The official part-seg AdamW groups (docs/official.md §15), in the official order.

    1. ``'conv' in name and 'encoder' not in name`` -> ``lr * head_lr_mult``, ``weight_decay``
       (only when ``head_lr_mult != 1``; Point-MAE has no such group);
    2. 1-D, ``.bias`` or ``'token'`` in the name -> no decay;
    3. everything else -> ``weight_decay``.
    """
    return split_groups(model, weight_decay, lr, lambda key: "conv" in key and "encoder" not in key, head_lr_mult,
                        "head", boosted_first=True)


def build_partseg_optimizer(model, cfg) -> torch.optim.AdamW:
    """AdamW over :func:`partseg_param_groups` from an ``optimizer`` section (``lr``, ``weight_decay``,
    ``head_lr_mult``, ``betas``)."""
    name = str(cfg.get("name", "adamw")).lower()
    if name != "adamw":
        raise ValueError(f"optimizer.name must be 'adamw' for part segmentation (the official optimizer), got {name!r}")
    groups = partseg_param_groups(model, float(cfg.get("weight_decay", 0.05)), float(cfg["lr"]),
                                  float(cfg.get("head_lr_mult", 10.0)))
    return torch.optim.AdamW(groups, lr=float(cfg["lr"]), betas=tuple(cfg.get("betas", (0.9, 0.999))))


class DoubleStep:
    """The official step quirk as an optimizer facade: ``step()`` = inner step with the raw
    gradients, clip the gradients to ``max_norm``, inner step again (``train.compat_double_step``)."""

    def __init__(self, optimizer: torch.optim.Optimizer, params, max_norm: float | None):
        self.optimizer = optimizer
        self.params = [p for p in params if p.requires_grad]
        self.max_norm = max_norm

    @property
    def param_groups(self):
        return self.optimizer.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        self.optimizer.step()
        if self.max_norm:
            torch.nn.utils.clip_grad_norm_(self.params, float(self.max_norm))
        return self.optimizer.step()

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


def scale_shift(points: torch.Tensor, scale=(0.8, 1.25), shift: float = 0.1,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Per cloud: one isotropic scale ``U(scale)`` then a shift ``U(-shift, shift)^3`` of the xyz channels."""
    B = points.shape[0]
    s = torch.empty(B, 1, 1, dtype=torch.float64).uniform_(scale[0], scale[1], generator=generator)
    t = torch.empty(B, 1, 3, dtype=torch.float64).uniform_(-shift, shift, generator=generator)
    out = points.clone()
    out[..., :3] = (points[..., :3].double() * s + t).to(points.dtype)
    return out


def partseg_step(augment: bool = True):
    """The ``step_fn`` of :func:`~recon.engine.loop.train_epoch`: augment, forward, NLL, point accuracy."""

    def step(model, batch):
        points = batch["points"][..., :3]
        if augment:
            points = scale_shift(points.cpu()).to(points.device)
        logp = model(points, batch["label"].view(-1).long())
        target = batch["seg"].long()
        loss = F.nll_loss(logp.reshape(-1, logp.shape[-1]).float(), target.reshape(-1))
        acc = (logp.argmax(-1) == target).float().mean() * 100
        return {"loss": loss, "train_acc": acc.detach()}

    return step


def partseg_dataset(data_cfg, split: str, sampling: str | None):
    """The ``data`` section's dataset for ``split`` with the given ``sampling`` (None: the dataset's default)."""
    args = dict(data_cfg.get("args") or {})
    if sampling is not None:
        args["sampling"] = sampling
    return build_dataset({"name": data_cfg["name"], "root": data_cfg.get("root"), "args": args}, split)


def partseg_model(cfg, logger=None):
    """The model of ``cfg.model`` with ``cfg.pretrained`` loaded (report logged)."""
    model = build_model(cfg.model)
    if cfg.get("pretrained"):
        from recon.models.partseg import load_partseg_weights

        if not os.path.exists(cfg.pretrained) and not os.path.exists(str(cfg.pretrained) + ".safetensors"):
            from recon.errors import MissingFileError

            raise MissingFileError(f"pretrained={cfg.pretrained!r} does not exist")
        report = load_partseg_weights(model, cfg.pretrained)
        if logger is not None:
            logger.info(f"[partseg] loaded {cfg.pretrained}\n{report}")
    return model


def train_partseg(cfg, evaluate: Callable) -> dict:
    """Run a part-seg config; returns the summary (also ``<output_dir>/summary.json``).

    Args:
        cfg: the config (``recon/configs/partseg/*.yaml``).
        evaluate: ``evaluate(model, loader, device, amp) -> metrics`` with at least
            ``instance_miou`` (percent); called on every rank (it merges the shards itself).
    """
    protocol = str(cfg.eval.get("protocol", "honest"))
    if protocol not in PROTOCOLS:
        raise ValueError(f"eval.protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    train_split, select_split, eval_sampling, ties_replace = PROTOCOLS[protocol]
    eval_sampling = cfg.eval.get("sampling") or eval_sampling
    tr, ev = cfg.train, cfg.eval
    double = bool(tr.get("compat_double_step", False))
    run = TrainRun(cfg, "partseg")
    t_start = time.perf_counter()
    log, info = run.logger, run.info
    try:
        if double and run.amp.mode == "fp16":
            raise ValueError("train.compat_double_step cannot run with train.amp=fp16 (the grad scaler steps once)")
        train_set = partseg_dataset(cfg.data, train_split, None)
        select_set = partseg_dataset(cfg.data, select_split, eval_sampling)
        test_set = partseg_dataset(cfg.data, "test", eval_sampling)
        log.info(f"[partseg] protocol {protocol}: train on {train_split} ({len(train_set)}), select on "
                 f"{select_split} ({len(select_set)}), test ({len(test_set)}), eval sampling {eval_sampling}")
        workers = int(tr.get("num_workers", 0))
        loader = train_loader(train_set, int(tr.batch_size), int(cfg.seed), info.rank, info.world_size, 1, workers)
        ebs = 1 if eval_sampling == "full" else int(ev.get("batch_size", tr.batch_size))
        select_loader = eval_loader(select_set, ebs, info.rank, info.world_size, workers)
        test_loader = eval_loader(test_set, ebs, info.rank, info.world_size, workers)

        model = run.wrap(partseg_model(cfg, log))
        optimizer = build_partseg_optimizer(model, cfg.optimizer)
        epochs = int(tr.epochs)
        schedule = build_schedule(optimizer, cfg.scheduler, len(loader), epochs)
        start, extra = run.resume(model, optimizer, schedule)
        stepper = DoubleStep(optimizer, model.parameters(), tr.get("grad_clip")) if double else optimizer
        best = extra.get("best", {"instance_miou": -1.0, "epoch": -1})
        step = partseg_step(augment=bool(tr.get("augment", True)))
        best_path = os.path.join(run.out_dir, "ckpt-best")
        last_model_path = os.path.join(run.out_dir, "model-last")
        stats = {}
        for epoch in range(start, epochs):
            model.train()
            loader.sampler.set_epoch(epoch)
            stats = train_epoch(model, loader, step, stepper, schedule, run.amp, epoch, run.device,
                                grad_clip=None if double else tr.get("grad_clip"), progress=run.progress,
                                logger=log, log_every=int(cfg.log.get("every", 0)),
                                global_step=epoch * len(loader), max_steps=tr.get("max_steps"))
            line = (f"[partseg] epoch {epoch}: loss {stats['loss']:.4f} acc {stats['train_acc']:.2f} "
                    f"lr {stats['lr']:.3g} {stats['samples_per_s']:.1f} samples/s")
            record = dict(stats)
            if epoch >= int(ev.get("start_epoch", 0)) and ((epoch + 1) % int(ev.get("every", 1)) == 0
                                                           or epoch == epochs - 1):
                res = evaluate(dist.unwrap(model), select_loader, run.device, run.amp)
                record.update({f"{select_split}_{k}": res[k] for k in ("instance_miou", "class_miou", "accuracy")})
                line += (f" | {select_split} inst mIoU {res['instance_miou']:.2f} "
                         f"cls mIoU {res['class_miou']:.2f}")
                better = res["instance_miou"] >= best["instance_miou"] if ties_replace else \
                    res["instance_miou"] > best["instance_miou"]
                if better:
                    best = {"epoch": epoch, **{k: res[k] for k in ("instance_miou", "class_miou", "accuracy")}}
                    run.save_weights(model, best_path)
                    line += " (best)"
            run.end_epoch(epoch, record, line, model, optimizer, schedule, best)
        run.save_weights(model, last_model_path, wait=True)

        final = dist.unwrap(model)
        chosen = "last"
        if best["epoch"] >= 0:
            from recon.models.partseg import load_partseg_weights

            load_partseg_weights(final, best_path, strict=True)
            chosen = f"best instance mIoU on {select_split} (epoch {best['epoch']})"
        test = evaluate(final, test_loader, run.device, run.amp)
        summary = {
            "task": "partseg",
            "protocol": protocol,
            "compat_double_step": double,
            "model": chosen,
            "best": best,
            "test": test,
            "epochs": epochs,
            "last_epoch": stats,
            "seconds": time.perf_counter() - t_start,
            "output_dir": run.out_dir,
            "checkpoints": {"best": best_path if best["epoch"] >= 0 else None, "last": last_model_path,
                            "train_state": run.last_path},
        }
        log.log("summary", epochs, **{f"test_{k}": test[k] for k in ("instance_miou", "class_miou", "accuracy")})
        log.info(f"[partseg] done in {summary['seconds']:.1f}s: model={chosen} | test instance mIoU "
                 f"{test['instance_miou']:.2f} class mIoU {test['class_miou']:.2f} accuracy {test['accuracy']:.2f}"
                 f" | outputs in {run.out_dir}")
        if info.is_main:
            atomic_write_json(os.path.join(run.out_dir, "summary.json"), summary, indent=2, default=float)
        return summary
    finally:
        run.close()
