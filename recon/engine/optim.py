"""Optimizer parameter groups and learning-rate schedules of the official ReCon runs.

Param groups (docs/official.md §9): with ``cls_lr_mult != 1`` (the official finetune uses 10) every
trainable parameter whose name contains ``'cls'`` gets ``lr * cls_lr_mult`` and the normal weight
decay, even biases and BN parameters; of the rest, 1-D parameters, ``*.bias`` and names containing
``'token'`` get no weight decay; everything else gets ``weight_decay``.

Schedules (both stateless functions of (epoch, step), so a resumed run gets the same lr):

* ``cos_epoch`` — timm 0.4.5 ``CosineLRScheduler`` as the official loop uses it: stepped once after
  every epoch with ``step(epoch)``, so the lr *during* epoch ``e`` is ``f(max(e - 1, 0))`` with
  ``f(t) = warmup_lr_init + t (base - warmup_lr_init) / warmup`` for ``t < warmup`` and
  ``lr_min + (base - lr_min)(1 + cos(pi t / t_initial)) / 2`` after (absolute ``t``, no warm-up
  offset), ``lr_min`` from ``t_initial`` on. Epochs 0 and 1 both run at ``warmup_lr_init``.
* ``cos_step`` — per optimizer step: linear warm-up from ``warmup_lr_init`` over the warm-up
  epochs' steps, then a half cosine to ``lr_min`` at the last step.
* ``constant``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from recon.errors import ConfigError

from .schema import OptimizerSection, SchedulerSection, section

__all__ = ["split_groups", "param_groups", "build_optimizer", "LRSchedule", "build_schedule"]


def split_groups(model: nn.Module, weight_decay: float, lr: float, boosted, mult: float, name: str,
                 boosted_first: bool = False) -> list[dict]:
    """The official AdamW grouping: trainable parameters for which ``boosted(name)`` holds get
    ``lr * mult`` and ``weight_decay`` whatever their shape (only when ``mult != 1``); of the rest,
    1-D parameters, ``*.bias`` and names containing ``'token'`` get no decay; everything else gets
    ``weight_decay``. ``boosted_first`` puts the boosted group first (the part-seg order) instead of last.

    Returns:
        Optimizer groups with keys ``params``, ``lr``, ``weight_decay``, ``name``; empty ones left out.
    """
    model = getattr(model, "module", model)  # a DDP wrapper: names carry no ``module.``
    boost, decay, no_decay = [], [], []
    for key, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if mult != 1.0 and boosted(key):
            boost.append(p)
        elif p.ndim <= 1 or key.endswith(".bias") or "token" in key:
            no_decay.append(p)
        else:
            decay.append(p)
    rest = [{"params": no_decay, "lr": lr, "weight_decay": 0.0, "name": "no_decay"},
            {"params": decay, "lr": lr, "weight_decay": weight_decay, "name": "decay"}]
    head = {"params": boost, "lr": lr * mult, "weight_decay": weight_decay, "name": f"{name}_x{mult:g}"}
    groups = [head, *rest] if boosted_first else [*rest, head]
    return [g for g in groups if g["params"]]


def param_groups(model: nn.Module, weight_decay: float, lr: float, cls_lr_mult: float = 1.0) -> list[dict]:
    """The official classification AdamW groups (docs/official.md §9): every parameter whose name
    contains ``'cls'`` gets ``lr * cls_lr_mult`` (1 = no such group); see :func:`split_groups`."""
    return split_groups(model, weight_decay, lr, lambda key: "cls" in key, cls_lr_mult, "cls")


IMPLS = ("auto", "for", "foreach", "fused")


def _impl_kwargs(impl: str, groups: list[dict]) -> dict:
    """torch's AdamW switches for ``optimizer.impl``: one kernel over all tensors (``fused``), a few
    multi-tensor ops (``foreach``) or a Python loop per parameter (``for``); ``auto`` takes
    ``fused`` where torch has it for every parameter (floating tensors on CPU or CUDA), else
    ``foreach``. The update rule is the same; the rounding of the fused kernel may differ in the
    last bits."""
    if impl not in IMPLS:
        raise ValueError(f"optimizer.impl must be one of {IMPLS}, got {impl!r}")
    if impl == "auto":
        params = [p for g in groups for p in g["params"]]
        ok = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
        impl = "fused" if ok else "foreach"
    if impl == "fused":
        return {"fused": True}
    return {"foreach": impl == "foreach"}


def build_optimizer(model: nn.Module, cfg) -> torch.optim.Optimizer:
    """AdamW (or SGD) over :func:`param_groups` from an ``optimizer`` config section.

    Args:
        cfg: an :class:`~.schema.OptimizerSection` or a mapping of its keys: ``name`` (adamw | sgd),
            ``lr``, ``weight_decay``, ``cls_lr_mult``, ``betas``, ``momentum``.
            ``impl`` (AdamW: auto | for | foreach | fused, see :func:`_impl_kwargs`).
    """
    opt = section(OptimizerSection, cfg, "optimizer")
    name = opt.name.lower()
    groups = param_groups(model, opt.weight_decay, opt.lr, opt.cls_lr_mult)
    if not groups:
        raise ConfigError("build_optimizer: the model has no trainable parameters")
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=opt.lr, betas=opt.betas, **_impl_kwargs(str(opt.impl).lower(), groups))
    if name == "sgd":
        return torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum)
    raise ConfigError(f"optimizer.name must be 'adamw' or 'sgd', got {name!r}")


class LRSchedule:
    """Sets every group's lr from (epoch, step in epoch); keeps each group's base lr.

    Args:
        optimizer: optimizer whose groups' current ``lr`` are the base lrs.
        kind: ``cos_epoch`` | ``cos_step`` | ``constant``.
        t_initial: cosine length in epochs (official: 300).
        warmup_epochs: warm-up length in epochs (official: 10).
        lr_min: floor of the cosine (official 1e-6).
        warmup_lr_init: lr at the start of warm-up (official 1e-6).
        steps_per_epoch: optimizer steps per epoch (``cos_step`` only).
    """

    KINDS = ("cos_epoch", "cos_step", "constant")

    def __init__(self, optimizer, kind="cos_epoch", t_initial=300, warmup_epochs=10, lr_min=1e-6,
                 warmup_lr_init=1e-6, steps_per_epoch=1):
        if kind not in self.KINDS:
            raise ConfigError(f"scheduler.name must be one of {self.KINDS}, got {kind!r}")
        if t_initial <= 0:
            raise ConfigError(f"scheduler.t_initial must be > 0, got {t_initial}")
        self.optimizer = optimizer
        self.kind = kind
        self.t_initial = int(t_initial)
        self.warmup = int(warmup_epochs)
        self.lr_min = float(lr_min)
        self.warmup_lr_init = float(warmup_lr_init)
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.base_lrs = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
        for g, base in zip(optimizer.param_groups, self.base_lrs):
            g["initial_lr"] = base

    def lr(self, base: float, epoch: int, step: int = 0) -> float:
        """The lr of a group with base lr ``base`` at ``step`` of ``epoch``."""
        if self.kind == "constant":
            return base
        if self.kind == "cos_epoch":
            t = max(epoch - 1, 0)
            if t < self.warmup:
                return self.warmup_lr_init + t * (base - self.warmup_lr_init) / self.warmup
            if t >= self.t_initial:
                return self.lr_min
            return self.lr_min + 0.5 * (base - self.lr_min) * (1 + math.cos(math.pi * t / self.t_initial))
        total = self.t_initial * self.steps_per_epoch
        warm = self.warmup * self.steps_per_epoch
        s = epoch * self.steps_per_epoch + step
        if s < warm:
            return self.warmup_lr_init + s * (base - self.warmup_lr_init) / warm
        if s >= total:
            return self.lr_min
        frac = (s - warm) / max(total - warm, 1)
        return self.lr_min + 0.5 * (base - self.lr_min) * (1 + math.cos(math.pi * frac))

    def set(self, epoch: int, step: int = 0) -> list[float]:
        """Write the lrs for (epoch, step) into the optimizer; returns them."""
        lrs = [self.lr(b, epoch, step) for b in self.base_lrs]
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        return lrs

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in
                ("kind", "t_initial", "warmup", "lr_min", "warmup_lr_init", "steps_per_epoch", "base_lrs")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def build_schedule(optimizer, cfg, steps_per_epoch: int, epochs: int) -> LRSchedule:
    """An :class:`LRSchedule` from a ``scheduler`` section (:class:`~.schema.SchedulerSection` or a
    mapping of its keys; ``t_initial`` defaults to ``epochs``)."""
    sch = section(SchedulerSection, cfg, "scheduler")
    return LRSchedule(optimizer, kind=sch.name, t_initial=sch.t_initial or epochs, warmup_epochs=sch.warmup_epochs,
                      lr_min=sch.lr_min, warmup_lr_init=sch.warmup_lr_init, steps_per_epoch=steps_per_epoch)

