"""Argument validation shared by the ``recon.ops`` functions.

Every check raises ``TypeError`` (wrong type, dtype or layout, e.g. a sparse tensor) or
``ValueError`` (wrong shape, size, range or device) with a message naming the argument and what
was expected. The compiled kernels apply the same rules (``csrc/common/checks.h``), so a
mistake raises the same exception type on CPU and CUDA, through these functions or through
``torch.ops.recon.*``. The checks only look at shapes, dtypes, layouts and devices, so
``torch.compile`` traces them without a graph break.
"""

from __future__ import annotations

import torch

_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_INDEX = (torch.int64, torch.int32)


def _shape(t: torch.Tensor) -> tuple:
    return tuple(t.shape)


def tensor(t: object, name: str, expected: str) -> None:
    """A dense torch.Tensor: sparse and other non-strided layouts are refused up front."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape {expected}, got {type(t).__name__}")
    if t.layout != torch.strided or t.is_nested:
        raise TypeError(
            f"{name} must be a dense (strided) tensor, got {'a nested' if t.is_nested else 'layout'} "
            f"{t.layout} "
            f"(convert with {name}.to_dense())"
        )


def device(t: torch.Tensor, name: str) -> None:
    if t.device.type not in ("cpu", "cuda"):
        raise ValueError(f"{name} must be on a cpu or cuda device, got {t.device}")


def points(t: object, name: str, shape: str = "(B, N, 3)") -> None:
    """A point cloud batch: floating ``[B, N, 3]`` with ``N >= 1`` on cpu or cuda."""
    tensor(t, name, shape)
    if t.dim() != 3 or t.shape[-1] != 3:
        raise ValueError(f"{name} must have shape {shape} (xyz in the last dim), got {_shape(t)}")
    if t.dtype not in _FLOATS:
        raise TypeError(
            f"{name} must be float16, bfloat16, float32 or float64 points, got {t.dtype} "
            f"(convert with {name}.float())"
        )
    if t.shape[1] == 0:
        raise ValueError(f"{name} must hold at least one point per cloud, got shape {_shape(t)}")
    device(t, name)


def pair(a: torch.Tensor, an: str, b: torch.Tensor, bn: str) -> None:
    """Two clouds that are used together: one device, one dtype, one batch size."""
    if a.device != b.device:
        raise ValueError(f"{an} and {bn} must be on the same device, got {a.device} and {b.device}")
    if a.dtype != b.dtype:
        raise TypeError(f"{an} and {bn} must have the same dtype, got {a.dtype} and {b.dtype}")
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{an} and {bn} must have the same batch size, got {_shape(a)} and {_shape(b)}"
        )


def integer(v: object, name: str, low: int, high: int, what: str) -> None:
    """A Python int (or a SymInt under torch.compile) with ``low <= v <= high``."""
    if isinstance(v, bool) or not isinstance(v, (int, torch.SymInt)):
        raise TypeError(f"{name} must be an int, got {type(v).__name__}")
    if v < low or v > high:
        raise ValueError(f"{name} must satisfy {what}, got {name}={v}")


def features(t: object, name: str) -> None:
    """Per-point features ``[B, N, C]`` of any dtype."""
    tensor(t, name, "(B, N, C)")
    if t.dim() != 3:
        raise ValueError(f"{name} must have shape (B, N, C), got {_shape(t)}")
    device(t, name)


def indices(idx: object, name: str, rank: int, shape: str, points_: torch.Tensor, pname: str) -> None:
    """Integer indices ``idx`` into dim 1 of ``points_``, batch and device matching."""
    tensor(idx, name, shape)
    if idx.dim() != rank:
        raise ValueError(f"{name} must have shape {shape}, got {_shape(idx)}")
    if idx.dtype not in _INDEX:
        raise TypeError(f"{name} must be int64 (or int32) indices, got {idx.dtype}")
    if idx.device != points_.device:
        raise ValueError(
            f"{name} and {pname} must be on the same device, got {idx.device} and {points_.device}"
        )
    if idx.shape[0] != points_.shape[0]:
        raise ValueError(
            f"{name} and {pname} must have the same batch size, got {_shape(idx)} and {_shape(points_)}"
        )
    # A value check needs the data: done eagerly on CPU (cheap); skipped on CUDA (it would
    # synchronise every call; out-of-range indices there trigger torch.gather's device assert)
    # and while torch.compile traces.
    if idx.device.type == "cpu" and idx.numel() and not torch.compiler.is_compiling():
        lo, hi = int(idx.min()), int(idx.max())
        n = points_.shape[1]
        if lo < 0 or hi >= n:
            raise ValueError(
                f"{name} must index {pname}'s {n} points (0 <= idx < {n}), got values in [{lo}, {hi}]"
            )
