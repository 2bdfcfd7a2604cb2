"""Config sections → models, datasets, transforms and data loaders.

The only place where the engine names the model zoo and the datasets, so the loops stay generic.
"""

from __future__ import annotations

import importlib
import math

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from recon.errors import ConfigError, ReconError

from .schema import DataSection, section

__all__ = ["build_model", "build_dataset", "build_transform", "train_loader", "eval_loader", "ShardSampler",
           "holdout_split"]

_TRANSFORMS = {
    "none": None,
    "rotate": "PointcloudRotate",
    "scale": "PointcloudScale",
    "scale_translate": "PointcloudScaleAndTranslate",
}


def _import(spec: str):
    """``"package.module:attr"`` → the attribute (lets configs name models/datasets outside recon)."""
    mod, _, attr = spec.partition(":")
    try:
        return getattr(importlib.import_module(mod), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {spec!r}: {exc}") from None


def build_model(model_cfg) -> torch.nn.Module:
    """``create_model(name, **other keys)`` from a ``model`` config section.

    ``name`` is a registered model (``recon zoo`` lists them) or ``"module:factory"``.
    """
    kwargs = {k: v for k, v in dict(model_cfg).items() if k != "name"}
    name = str(model_cfg["name"])
    if ":" in name:
        return _import(name)(**kwargs)
    from recon.models import create_model

    try:
        return create_model(name, **kwargs)
    except ReconError:  # already says what is wrong (a weights file, a config value)
        raise
    except (KeyError, TypeError, ValueError) as exc:  # an unknown model, model.* key, or a value it refuses
        raise ConfigError(f"model config: {exc.args[0] if exc.args else exc}") from None


def build_dataset(data_cfg, split: str) -> Dataset:
    """The dataset of a ``data`` config section for ``split``: ``name`` is a canonical dataset name or a
    ``recon.data`` class (:mod:`recon.data.registry`), or ``"module:Class"``; ``args`` go to the class."""
    data = section(DataSection, data_cfg, "data")
    if ":" in data.name:
        return _import(data.name)(data.root, split=split, **data.args)
    from recon.data.registry import build_dataset as build

    return build(data.name, data.root, split, **data.args)


def build_transform(name):
    """A batched point transform by config name: none | rotate | scale | scale_translate."""
    key = "none" if name in (None, False) else str(name)
    if key not in _TRANSFORMS:
        raise ConfigError(f"transform must be one of {sorted(_TRANSFORMS)}, got {name!r}")
    if _TRANSFORMS[key] is None:
        return None
    from recon.data import transforms

    return getattr(transforms, _TRANSFORMS[key])()


class ShardSampler(Sampler):
    """Indices ``rank, rank + world, ...`` in order: every sample evaluated exactly once over ranks."""

    def __init__(self, n: int, rank: int = 0, world_size: int = 1):
        self.indices = list(range(rank, n, world_size))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


def holdout_split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """A fixed random (train, val) split of ``range(n)`` with ``round(fraction·n)`` (≥ 1) in val."""
    if not 0 < fraction < 1:
        raise ConfigError(f"eval.val_fraction must be in (0, 1), got {fraction}")
    if n < 2:
        raise ConfigError(f"cannot hold out a validation split from {n} training samples")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g).tolist()
    k = min(max(1, round(fraction * n)), n - 1)
    return sorted(perm[k:]), sorted(perm[:k])


def _micro_batch(batch_size: int, world_size: int, accum_steps: int) -> int:
    per = batch_size // (world_size * accum_steps)
    if per < 1 or per * world_size * accum_steps != batch_size:
        raise ConfigError(
            f"train.batch_size={batch_size} (the global batch) must be a multiple of "
            f"world_size ({world_size}) x train.accum_steps ({accum_steps})"
        )
    return per


def train_loader(dataset, batch_size: int, seed: int, rank: int = 0, world_size: int = 1,
                 accum_steps: int = 1, num_workers: int = 0, drop_last: bool = True) -> DataLoader:
    """Shuffled loader of micro-batches: ``batch_size`` is the global batch of one optimizer step.

    The order is a function of (seed, epoch) only — call ``loader.sampler.set_epoch(epoch)`` — so
    one process with batch B sees the same global batches as N processes with B/N each.
    """
    per = _micro_batch(batch_size, world_size, accum_steps)
    if drop_last and len(dataset) < batch_size:
        raise ConfigError(
            f"train.batch_size={batch_size} exceeds the {len(dataset)} training samples; lower it"
        )
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=int(seed),
                                 drop_last=drop_last)
    return DataLoader(dataset, batch_size=per, sampler=sampler, num_workers=num_workers,
                      drop_last=drop_last, pin_memory=torch.cuda.is_available(),
                      persistent_workers=False)


def eval_loader(dataset, batch_size: int, rank: int = 0, world_size: int = 1, num_workers: int = 0) -> DataLoader:
    """Unshuffled loader over this rank's shard (no padding, no duplicates)."""
    per = max(1, math.ceil(batch_size / world_size))
    return DataLoader(dataset, batch_size=per, sampler=ShardSampler(len(dataset), rank, world_size),
                      num_workers=num_workers)
