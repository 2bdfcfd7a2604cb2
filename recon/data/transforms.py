"""Point-cloud transforms of the official training loops, batched on ``[B, N, 3]`` tensors.

The official code draws one random transform per sample of the batch (numpy RNG) and applies it
on the GPU after sampling (docs/official.md §6, §9); here every transform takes a batch, draws its
randomness per sample from torch (optionally a ``generator``), and works on any device.
Only the first three channels are moved; extra channels (normals) are carried along untouched,
except by :class:`PointcloudRotate`, which rotates normals too.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

__all__ = [
    "pc_normalize",
    "PointcloudScaleAndTranslate",
    "PointcloudScale",
    "PointcloudRotate",
    "RandomPointDropout",
    "Compose",
    "fps_then_random_subset",
    "fps_points",
    "default_point_all",
]


def _check_batch(points: torch.Tensor, name: str = "points") -> None:
    if not isinstance(points, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor [B, N, C>=3], got {type(points).__name__}")
    if points.dim() != 3 or points.shape[-1] < 3:
        raise ValueError(f"{name} must have shape [B, N, C>=3], got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor, got {points.dtype}")


def _uniform(shape, low: float, high: float, like: torch.Tensor, generator) -> torch.Tensor:
    dev = like.device if generator is None else generator.device
    u = torch.rand(shape, generator=generator, device=dev, dtype=torch.float64)
    return (low + (high - low) * u).to(device=like.device, dtype=like.dtype)


def pc_normalize(points):
    """Centres on the centroid and divides by the largest radius (the official ``pc_norm``).

    Args:
        points: ``[..., N, C>=3]`` numpy array or tensor; only the first 3 channels change.

    Returns:
        The same type and shape, a new array/tensor.
    """
    if isinstance(points, torch.Tensor):
        out = points.clone()
        xyz = out[..., :3]
        xyz -= xyz.mean(dim=-2, keepdim=True)
        r = xyz.norm(dim=-1).amax(dim=-1, keepdim=True)[..., None]
        xyz /= torch.where(r > 0, r, torch.ones_like(r))
        return out
    import numpy as np

    out = np.array(points, dtype=np.float32 if points.dtype != np.float64 else np.float64, copy=True)
    xyz = out[..., :3]
    xyz -= xyz.mean(axis=-2, keepdims=True)
    r = np.sqrt((xyz ** 2).sum(-1)).max(-1)[..., None, None]
    xyz /= np.where(r > 0, r, 1)
    return out


class PointcloudScaleAndTranslate:
    """Per-sample, per-axis scale ``U[scale_low, scale_high]`` then shift ``U[-t, t]``.

    The official ModelNet finetune / Point-MAE pretrain augmentation (2/3, 3/2, 0.2).
    """

    def __init__(self, scale_low: float = 2.0 / 3.0, scale_high: float = 3.0 / 2.0,
                 translate_range: float = 0.2):
        if not 0 < scale_low <= scale_high:
            raise ValueError(f"need 0 < scale_low <= scale_high, got {scale_low}, {scale_high}")
        self.scale_low, self.scale_high, self.translate_range = scale_low, scale_high, translate_range

    def __call__(self, points: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        _check_batch(points)
        B = points.shape[0]
        scale = _uniform((B, 1, 3), self.scale_low, self.scale_high, points, generator)
        shift = _uniform((B, 1, 3), -self.translate_range, self.translate_range, points, generator)
        out = points.clone()
        out[..., :3] = points[..., :3] * scale + shift
        return out


class PointcloudScale:
    """Per-sample, per-axis scale ``U[scale_low, scale_high]`` (the official ModelNet vote transform)."""

    def __init__(self, scale_low: float = 2.0 / 3.0, scale_high: float = 3.0 / 2.0):
        if not 0 < scale_low <= scale_high:
            raise ValueError(f"need 0 < scale_low <= scale_high, got {scale_low}, {scale_high}")
        self.scale_low, self.scale_high = scale_low, scale_high

    def __call__(self, points: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        _check_batch(points)
        scale = _uniform((points.shape[0], 1, 3), self.scale_low, self.scale_high, points, generator)
        out = points.clone()
        out[..., :3] = points[..., :3] * scale
        return out


class PointcloudRotate:
    """Per-sample rotation about the y axis by ``U[0, 2π)``: ``p @ [[c,0,s],[0,1,0],[-s,0,c]]``.

    The official pretraining, ScanObjectNN and few-shot augmentation; normals (channels 3:6)
    are rotated with the points.
    """

    def __call__(self, points: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        _check_batch(points)
        B = points.shape[0]
        angle = _uniform((B,), 0.0, 2.0 * math.pi, points, generator)
        c, s = torch.cos(angle), torch.sin(angle)
        z, o = torch.zeros_like(c), torch.ones_like(c)
        rot = torch.stack([c, z, s, z, o, z, -s, z, c], dim=-1).view(B, 3, 3)
        out = points.clone()
        out[..., :3] = points[..., :3] @ rot
        if points.shape[-1] >= 6:
            out[..., 3:6] = points[..., 3:6] @ rot
        return out


class RandomPointDropout:
    """Per sample, drops each point with probability ``U[0, max_dropout_ratio)`` by overwriting it
    with the sample's first point, so the shape of the batch is unchanged (the official
    ``PointcloudRandomInputDropout``)."""

    def __init__(self, max_dropout_ratio: float = 0.875):
        if not 0 <= max_dropout_ratio < 1:
            raise ValueError(f"max_dropout_ratio must be in [0, 1), got {max_dropout_ratio}")
        self.max_dropout_ratio = max_dropout_ratio

    def __call__(self, points: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        _check_batch(points)
        B, N, _ = points.shape
        ratio = _uniform((B, 1), 0.0, self.max_dropout_ratio, points, generator)
        drop = _uniform((B, N), 0.0, 1.0, points, generator) <= ratio
        return torch.where(drop[..., None], points[:, :1, :].expand_as(points), points)


class Compose:
    """Applies transforms in order; each is called as ``t(points, generator=generator)``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, points: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        for t in self.transforms:
            points = t(points, generator=generator)
        return points

    def __repr__(self) -> str:
        return f"Compose({', '.join(type(t).__name__ for t in self.transforms)})"


_POINT_ALL = {1024: 1200, 2048: 2400, 4096: 4800, 8192: 8192}


def default_point_all(npoints: int) -> int:
    """The official ``point_all`` for ``npoints`` (1200/2400/4800/8192 for 1k/2k/4k/8k)."""
    if npoints not in _POINT_ALL:
        raise ValueError(f"npoints must be one of {sorted(_POINT_ALL)} for the official point_all, "
                         f"got {npoints}; pass point_all explicitly")
    return _POINT_ALL[npoints]


def fps_then_random_subset(points: torch.Tensor, npoints: int, point_all: Optional[int] = None,
                           generator: Optional[torch.Generator] = None,
                           per_sample: bool = False) -> torch.Tensor:
    """The official train / vote sampling: FPS to ``point_all`` (capped at N), then a random
    ``npoints`` subset of those without replacement.

    The official code draws one subset of positions for the whole batch
    (``fps_idx[:, np.random.choice(point_all, npoints, False)]``); ``per_sample=True`` draws one
    per sample instead.

    Args:
        points: ``[B, N, C>=3]``; FPS runs on the first 3 channels, starting at index 0.
        npoints: points kept, ``<= min(point_all, N)``.
        point_all: FPS size; default :func:`default_point_all` (npoints).
        generator: optional torch generator for the subset.

    Returns:
        ``[B, npoints, C]``.
    """
    from recon.ops import furthest_point_sample, gather_points

    _check_batch(points)
    B, N, _ = points.shape
    if point_all is None:
        point_all = default_point_all(npoints)
    point_all = min(int(point_all), N)
    if not 0 < npoints <= point_all:
        raise ValueError(f"npoints must be in [1, min(point_all, N)={point_all}], got {npoints}")
    idx = furthest_point_sample(points[..., :3].contiguous(), point_all)
    dev = points.device if generator is None else generator.device
    if per_sample:
        pick = torch.argsort(torch.rand(B, point_all, generator=generator, device=dev), dim=1)[:, :npoints]
    else:
        pick = torch.randperm(point_all, generator=generator, device=dev)[:npoints].expand(B, -1)
    idx = torch.gather(idx, 1, pick.to(idx.device))
    return gather_points(points.contiguous(), idx)


def fps_points(points: torch.Tensor, npoints: int) -> torch.Tensor:
    """``[B, npoints, 3]``: the furthest-point subset of the xyz of ``points [B, N, C>=3]``, from index
    0 (the official ``misc.fps``). ``npoints`` must be in ``[1, N]``: a cloud is never padded."""
    from recon.ops import furthest_point_sample, gather_points

    _check_batch(points)
    n = points.shape[1]
    if not 0 < npoints <= n:
        raise ValueError(f"npoints={npoints} exceeds the {n} points of the data" if npoints > n
                         else f"npoints must be >= 1, got {npoints}")
    xyz = points[..., :3].contiguous()
    return gather_points(xyz, furthest_point_sample(xyz, npoints))
