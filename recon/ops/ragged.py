"""Converters between the two layouts of a batch of clouds with different sizes.

* **padded**: ``(B, N, C)`` plus ``lengths`` int64 ``(B,)``; cloud ``b`` is ``x[b, :lengths[b]]``
  (pytorch3d's convention, and what the ``*_lengths`` arguments of ``recon.ops`` take);
* **packed**: ``(sum N_b, C)`` with the clouds one after another, described by a ``batch``
  vector (int64 ``(sum N_b,)``, the cloud of every row, sorted: torch_cluster / PyG) or by
  ``offsets`` (int64 ``(B,)``, the running end of every cloud: ``offsets[b] = N_0 + ... + N_b``,
  Pointcept's convention).

Example:
    >>> packed, batch = padded_to_packed(x, lengths)        # (sum N, 3), (sum N,)
    >>> x2, lengths2 = packed_to_padded(packed, batch=batch)
"""

from __future__ import annotations

import torch

__all__ = [
    "padded_to_packed",
    "packed_to_padded",
    "lengths_to_batch",
    "batch_to_lengths",
    "lengths_to_offsets",
    "offsets_to_lengths",
]


def _check_lengths(lengths: torch.Tensor, name: str = "lengths") -> None:
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1:
        raise ValueError(f"{name} must be a 1-D integer tensor (B,), got {lengths!r:.80}")
    if lengths.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be int64 (or int32), got {lengths.dtype}")


def lengths_to_batch(lengths: torch.Tensor) -> torch.Tensor:
    """``[2, 3]`` -> ``[0, 0, 1, 1, 1]`` (int64, on the device of ``lengths``)."""
    _check_lengths(lengths)
    return torch.repeat_interleave(torch.arange(lengths.shape[0], device=lengths.device), lengths.long())


def batch_to_lengths(batch: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """``[0, 0, 1, 1, 1]`` -> ``[2, 3]``; ``batch_size`` adds trailing empty clouds.

    Raises:
        ValueError: ``batch`` is not a sorted, non-negative 1-D vector.
    """
    _check_lengths(batch, "batch")
    if batch.numel() and (bool((batch[1:] < batch[:-1]).any()) or int(batch[0]) < 0):
        raise ValueError("batch must be sorted ascending and non-negative (clouds stored one after another)")
    size = batch_size if batch_size is not None else (int(batch[-1]) + 1 if batch.numel() else 0)
    return torch.bincount(batch.long(), minlength=size)[:size] if size else batch.new_zeros(0, dtype=torch.long)


def lengths_to_offsets(lengths: torch.Tensor) -> torch.Tensor:
    """``[2, 3]`` -> ``[2, 5]`` (Pointcept's ``offset``: the running end of each cloud)."""
    _check_lengths(lengths)
    return torch.cumsum(lengths.long(), 0)


def offsets_to_lengths(offsets: torch.Tensor) -> torch.Tensor:
    """``[2, 5]`` -> ``[2, 3]``.

    Raises:
        ValueError: ``offsets`` decreases somewhere.
    """
    _check_lengths(offsets, "offsets")
    lengths = torch.diff(offsets.long(), prepend=offsets.new_zeros(1, dtype=torch.long))
    if lengths.numel() and int(lengths.min()) < 0:
        raise ValueError("offsets must be non-decreasing running ends of the clouds")
    return lengths


def padded_to_packed(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, N, C)`` + ``lengths`` -> ``(packed (sum N_b, C), batch (sum N_b,))``.

    Raises:
        ValueError: ``x`` is not 3-D, or ``lengths`` is not ``(B,)`` with values in ``[0, N]``.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"x must have shape (B, N, C), got {getattr(x, 'shape', type(x).__name__)}")
    _check_lengths(lengths)
    B, N = x.shape[0], x.shape[1]
    if lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape (B,) = ({B},), got {tuple(lengths.shape)}")
    if B and (int(lengths.min()) < 0 or int(lengths.max()) > N):
        raise ValueError(f"lengths must be in [0, {N}], got {lengths.tolist()}")
    keep = torch.arange(N, device=x.device)[None, :] < lengths.to(x.device)[:, None]
    return x[keep], lengths_to_batch(lengths.to(x.device))


def packed_to_padded(
    x: torch.Tensor,
    *,
    batch: torch.Tensor | None = None,
    offsets: torch.Tensor | None = None,
    batch_size: int | None = None,
    max_len: int | None = None,
    pad_value: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sum N_b, C)`` with ``batch`` or ``offsets`` -> ``(padded (B, max_len, C), lengths (B,))``.

    Args:
        x: packed rows, clouds one after another.
        batch: the cloud of every row (sorted), or
        offsets: the running end of every cloud (exactly one of the two).
        batch_size: ``B`` with ``batch`` (default: ``batch[-1] + 1``).
        max_len: padded size ``N`` (default: the longest cloud); a fixed value keeps shapes static.
        pad_value: the value of padded entries.

    Raises:
        ValueError: neither or both of ``batch``/``offsets``, sizes that do not add up to
            ``x.shape[0]``, or a cloud longer than ``max_len``.
    """
    if (batch is None) == (offsets is None):
        raise ValueError("give exactly one of batch= or offsets=")
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a packed tensor (sum N, ...), got {getattr(x, 'shape', type(x).__name__)}")
    lengths = batch_to_lengths(batch, batch_size) if batch is not None else offsets_to_lengths(offsets)
    lengths = lengths.to(x.device)
    if int(lengths.sum()) != x.shape[0]:
        raise ValueError(f"the clouds hold {int(lengths.sum())} rows but x has {x.shape[0]}")
    longest = int(lengths.max()) if lengths.numel() else 0
    n = longest if max_len is None else max_len
    if longest > n:
        raise ValueError(f"max_len={max_len} is shorter than the longest cloud ({longest})")
    out = x.new_full((lengths.shape[0], n, *x.shape[1:]), pad_value)
    keep = torch.arange(n, device=x.device)[None, :] < lengths[:, None]
    out[keep] = x
    return out, lengths
