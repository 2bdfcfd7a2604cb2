"""Hypothesis strategies shared by the property tests: clouds with every dtype, layout and value
that the public functions promise to handle (imported as ``strategies``: tests/ has no packages)."""

from __future__ import annotations

import math

import torch
from hypothesis import strategies as st

DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
# NaN, ±inf, huge (overflows half types), denormal, signed zeros
SPECIALS = (math.nan, math.inf, -math.inf, 1e30, -1e30, 1e-40, 5e-324, 0.0, -0.0)
LAYOUTS = ("contiguous", "channels_first", "strided", "batch_broadcast")


def _layout(x: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in another memory layout (the ops promise any strides)."""
    if layout == "channels_first":  # (B, C, N) storage seen as (B, N, C)
        return x.transpose(1, 2).contiguous().transpose(1, 2)
    if layout == "strided":  # every other row of a twice-as-long buffer
        buf = torch.zeros(x.shape[0], 2 * x.shape[1], x.shape[2], dtype=x.dtype)
        buf[:, ::2] = x
        return buf[:, ::2]
    if layout == "batch_broadcast" and x.shape[0] > 0:  # stride 0 over the batch
        return x[:1].expand(x.shape[0], -1, -1)
    return x


@st.composite
def clouds(draw, batch: int, n: int, dtype: torch.dtype, channels: int = 3, specials: bool = True,
           layouts=LAYOUTS) -> torch.Tensor:
    """``(batch, n, channels)`` points: random at a drawn scale, some duplicated rows, some special values."""
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    scale = draw(st.sampled_from([1.0, 1e-3, 1e3, 1e-30]))
    x = (torch.rand(batch, n, channels, generator=g, dtype=torch.float64) * 2 - 1) * scale
    if batch and n > 1:
        for _ in range(draw(st.integers(0, 3))):  # duplicated points: ties everywhere
            b, i, j = draw(st.integers(0, batch - 1)), draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
            x[b, i] = x[b, j]
    if specials and batch:
        for _ in range(draw(st.integers(0, 3))):
            b, i, c = draw(st.integers(0, batch - 1)), draw(st.integers(0, n - 1)), draw(st.integers(0, channels - 1))
            x[b, i, c] = draw(st.sampled_from(SPECIALS))
    return _layout(x.to(dtype), draw(st.sampled_from(layouts)))


def assert_same(got, want) -> None:
    """Equal values (NaN equal to NaN), dtype and shape: the ops promise the reference's exact results."""
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


def examples(n: int) -> int:
    """``n`` examples in CI, ten times as many under ``RECON_HYPOTHESIS=explore``."""
    import os

    return n * (10 if os.environ.get("RECON_HYPOTHESIS") == "explore" else 1)
