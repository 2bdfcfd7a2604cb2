"""What every training run does around its epochs: processes, seeds, output folder, DDP wrapping,
logging, resumable checkpoints.
"""

from __future__ import annotations

import os

import torch
import yaml

from recon.errors import ConfigError

from . import dist
from .checkpointing import atomic_write_text, load_training_state, rng_state, save_training_state
from .builders import train_loader
from .logging import RunLogger
from .loop import Amp, seed_everything, set_deterministic, train_epoch
from .optim import build_optimizer, build_schedule
from .schema import run_config

__all__ = ["TrainRun"]

LAST = "ckpt-last.pt"


def _check_sync_bn(value, info: dist.DistInfo) -> bool:
    """Whether to convert BatchNorm to SyncBatchNorm; refuses what torch cannot run.

    torch's ``SyncBatchNorm`` only runs on CUDA (and XPU / privateuse1) tensors: under gloo on CPU
    its forward raises. Silently falling back to per-process BatchNorm would change the statistics
    the user asked for, so a distributed CPU run with ``train.sync_bn: true`` is an error.
    In one process plain BatchNorm already normalises over the whole batch: nothing to convert.
    """
    value = False if value is None else value
    if not isinstance(value, bool):
        raise ConfigError(f"train.sync_bn must be true or false, got {value!r}")
    if not value or not info.distributed:
        return False
    if info.device.type != "cuda":
        dist.cleanup()
        raise ConfigError(
            f"train.sync_bn=true needs CUDA: torch's SyncBatchNorm does not run on CPU processes (gloo), "
            f"and this run has {info.world_size} CPU processes. Set train.sync_bn=false (each process then "
            f"normalises over its own micro-batch of train.batch_size / {info.world_size}), or train on GPUs"
        )
    return True


class TrainRun:
    """Sets up one run from its config (keys ``seed``, ``deterministic``, ``device``, ``output_dir``,
    ``log.*``, ``train.amp``, ``train.sync_bn``, ``resume``).

    Args:
        cfg: the run config (a :class:`recon.config.Config`; read through :func:`.schema.run_config`).
        task: ``"pretrain"`` or ``"finetune"``.

    Attributes:
        spec: the typed config (:class:`~.schema.RunConfig`); ``cfg``: the mapping it was read from.
        info: this process's :class:`~recon.engine.dist.DistInfo`.
        device, logger, amp, out_dir.
    """

    def __init__(self, cfg, task: str):
        spec = run_config(cfg, task)
        self.spec, self.cfg = spec, spec.raw
        self.task = task
        self.info = dist.init_distributed(spec.device)
        self.device = self.info.device
        self.sync_bn = _check_sync_bn(spec.train.sync_bn, self.info)
        set_deterministic(spec.deterministic)
        seed_everything(spec.seed, self.info.rank)
        self.out_dir = spec.output_dir or os.path.join("runs", task)
        log = spec.log
        self.logger = RunLogger(self.out_dir, enabled=self.info.is_main, tensorboard=log.tensorboard, quiet=log.quiet)
        self.progress = log.progress and self.info.is_main
        self.amp = Amp(spec.train.amp, self.device)
        if self.info.is_main:
            atomic_write_text(os.path.join(self.out_dir, "config.yaml"),
                              yaml.safe_dump(_plain(self.cfg), sort_keys=False))
        threads = os.environ.get("OMP_NUM_THREADS")
        self.logger.info(
            f"[{task}] device={self.device} world_size={self.info.world_size} amp={self.amp.mode} "
            f"threads={threads or torch.get_num_threads()} out={self.out_dir}"
        )

    @property
    def last_path(self) -> str:
        return os.path.join(self.out_dir, LAST)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move to the device; SyncBN (``train.sync_bn``, CUDA only), ``train.compile`` (recon.compile)
        and DDP when distributed."""
        from recon.compile import compile_model, compile_options

        model = model.to(self.device)
        if self.sync_bn:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        options = compile_options(self.cfg.get("train"))
        if options is not None:
            compile_model(model, logger=self.logger, **options)
        if not self.info.distributed:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def resume(self, model, optimizer, schedule) -> tuple[int, dict]:
        """Load ``resume`` (a path, or ``auto`` = this run's ckpt-last.pt when it exists).

        Returns:
            (first epoch to run, the checkpoint's ``extra`` dict).
        """
        path = self.spec.resume
        if path in (None, False, ""):
            return 0, {}
        if path == "auto":
            if not os.path.isfile(self.last_path):
                return 0, {}
            path = self.last_path
        state = load_training_state(path, model=dist.unwrap(model), optimizer=optimizer, schedule=schedule,
                                    scaler=self.amp.scaler, rank=self.info.rank)
        self.logger.info(f"[{self.task}] resumed from {path} after epoch {state['epoch']}")
        return int(state["epoch"]) + 1, dict(state.get("extra") or {})

    def save(self, epoch: int, model, optimizer, schedule, extra: dict | None = None) -> None:
        """Atomic ``ckpt-last.pt`` (rank 0 writes; every rank's RNG state goes in), when ``train.ckpt_every`` says so."""
        every, last = self.spec.train.ckpt_every, epoch + 1 >= self.spec.train.epochs
        if not last and (every <= 0 or (epoch + 1) % every):
            return
        states = dist.all_gather_object(rng_state())
        if self.info.is_main:
            save_training_state(self.last_path, model=dist.unwrap(model), optimizer=optimizer,
                                schedule=schedule, scaler=self.amp.scaler, epoch=epoch,
                                config=_plain(self.cfg), extra=extra, rng_states=states)
        dist.barrier()

    def end_epoch(self, epoch: int, record: dict, line: str, model, optimizer, schedule, best: dict) -> None:
        """The epoch's record (metrics.jsonl) and line (log), then ``ckpt-last.pt`` holding ``best``."""
        self.logger.log("epoch", epoch, **record)
        self.logger.info(line)
        self.save(epoch, model, optimizer, schedule, extra={"best": best})

    def save_weights(self, model, prefix: str, wait: bool = False) -> None:
        """Rank 0 writes ``model``'s weights in recon's format (``recon.checkpoint.save_model``, atomic);
        with ``wait`` every rank waits for it."""
        from recon.checkpoint import save_model

        if self.info.is_main:
            save_model(dist.unwrap(model), prefix)
        if wait:
            dist.barrier()

    def train_loader(self, dataset):
        """This process's shuffled loader of ``dataset`` (``train.batch_size`` is the global batch)."""
        tr = self.spec.train
        return train_loader(dataset, tr.batch_size, self.spec.seed, self.info.rank, self.info.world_size,
                            tr.accum_steps, tr.num_workers)

    def optimization(self, model, loader) -> tuple:
        """``(optimizer, schedule, steps_per_epoch)`` of the config's ``optimizer`` / ``scheduler`` for ``loader``."""
        optimizer = build_optimizer(model, self.spec.optimizer)
        steps_per_epoch = -(-len(loader) // self.spec.train.accum_steps)
        schedule = build_schedule(optimizer, self.spec.scheduler, steps_per_epoch, self.spec.train.epochs)
        return optimizer, schedule, steps_per_epoch

    def train_epoch(self, model, loader, step, optimizer, schedule, epoch: int, steps_per_epoch: int) -> dict:
        """One epoch of :func:`~.loop.train_epoch` with the config's ``train.*`` and ``log.*`` settings."""
        tr = self.spec.train
        loader.sampler.set_epoch(epoch)
        return train_epoch(model, loader, step, optimizer, schedule, self.amp, epoch, self.device,
                           accum_steps=tr.accum_steps, grad_clip=tr.grad_clip, progress=self.progress,
                           logger=self.logger, log_every=self.spec.log.every,
                           global_step=epoch * steps_per_epoch, max_steps=tr.max_steps)

    def close(self) -> None:
        self.logger.close()
        dist.cleanup()


def _plain(cfg) -> dict:
    """The config as plain dicts (for ``config.yaml`` and the training checkpoint)."""
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
