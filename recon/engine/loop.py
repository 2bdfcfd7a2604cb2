"""The training-epoch core shared by pretraining and finetuning.

One epoch = iterate the loader, call a task's ``step_fn(model, batch) -> dict of losses`` under
autocast, backpropagate ``loss / accum_steps``, and every ``accum_steps`` micro-batches set the
scheduled lr, unscale, clip and step. Under DDP the gradient all-reduce is skipped on all but the
last micro-batch of an accumulation group (``no_sync``).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import time
from typing import Callable

import numpy as np
import torch

from recon.errors import ConfigError

from . import dist
from .logging import Progress

__all__ = ["seed_everything", "set_deterministic", "Amp", "train_epoch", "move_to"]


def seed_everything(seed: int, rank: int = 0) -> None:
    """Seed python, numpy and torch; ranks get different streams (different augmentations)."""
    s = int(seed) + 1000003 * int(rank)
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def set_deterministic(enabled: bool) -> None:
    """Deterministic algorithms everywhere (bit-exact resume; slower on CUDA)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.deterministic = enabled
        torch.backends.cudnn.benchmark = not enabled


def cpu_has_native_bf16() -> bool:
    """True where the CPU multiplies bfloat16 in hardware (AMX tiles or AVX512-BF16). Elsewhere bf16
    autocast emulates the products and is no faster than float32, so ``train.amp: auto`` keeps float32."""
    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_amx_tile_supported() or cpu._is_avx512_bf16_supported())
    except AttributeError:  # a torch without these probes
        return False


class Amp:
    """Mixed precision: ``none``, ``bf16`` (CPU or CUDA) or ``fp16`` (CUDA, with a GradScaler).

    Args:
        mode: ``none`` | ``bf16`` | ``fp16`` | ``auto`` (fp16 on CUDA; on CPU bf16 where the cores multiply
            bfloat16 natively (AMX or AVX512-BF16), else none).
        device: the training device.
    """

    MODES = ("none", "bf16", "fp16", "auto")

    def __init__(self, mode, device: torch.device):
        mode = "none" if mode in (None, False) else ("auto" if mode is True else str(mode).lower())
        if mode not in self.MODES:
            raise ConfigError(f"train.amp must be one of {self.MODES}, got {mode!r}")
        if mode == "auto":
            mode = "fp16" if device.type == "cuda" else ("bf16" if cpu_has_native_bf16() else "none")
        if mode == "fp16" and device.type != "cuda":
            raise ConfigError("train.amp=fp16 needs CUDA; on CPU use train.amp=bf16 or none")
        self.mode = mode
        self.device_type = device.type
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
        self.scaler = torch.amp.GradScaler(device.type, enabled=(mode == "fp16"))

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def move_to(batch, device):
    """Tensors of a (nested) batch onto ``device``; other values untouched."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and batch and torch.is_tensor(batch[0]):
        return type(batch)(move_to(v, device) for v in batch)
    return batch


def _batch_size(batch) -> int:
    if isinstance(batch, dict):
        return len(batch["points"])
    return len(batch[0])


def train_epoch(
    model: torch.nn.Module,
    loader,
    step_fn: Callable[[torch.nn.Module, dict], dict],
    optimizer: torch.optim.Optimizer,
    schedule,
    amp: Amp,
    epoch: int,
    device: torch.device,
    accum_steps: int = 1,
    grad_clip: float | None = None,
    progress: bool = True,
    logger=None,
    log_every: int = 0,
    global_step: int = 0,
    max_steps: int | None = None,
) -> dict:
    """Train one epoch.

    Args:
        model: the (possibly DDP-wrapped) model, already on ``device`` and in train mode.
        loader: yields batches (dicts with at least ``points``).
        step_fn: ``step_fn(model, batch) -> {"loss": scalar tensor, other scalars...}``.
        optimizer, schedule: the optimizer and its :class:`~recon.engine.optim.LRSchedule`.
        amp: mixed-precision settings and grad scaler.
        epoch: epoch index (for the schedule).
        accum_steps: micro-batches per optimizer step.
        grad_clip: max global L2 norm of the gradients (None: no clipping).
        progress: show a tqdm bar.
        logger: a :class:`~recon.engine.logging.RunLogger` for per-step records (every ``log_every``).
        global_step: optimizer steps before this epoch (for step records).
        max_steps: stop after this many micro-batches (smoke runs).

    Returns:
        Means over all samples of every loss returned by ``step_fn`` (reduced over ranks), plus
        ``lr`` (of the first group at the last step), ``samples_per_s``, ``steps`` and ``seconds``.
    """
    if accum_steps < 1:
        raise ConfigError(f"train.accum_steps must be >= 1, got {accum_steps}")
    n_batches = len(loader) if max_steps is None else min(len(loader), max_steps)
    bar = Progress(n_batches, f"epoch {epoch}", enabled=progress)
    sums: dict[str, torch.Tensor] = {}
    count = torch.zeros((), dtype=torch.float64)
    t0 = time.perf_counter()
    opt_step = 0
    lrs = [g["lr"] for g in optimizer.param_groups]
    optimizer.zero_grad(set_to_none=True)
    for i, batch in enumerate(loader):
        if i >= n_batches:
            break
        batch = move_to(batch, device)
        bs = _batch_size(batch)
        boundary = (i + 1) % accum_steps == 0 or i + 1 == n_batches
        sync = boundary or not hasattr(model, "no_sync")
        with (contextlib.nullcontext() if sync else model.no_sync()):
            with amp.autocast():
                losses = step_fn(model, batch)
            loss = losses["loss"]
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(
                    f"non-finite loss {loss.item()} at epoch {epoch}, batch {i}: lower optimizer.lr, "
                    "enable train.grad_clip, or turn off train.amp"
                )
            amp.scaler.scale(loss.float() / accum_steps).backward()
        for k, v in losses.items():
            v = v.detach().double() if torch.is_tensor(v) else torch.tensor(float(v), dtype=torch.float64)
            sums[k] = sums.get(k, torch.zeros((), dtype=torch.float64)) + v.cpu() * bs
        count += bs
        if boundary:
            lrs = schedule.set(epoch, opt_step) if schedule is not None else lrs
            if grad_clip:
                amp.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(grad_clip))
            amp.scaler.step(optimizer)
            amp.scaler.update()
            optimizer.zero_grad(set_to_none=True)
            opt_step += 1
            if logger is not None and log_every and (global_step + opt_step) % log_every == 0:
                logger.log("train_step", global_step + opt_step, epoch=epoch, lr=lrs[0],
                           **{k: float(v.detach()) if torch.is_tensor(v) else v for k, v in losses.items()})
        bar.update(bs, loss=float(loss.detach()), lr=float(lrs[0]))
    bar.close()
    seconds = time.perf_counter() - t0
    keys = sorted(sums)
    if dist.is_active():
        packed = dist.all_reduce_sum(torch.stack([sums[k] for k in keys] + [count]))
        totals = dict(zip(keys, packed[:-1].tolist()))
        total = float(packed[-1])
    else:
        totals = {k: float(sums[k]) for k in keys}
        total = float(count)
    out = {k: totals[k] / max(total, 1.0) for k in keys}
    out.update(lr=float(lrs[0]), steps=opt_step, seconds=seconds,
               samples_per_s=total / max(seconds, 1e-9))
    if any(not math.isfinite(v) for v in out.values()):
        raise FloatingPointError(f"non-finite epoch metrics {out}")
    return out
